package v1alpha1

// Reasons of the Stalled condition for subscriptions that wait for a person:
// Flux and kstatus read Stalled=True as Failed and stop waiting, Argo CD
// shows the resource as Degraded (or Suspended when paused).
const (
	// ReasonAwaitingPayment: the first invoice of an incomplete subscription
	// was not attempted and Stripe will not attempt it; the customer has to
	// confirm the payment (payment_behavior default_incomplete).
	ReasonAwaitingPayment = "AwaitingPayment"
	// ReasonUnpaid: Stripe stopped retrying and left the subscription unpaid.
	ReasonUnpaid = "Unpaid"
)

// Reasons of the Stalled condition for credentials problems. No Stripe call
// is made while the API key is missing or refused; the operator recovers by
// itself once the credentials Secret is fixed.
const (
	// ReasonCredentialsMissing: no API key (the credentials Secret or its
	// apiKey key does not exist).
	ReasonCredentialsMissing = "CredentialsMissing"
	// ReasonLiveKeyRefused: the API key is a live-mode key and the operator
	// runs without --allow-live-mode.
	ReasonLiveKeyRefused = "LiveKeyRefused"
	// ReasonCredentialsRejected: the API key is not a Stripe key, or Stripe
	// refused it (401) or refused it a permission (403).
	ReasonCredentialsRejected = "CredentialsRejected"
)
