// Command webhook-server runs only the Stripe webhook receiver, so it can be
// scaled as its own Deployment; every replica serves (no leader election).
package main

import (
	"flag"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/stripe-operator/stripe-operator/internal/app"
)

func main() {
	var o app.Options
	o.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{Development: false}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		ctrl.Log.Error(err, "Unable to load the Kubernetes configuration")
		os.Exit(1)
	}
	if err := app.RunWebhookServerOnly(ctrl.SetupSignalHandler(), cfg, o); err != nil {
		ctrl.Log.Error(err, "Webhook server stopped with an error")
		os.Exit(1)
	}
}
