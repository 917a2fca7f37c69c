package controllers

import (
	"errors"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// credentialsCondition names a credentials problem in a Stalled condition:
// CredentialsMissing, LiveKeyRefused or CredentialsRejected, with a message
// that names the Secret and its key but never the key's value. No Stripe
// call is made while the key is missing or refused; the credentials watch
// re-queues every resource once the Secret is fixed.
func credentialsCondition(err *stripe.Error) (reason, message string) {
	var ce *stripe.CredentialsError
	if errors.As(err, &ce) {
		switch ce.Reason {
		case stripe.CredentialsMissing:
			return billingv1alpha1.ReasonCredentialsMissing, ce.Message
		case stripe.LiveKeyRefused:
			return billingv1alpha1.ReasonLiveKeyRefused, ce.Message
		}
		return billingv1alpha1.ReasonCredentialsRejected, ce.Message
	}
	return billingv1alpha1.ReasonCredentialsRejected, "Stripe refused the API key; update the credentials Secret."
}
