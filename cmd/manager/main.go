// Command manager runs stripe-operator: the reconcilers for StripeCustomer,
// StripePlan and StripeSubscription and, unless --webhook-bind-address=0,
// the Stripe webhook receiver.
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
	if err := app.Run(ctrl.SetupSignalHandler(), cfg, o); err != nil {
		ctrl.Log.Error(err, "Manager stopped with an error")
		os.Exit(1)
	}
}
