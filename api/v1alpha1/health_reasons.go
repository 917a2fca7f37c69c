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
