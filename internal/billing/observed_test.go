package billing

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

func sampleSubscription() *stripe.Subscription {
	return &stripe.Subscription{ID: "sub_1", CustomerID: "cus_1", Status: "past_due",
		Items:              []stripe.SubscriptionItem{{ID: "si_1", PriceID: "price_1", Quantity: 2}, {ID: "si_2", PriceID: "price_2", Quantity: 1}},
		CurrentPeriodStart: 1700000000, CurrentPeriodEnd: 1702592000, CancelAtPeriodEnd: true,
		CancelAt: 1702592000, CanceledAt: 1700000500, TrialEnd: 1699999000, PauseCollection: "void",
		LatestInvoice: &stripe.Invoice{ID: "in_1", Status: "open", AmountDue: 4000, AmountPaid: 0, Currency: "usd",
			AttemptCount: 2, NextPaymentAttempt: 1700100000, HostedInvoiceURL: "https://invoice.example/in_1",
			BillingReason: "subscription_cycle", Created: 1700000001, PaymentIntentStatus: "requires_payment_method",
			PaymentError: "card_declined"}}
}

func TestSetSubscription(t *testing.T) {
	var st billingv1alpha1.StripeSubscriptionStatus
	sub := sampleSubscription()
	SetSubscription(&st, sub)
	st.LatestInvoice = InvoiceStatus(sub.LatestInvoice)
	want := billingv1alpha1.StripeSubscriptionStatus{SubscriptionID: "sub_1", CustomerID: "cus_1", StripeStatus: "past_due",
		Items:              []billingv1alpha1.ObservedItem{{ItemID: "si_1", PriceID: "price_1", Quantity: 2}, {ItemID: "si_2", PriceID: "price_2", Quantity: 1}},
		CurrentPeriodStart: UnixTime(1700000000), CurrentPeriodEnd: UnixTime(1702592000), CancelAtPeriodEnd: true,
		CancelAt: UnixTime(1702592000), CanceledAt: UnixTime(1700000500), TrialEnd: UnixTime(1699999000), PauseCollection: "void",
		LatestInvoice: &billingv1alpha1.InvoiceStatus{ID: "in_1", Status: "open", AmountDue: 4000, Currency: "usd",
			AttemptCount: 2, NextPaymentAttempt: UnixTime(1700100000), HostedInvoiceURL: "https://invoice.example/in_1",
			BillingReason: "subscription_cycle", Created: UnixTime(1700000001), PaymentIntentStatus: "requires_payment_method",
			PaymentError: "card_declined"}}
	if !equality.Semantic.DeepEqual(st, want) {
		t.Errorf("status = %+v\nwant     %+v", st, want)
	}

	// The inverse gives back what was mapped (metadata and lines aside).
	back := SubscriptionOf(&st)
	if !equality.Semantic.DeepEqual(back, sub) {
		t.Errorf("SubscriptionOf = %+v\nwant          %+v", back, sub)
	}
}

func TestSetSubscriptionKeepsWhatTheInputDoesNotSay(t *testing.T) {
	st := billingv1alpha1.StripeSubscriptionStatus{CustomerID: "cus_known",
		Items: []billingv1alpha1.ObservedItem{{ItemID: "si_old"}}, CancelAt: UnixTime(5), PauseCollection: "void"}
	SetSubscription(&st, &stripe.Subscription{ID: "sub_1", Status: "active"})
	if st.CustomerID != "cus_known" {
		t.Errorf("a subscription without a customer cleared it: %q", st.CustomerID)
	}
	// Everything else is what Stripe says now: gone is gone.
	if st.Items != nil || st.CancelAt != nil || st.PauseCollection != "" || st.CurrentPeriodEnd != nil {
		t.Errorf("stale fields kept: %+v", st)
	}
	if InvoiceStatus(nil) != nil {
		t.Errorf("InvoiceStatus(nil) is not nil")
	}
}

func TestUnixTime(t *testing.T) {
	if UnixTime(0) != nil || Unix(nil) != 0 {
		t.Errorf("zero is none")
	}
	if got := UnixTime(1700000000); got.Unix() != 1700000000 || got.Location().String() != "UTC" || Unix(got) != 1700000000 {
		t.Errorf("UnixTime(1700000000) = %v", got)
	}
}
