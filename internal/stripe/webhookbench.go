package stripe

import "github.com/stripe/stripe-go/v76/webhook"

// ConstructEventStripeGo verifies and decodes a webhook payload with
// stripe-go's webhook.ConstructEvent. It exists only so the webhook server's
// benchmark can compare its own verification with stripe-go's without
// importing stripe-go outside this package.
func ConstructEventStripeGo(payload []byte, header, secret string) error {
	_, err := webhook.ConstructEvent(payload, header, secret)
	return err
}
