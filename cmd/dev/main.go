// Command dev is `make dev`: a local kube-apiserver with the CRDs, the
// test-mode Stripe, the manager and the webhook server, and the samples.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/stripe-operator/stripe-operator/internal/devenv"
)

func main() {
	var o devenv.Options
	flag.StringVar(&o.Dir, "dir", ".dev", "Directory for the kubeconfig.")
	// Each address has a short flag (make dev DEV_ARGS="--webhook-addr=:18090")
	// and the older long one.
	for _, f := range []struct {
		v            *string
		short, long  string
		def, purpose string
	}{
		{&o.StripeAddr, "stripe-addr", "stripe-address", "127.0.0.1:12112", "Listen address of the test-mode Stripe."},
		{&o.WebhookAddr, "webhook-addr", "webhook-address", "127.0.0.1:8090", "Listen address of the webhook server."},
		{&o.AdminAddr, "admin-addr", "admin-address", "127.0.0.1:12113", "Listen address of the test-clock and Dashboard controls."},
		{&o.MetricsAddr, "metrics-addr", "metrics-address", "127.0.0.1:18080", "Listen address of the manager's metrics (plain HTTP); 0 turns them off."},
	} {
		flag.StringVar(f.v, f.short, f.def, f.purpose)
		flag.StringVar(f.v, f.long, f.def, "Same as --"+f.short+".")
	}
	flag.StringVar(&o.SamplesDir, "samples", "config/samples", "Manifests applied at start; empty skips.")
	flag.DurationVar(&o.ResyncPeriod, "resync-period", 0, "Reconciler resync period (default 30s here).")
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if err := devenv.Run(ctrl.SetupSignalHandler(), o, nil); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}
