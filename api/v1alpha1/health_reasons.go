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
	// ReasonChargeLimitReached: the operator made --max-charge-attempts
	// charge attempts for the subscription in the last 24 hours and waits
	// before the next one.
	ReasonChargeLimitReached = "ChargeLimitReached"
)

// Reasons that say who ended a subscription (Stalled and Synced reasons,
// and status.cancellation.endedBy).
const (
	// ReasonCanceledForNonPayment: Stripe canceled the subscription at the
	// end of its payment retries (cancellation_details.reason
	// payment_failed), or its first payment was never made
	// (incomplete_expired). Not drift.
	ReasonCanceledForNonPayment = "CanceledForNonPayment"
	// ReasonCanceledByOperator: the subscription ended as the declaration
	// asked (cancelAtPeriodEnd, a deletion policy). Not drift.
	ReasonCanceledByOperator = "CanceledByOperator"
	// ReasonCanceledOutsideOperator: someone canceled the subscription in
	// the Dashboard or through the API. Drift.
	ReasonCanceledOutsideOperator = "CanceledOutsideOperator"
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
