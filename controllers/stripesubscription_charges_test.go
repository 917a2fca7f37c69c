package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

func TestEndedBy(t *testing.T) {
	spec := &billingv1alpha1.StripeSubscriptionSpec{}
	declared := &billingv1alpha1.StripeSubscriptionSpec{CancelAtPeriodEnd: true}
	for _, tc := range []struct {
		name string
		sub  *stripe.Subscription
		spec *billingv1alpha1.StripeSubscriptionSpec
		want string
	}{
		{"live", &stripe.Subscription{Status: "active"}, spec, ""},
		{"gone", nil, spec, ""},
		{"dunning", &stripe.Subscription{Status: "canceled", Cancellation: &stripe.CancellationDetails{Reason: "payment_failed"}}, spec, billingv1alpha1.ReasonCanceledForNonPayment},
		{"dispute", &stripe.Subscription{Status: "canceled", Cancellation: &stripe.CancellationDetails{Reason: "payment_disputed"}}, spec, billingv1alpha1.ReasonCanceledForNonPayment},
		{"expired", &stripe.Subscription{Status: "incomplete_expired"}, spec, billingv1alpha1.ReasonCanceledForNonPayment},
		{"operator comment", &stripe.Subscription{Status: "canceled", Cancellation: &stripe.CancellationDetails{Reason: "cancellation_requested", Comment: operatorCancelComment}}, spec, billingv1alpha1.ReasonCanceledByOperator},
		{"declared", &stripe.Subscription{Status: "canceled", Cancellation: &stripe.CancellationDetails{Reason: "cancellation_requested"}}, declared, billingv1alpha1.ReasonCanceledByOperator},
		{"dashboard", &stripe.Subscription{Status: "canceled", Cancellation: &stripe.CancellationDetails{Reason: "cancellation_requested"}}, spec, billingv1alpha1.ReasonCanceledOutsideOperator},
		{"no details", &stripe.Subscription{Status: "canceled"}, spec, billingv1alpha1.ReasonCanceledOutsideOperator},
	} {
		if got := endedBy(tc.sub, tc.spec); got != tc.want {
			t.Errorf("%s: endedBy = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestRecentAttempts(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) metav1.Time { return metav1.NewTime(now.Add(-ago)) }
	got := recentAttempts([]metav1.Time{at(25 * time.Hour), at(24 * time.Hour), at(23*time.Hour + 59*time.Minute), at(time.Minute)}, now)
	if len(got) != 2 || !got[0].Equal(&[]metav1.Time{at(23*time.Hour + 59*time.Minute)}[0]) {
		t.Fatalf("recent = %v, want the last two", got)
	}
}

// TestUpdateCharges: which updates are charge attempts.
func TestUpdateCharges(t *testing.T) {
	sub := &stripe.Subscription{Status: "active", CollectionMethod: "charge_automatically", Items: []stripe.SubscriptionItem{{ID: "si_1", PriceID: "price_a", Quantity: 1}}}
	for _, tc := range []struct {
		name   string
		spec   billingv1alpha1.StripeSubscriptionSpec
		params stripe.SubscriptionUpdateParams
		sub    *stripe.Subscription
		want   bool
	}{
		{"quantity, create_prorations", billingv1alpha1.StripeSubscriptionSpec{}, stripe.SubscriptionUpdateParams{Items: []stripe.SubscriptionItemUpdate{{ID: "si_1", PriceID: "price_a", Quantity: 2}}}, sub, false},
		{"quantity, always_invoice", billingv1alpha1.StripeSubscriptionSpec{ProrationBehavior: billingv1alpha1.ProrationBehaviorAlwaysInvoice}, stripe.SubscriptionUpdateParams{Items: []stripe.SubscriptionItemUpdate{{ID: "si_1", PriceID: "price_a", Quantity: 2}}}, sub, true},
		{"price swap", billingv1alpha1.StripeSubscriptionSpec{}, stripe.SubscriptionUpdateParams{Items: []stripe.SubscriptionItemUpdate{{ID: "si_1", PriceID: "price_b", Quantity: 1}}}, sub, true},
		{"price swap, default_incomplete", billingv1alpha1.StripeSubscriptionSpec{PaymentBehavior: billingv1alpha1.PaymentBehaviorDefaultIncomplete}, stripe.SubscriptionUpdateParams{Items: []stripe.SubscriptionItemUpdate{{ID: "si_1", PriceID: "price_b", Quantity: 1}}}, sub, false},
		{"price swap in a trial", billingv1alpha1.StripeSubscriptionSpec{}, stripe.SubscriptionUpdateParams{Items: []stripe.SubscriptionItemUpdate{{ID: "si_1", PriceID: "price_b", Quantity: 1}}}, &stripe.Subscription{Status: "trialing", Items: sub.Items}, false},
		{"metadata only", billingv1alpha1.StripeSubscriptionSpec{ProrationBehavior: billingv1alpha1.ProrationBehaviorAlwaysInvoice}, stripe.SubscriptionUpdateParams{Metadata: map[string]string{"a": "b"}}, sub, false},
	} {
		s := &subscriptionScope{sub: tc.sub, diff: subscriptionDiff{params: tc.params, itemsChanged: len(tc.params.Items) > 0}}
		s.pass = &pass[*billingv1alpha1.StripeSubscription]{obj: &billingv1alpha1.StripeSubscription{Spec: tc.spec}}
		if got := s.updateCharges(); got != tc.want {
			t.Errorf("%s: updateCharges = %t, want %t", tc.name, got, tc.want)
		}
	}
}

// TestRefusedBeforeCharging: only answers Stripe gives without executing
// the request take an attempt back; a 409 (the same key still executing,
// possibly charging), a 5xx or a card decline keep it counted.
func TestRefusedBeforeCharging(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		refused bool
	}{
		{"rate limited", &stripe.Error{HTTPStatus: 429, Class: stripe.ClassRateLimited}, true},
		{"client-side limiter", &stripe.Error{Class: stripe.ClassRateLimited}, true},
		{"invalid parameters", &stripe.Error{HTTPStatus: 400}, true},
		{"key in use: the first request may be charging", &stripe.Error{HTTPStatus: 409}, false},
		{"card declined", &stripe.Error{HTTPStatus: 402}, false},
		{"server error", &stripe.Error{HTTPStatus: 500}, false},
	} {
		if got := refusedBeforeCharging(tc.err); got != tc.refused {
			t.Errorf("%s: refusedBeforeCharging = %v, want %v", tc.name, got, tc.refused)
		}
	}
}
