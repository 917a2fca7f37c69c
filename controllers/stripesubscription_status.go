package controllers

import (
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Invoice billing reasons and statuses the reconciler reads.
const (
	billingReasonCycle  = "subscription_cycle"
	billingReasonCreate = "subscription_create"

	invoiceStatusPaid = "paid"
	invoiceStatusOpen = "open"

	paymentIntentRequiresAction = "requires_action"
	errorAuthenticationRequired = "authentication_required"
)

// unixTime converts Stripe's Unix seconds to a status time (nil for 0).
func unixTime(sec int64) *metav1.Time { return billing.UnixTime(sec) }

// unixOf is the inverse of unixTime (0 for nil).
func unixOf(t *metav1.Time) int64 { return billing.Unix(t) }

// setObservedStatus copies what Stripe reports into status (sub is a read
// of Stripe, or the answer to a write). The webhook server writes the same
// fields from events; both writers use an optimistic lock, and the
// reconciler always writes what a fresh read of Stripe says. This is the
// reconciler's side of the one ordering rule (webhookserver's place): the
// read settles any deferred event, so status.deferredEvent is cleared, and
// readAt becomes the read's Stripe time when the read changes what status
// shows or settles a deferred event, so the webhook server never applies
// an event that is not newer than it. A read that changes nothing and
// settles nothing keeps the older readAt, which is still a time when Stripe
// held that state, and writes nothing.
func setObservedStatus(st *billingv1alpha1.StripeSubscriptionStatus, sub *stripe.Subscription) {
	before := observedFields(st)
	copyObserved(st, sub)
	settles := st.DeferredEvent != nil
	st.DeferredEvent = nil
	if sub.ReadAt != 0 && (st.ReadAt == nil || settles || !equality.Semantic.DeepEqual(before, observedFields(st))) {
		st.ReadAt = unixTime(sub.ReadAt)
	}
}

// observedFields is the part of status copied from Stripe's subscription.
func observedFields(st *billingv1alpha1.StripeSubscriptionStatus) billingv1alpha1.StripeSubscriptionStatus {
	c := *st
	c.CommonStatus, c.LastEvent, c.ReadAt, c.DeferredEvent, c.ExpectedAmount, c.Charges = billingv1alpha1.CommonStatus{}, nil, nil, nil, nil, nil
	if c.LatestInvoice != nil {
		inv := *c.LatestInvoice
		inv.LastEvent = nil
		c.LatestInvoice = &inv
	}
	return c
}

// copyObserved writes what Stripe says of sub into status, by the mapping
// the webhook server uses too (billing.SetSubscription, billing.InvoiceStatus).
func copyObserved(st *billingv1alpha1.StripeSubscriptionStatus, sub *stripe.Subscription) {
	billing.SetSubscription(st, sub)
	st.LatestInvoice = invoiceStatus(sub.LatestInvoice, st.LatestInvoice)
}

// invoiceStatus is the status summary of inv. The webhook server's marker
// of the newest event applied to that invoice (prev.lastEvent) is kept when
// prev is the same invoice, so its events stay ordered.
func invoiceStatus(inv *stripe.Invoice, prev *billingv1alpha1.InvoiceStatus) *billingv1alpha1.InvoiceStatus {
	out := billing.InvoiceStatus(inv)
	if out != nil && prev != nil && prev.ID == inv.ID {
		out.LastEvent = prev.LastEvent
	}
	return out
}

// subscriptionFromStatus is the subscription as status shows it, for a
// pass that trusts status (statusCarriesNews): what the conditions are
// derived from. It carries no metadata and no invoice lines, so it is never
// diffed against the spec.
func subscriptionFromStatus(st *billingv1alpha1.StripeSubscriptionStatus) *stripe.Subscription {
	return billing.SubscriptionOf(st)
}

// formatAmount renders minor units with the currency's exponent, e.g.
// "25.00 USD" or "500 JPY".
func formatAmount(amount int64, currency string) string {
	return billing.FormatAmount(amount, currency)
}

// condition is a computed condition before it is set on the object.
type condition struct {
	status  metav1.ConditionStatus
	reason  string
	message string
}

// paymentCondition derives PaymentFailed with the derivation the webhook
// server uses, from the facts setObservedStatus writes: the subscription
// status and its latest invoice.
func paymentCondition(sub *stripe.Subscription) condition {
	c := billing.PaymentFailed(sub.Status, invoiceStatus(sub.LatestInvoice, nil))
	return condition{c.Status, c.Reason, c.Message}
}
