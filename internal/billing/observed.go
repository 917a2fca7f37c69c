package billing

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// The mapping of what Stripe says of a subscription and of its latest
// invoice to a StripeSubscription's status. It has two writers: the
// reconciler, from a read of Stripe, and the webhook server, from an event's
// payload (its decoder resolves the API version's shape into the same
// internal/stripe types first). Both write the status fields through these
// functions, so the same Stripe state always gives the same status whoever
// wrote it, and neither writer undoes the other. What only one writer knows
// (the webhook server's event markers, the reconciler's read time) stays
// with that writer.

// SetSubscription writes the subscription's own fields into status: all
// that Stripe says of it but its latest invoice (InvoiceStatus). A
// subscription without a customer (an event that does not carry it) keeps
// the customer status knows.
func SetSubscription(st *billingv1alpha1.StripeSubscriptionStatus, sub *stripe.Subscription) {
	st.SubscriptionID = sub.ID
	if sub.CustomerID != "" {
		st.CustomerID = sub.CustomerID
	}
	st.StripeStatus = sub.Status
	st.Items = nil
	for _, it := range sub.Items {
		st.Items = append(st.Items, billingv1alpha1.ObservedItem{ItemID: it.ID, PriceID: it.PriceID, Quantity: it.Quantity})
	}
	st.CurrentPeriodStart, st.CurrentPeriodEnd = UnixTime(sub.CurrentPeriodStart), UnixTime(sub.CurrentPeriodEnd)
	st.CancelAtPeriodEnd = sub.CancelAtPeriodEnd
	st.CancelAt, st.CanceledAt, st.TrialEnd = UnixTime(sub.CancelAt), UnixTime(sub.CanceledAt), UnixTime(sub.TrialEnd)
	st.PauseCollection = sub.PauseCollection
}

// SubscriptionOf is the inverse of SetSubscription and InvoiceStatus: the
// subscription as status shows it, with its latest invoice. It carries no
// metadata and no invoice lines.
func SubscriptionOf(st *billingv1alpha1.StripeSubscriptionStatus) *stripe.Subscription {
	sub := &stripe.Subscription{ID: st.SubscriptionID, CustomerID: st.CustomerID, Status: st.StripeStatus,
		CancelAtPeriodEnd: st.CancelAtPeriodEnd, PauseCollection: st.PauseCollection,
		CurrentPeriodStart: Unix(st.CurrentPeriodStart), CurrentPeriodEnd: Unix(st.CurrentPeriodEnd),
		CancelAt: Unix(st.CancelAt), CanceledAt: Unix(st.CanceledAt), TrialEnd: Unix(st.TrialEnd)}
	for _, it := range st.Items {
		sub.Items = append(sub.Items, stripe.SubscriptionItem{ID: it.ItemID, PriceID: it.PriceID, Quantity: it.Quantity})
	}
	if in := st.LatestInvoice; in != nil {
		sub.LatestInvoice = &stripe.Invoice{ID: in.ID, Status: in.Status, AmountDue: in.AmountDue, AmountPaid: in.AmountPaid,
			Currency: in.Currency, AttemptCount: in.AttemptCount, NextPaymentAttempt: Unix(in.NextPaymentAttempt),
			HostedInvoiceURL: in.HostedInvoiceURL, BillingReason: in.BillingReason, PaymentError: in.PaymentError,
			PaymentIntentStatus: in.PaymentIntentStatus, Created: Unix(in.Created)}
	}
	return sub
}

// InvoiceStatus is the status summary of an invoice, nil for none. Its
// lastEvent marker is the webhook server's to set.
func InvoiceStatus(inv *stripe.Invoice) *billingv1alpha1.InvoiceStatus {
	if inv == nil {
		return nil
	}
	return &billingv1alpha1.InvoiceStatus{
		ID:                  inv.ID,
		Status:              inv.Status,
		AmountDue:           inv.AmountDue,
		AmountPaid:          inv.AmountPaid,
		Currency:            inv.Currency,
		AttemptCount:        inv.AttemptCount,
		NextPaymentAttempt:  UnixTime(inv.NextPaymentAttempt),
		HostedInvoiceURL:    inv.HostedInvoiceURL,
		BillingReason:       inv.BillingReason,
		Created:             UnixTime(inv.Created),
		PaymentIntentStatus: inv.PaymentIntentStatus,
		PaymentError:        inv.PaymentError,
	}
}

// UnixTime converts Stripe's Unix seconds to a status time (nil for 0,
// which Stripe sends for "none").
func UnixTime(sec int64) *metav1.Time {
	if sec == 0 {
		return nil
	}
	t := metav1.NewTime(time.Unix(sec, 0).UTC())
	return &t
}

// Unix is the inverse of UnixTime (0 for nil).
func Unix(t *metav1.Time) int64 {
	if t == nil {
		return 0
	}
	return t.Unix()
}
