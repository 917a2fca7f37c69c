package app

import (
	"errors"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// newStripeClient builds the Stripe client from the credentials read so far
// and ties it to the store. A missing, refused or malformed key does not
// stop the manager: the client then makes no Stripe call, every resource
// reports Stalled with the reason (CredentialsMissing, LiveKeyRefused,
// CredentialsRejected), and the first accepted key from the Secret lifts it.
func newStripeClient(o Options, store *credentials.Store) (*stripe.Client, error) {
	cfg := stripe.Config{
		BaseURL: o.StripeAPIURL, AllowLiveMode: o.AllowLiveMode,
		RateLimit: o.StripeRateLimit, CallTimeout: o.StripeCallTimeout, Logger: ctrl.Log.WithName("stripe"),
	}
	source := fmt.Sprintf("key %s of the credentials Secret %s/%s", credentials.KeyAPIKey, o.CredentialsNamespace, o.CredentialsName)
	cfg.APIKey = store.APIKey()
	sc, keyErr := stripe.New(cfg)
	if keyErr != nil {
		cfg.APIKey = ""
		var err error
		if sc, err = stripe.New(cfg); err != nil {
			return nil, err
		}
	}
	sc.SetCredentialsSource(source)
	switch reason, msg := store.Problem(); {
	case reason != "":
		sc.SetCredentialsProblem(reason, msg)
	case errors.Is(keyErr, stripe.ErrLiveModeRefused):
		sc.SetCredentialsProblem(credentials.ProblemLiveRefused,
			fmt.Sprintf("The %s (or STRIPE_API_KEY) is a live-mode key; the operator accepts live keys only when started with --allow-live-mode.", source))
	case keyErr != nil:
		sc.SetCredentialsProblem(credentials.ProblemKeyRejected,
			fmt.Sprintf("The %s (or STRIPE_API_KEY) is not a Stripe secret or restricted key (sk_ or rk_).", source))
	case store.APIKey() == "":
		sc.SetCredentialsProblem(credentials.ProblemMissing,
			fmt.Sprintf("No Stripe API key: put it under %s (or set STRIPE_API_KEY).", source))
	}
	store.OnAPIKey = sc.SetAPIKey
	store.OnProblem = sc.SetCredentialsProblem
	return sc, nil
}
