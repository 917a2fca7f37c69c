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
	flag.StringVar(&o.StripeAddr, "stripe-address", "127.0.0.1:12112", "Listen address of the test-mode Stripe.")
	flag.StringVar(&o.WebhookAddr, "webhook-address", "127.0.0.1:8090", "Listen address of the webhook server.")
	flag.StringVar(&o.AdminAddr, "admin-address", "127.0.0.1:12113", "Listen address of the test-clock and Dashboard controls.")
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
