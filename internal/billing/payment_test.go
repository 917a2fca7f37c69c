package billing

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

func TestPaymentFailed(t *testing.T) {
	next := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	open := func(mut func(*billingv1alpha1.InvoiceStatus)) *billingv1alpha1.InvoiceStatus {
		in := &billingv1alpha1.InvoiceStatus{ID: "in_1", Status: "open", AmountDue: 4000, Currency: "usd", AttemptCount: 1, PaymentError: "card_declined", NextPaymentAttempt: &next}
		if mut != nil {
			mut(in)
		}
		return in
	}
	for _, tc := range []struct {
		name    string
		sub     string
		inv     *billingv1alpha1.InvoiceStatus
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{"no invoice", "active", nil, metav1.ConditionFalse, billingv1alpha1.ReasonPaid, "No invoice is owed."},
		{"paid", "active", open(func(i *billingv1alpha1.InvoiceStatus) { i.Status = "paid"; i.PaymentError = "" }), metav1.ConditionFalse, billingv1alpha1.ReasonPaid, "The latest invoice in_1 is paid."},
		{"declined, subscription not yet known", "", open(nil), metav1.ConditionTrue, billingv1alpha1.ReasonPaymentDeclined,
			"Payment of invoice in_1 (40.00 USD) was declined (card_declined) after 1 attempt; next attempt at 2026-01-02T03:04:05Z."},
		{"declined, past_due: same message", "past_due", open(nil), metav1.ConditionTrue, billingv1alpha1.ReasonPaymentDeclined,
			"Payment of invoice in_1 (40.00 USD) was declined (card_declined) after 1 attempt; next attempt at 2026-01-02T03:04:05Z."},
		{"zero-decimal amount", "past_due", open(func(i *billingv1alpha1.InvoiceStatus) { i.AmountDue, i.Currency = 500, "jpy" }), metav1.ConditionTrue, billingv1alpha1.ReasonPaymentDeclined,
			"Payment of invoice in_1 (500 JPY) was declined (card_declined) after 1 attempt; next attempt at 2026-01-02T03:04:05Z."},
		{"authentication by intent status", "past_due", open(func(i *billingv1alpha1.InvoiceStatus) { i.PaymentError, i.PaymentIntentStatus = "", "requires_action" }), metav1.ConditionTrue, billingv1alpha1.ReasonAuthenticationRequired,
			"Payment of invoice in_1 (40.00 USD) needs the customer to authenticate the payment after 1 attempt; next attempt at 2026-01-02T03:04:05Z."},
		{"authentication by code", "active", open(func(i *billingv1alpha1.InvoiceStatus) { i.PaymentError = "authentication_required" }), metav1.ConditionTrue, billingv1alpha1.ReasonAuthenticationRequired,
			"Payment of invoice in_1 (40.00 USD) needs the customer to authenticate the payment (authentication_required) after 1 attempt; next attempt at 2026-01-02T03:04:05Z."},
		{"retries exhausted", "unpaid", open(func(i *billingv1alpha1.InvoiceStatus) { i.AttemptCount, i.NextPaymentAttempt = 4, nil }), metav1.ConditionTrue, billingv1alpha1.ReasonRetriesExhausted,
			"Payment of invoice in_1 (40.00 USD) could not be collected and Stripe stopped retrying (card_declined) after 4 attempts; no further attempt is scheduled."},
		{"incomplete, never attempted", "incomplete", open(func(i *billingv1alpha1.InvoiceStatus) { i.AttemptCount, i.PaymentError = 0, "" }), metav1.ConditionFalse, billingv1alpha1.ReasonPaid,
			"The first invoice awaits payment; no payment has failed yet."},
		{"overdue sent invoice", "past_due", open(func(i *billingv1alpha1.InvoiceStatus) { i.AttemptCount, i.PaymentError = 0, "" }), metav1.ConditionTrue, billingv1alpha1.ReasonPaymentDeclined,
			"The subscription is past_due: the latest invoice is overdue."},
		{"declined without a code (event payload)", "active", open(func(i *billingv1alpha1.InvoiceStatus) {
			i.PaymentError, i.PaymentIntentStatus = "", "requires_payment_method"
		}), metav1.ConditionTrue, billingv1alpha1.ReasonPaymentDeclined,
			"Payment of invoice in_1 (40.00 USD) was declined after 1 attempt; next attempt at 2026-01-02T03:04:05Z."},
		{"open, not attempted", "active", open(func(i *billingv1alpha1.InvoiceStatus) { i.AttemptCount, i.PaymentError = 0, "" }), metav1.ConditionFalse, billingv1alpha1.ReasonPaid,
			"The latest invoice in_1 is open; no payment has failed."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PaymentFailed(tc.sub, tc.inv)
			if got.Status != tc.status || got.Reason != tc.reason || got.Message != tc.message {
				t.Errorf("got %+v\nwant {%s %s %s}", got, tc.status, tc.reason, tc.message)
			}
		})
	}
}

func TestNewFailure(t *testing.T) {
	inv := &billingv1alpha1.InvoiceStatus{ID: "in_1", AttemptCount: 1}
	failed := Condition{metav1.ConditionTrue, billingv1alpha1.ReasonPaymentDeclined, "x"}
	was := &metav1.Condition{Type: billingv1alpha1.ConditionPaymentFailed, Status: metav1.ConditionTrue, Reason: billingv1alpha1.ReasonPaymentDeclined, Message: "other wording"}
	if !NewFailure(nil, nil, failed, inv) {
		t.Error("a first failure is new")
	}
	if NewFailure(was, inv, failed, inv) {
		t.Error("the same attempt again is not new, whatever the wording")
	}
	if !NewFailure(was, inv, failed, &billingv1alpha1.InvoiceStatus{ID: "in_1", AttemptCount: 2}) {
		t.Error("the next attempt is new")
	}
	if NewFailure(nil, nil, Condition{Status: metav1.ConditionFalse}, inv) {
		t.Error("a success is not a failure")
	}
	overdue := &billingv1alpha1.InvoiceStatus{ID: "in_1"}
	if NewFailure(was, overdue, failed, inv) {
		t.Error("the first attempt of an invoice already reported overdue (past_due seen before payment_failed) is the same failure")
	}
	if !NewFailure(was, overdue, failed, &billingv1alpha1.InvoiceStatus{ID: "in_1", AttemptCount: 2}) {
		t.Error("a second attempt after the overdue report is new")
	}
}
