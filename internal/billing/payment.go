package billing

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// Subscription and invoice states the derivation reads (Stripe's values).
const (
	subscriptionPastDue    = "past_due"
	subscriptionUnpaid     = "unpaid"
	subscriptionIncomplete = "incomplete"

	invoicePaid = "paid"
	invoiceOpen = "open"

	// PaymentIntentRequiresAction is the payment intent status of a payment
	// that waits for the customer to authenticate (3-D Secure).
	PaymentIntentRequiresAction = "requires_action"
	// PaymentIntentRequiresPaymentMethod is the payment intent status after
	// a failed attempt (and before the first one).
	PaymentIntentRequiresPaymentMethod = "requires_payment_method"
	// ErrorAuthenticationRequired is the decline code of an off-session
	// payment the bank wants authenticated.
	ErrorAuthenticationRequired = "authentication_required"
)

// Condition is a derived condition before it is set on an object.
type Condition struct {
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

// PaymentFailed derives the PaymentFailed condition from the observed
// subscription status (status.stripeStatus, "" when not yet known) and the
// latest invoice (status.latestInvoice). It reads nothing else, so whoever
// wrote those fields, the condition is the same.
//
// True when the latest invoice is open after a failed attempt (a decline
// code, or a payment waiting for authentication), or when the subscription
// is past_due, unpaid or incomplete because of it. The reason is
// AuthenticationRequired when the payment waits for the customer,
// RetriesExhausted when Stripe stopped retrying (unpaid, or past_due with no
// next attempt), else PaymentDeclined.
func PaymentFailed(subStatus string, inv *billingv1alpha1.InvoiceStatus) Condition {
	failing := subStatus == subscriptionPastDue || subStatus == subscriptionUnpaid || subStatus == subscriptionIncomplete
	needsAction := inv != nil && (inv.PaymentIntentStatus == PaymentIntentRequiresAction || inv.PaymentError == ErrorAuthenticationRequired)
	// An attempt failed when Stripe reported its error, or the payment
	// waits for the customer, or the payment intent went back to
	// requires_payment_method after an attempt (what a decline does).
	attemptedAndFailed := inv != nil && inv.Status == invoiceOpen && inv.AttemptCount > 0 &&
		(inv.PaymentError != "" || needsAction || inv.PaymentIntentStatus == PaymentIntentRequiresPaymentMethod)
	if !failing && !attemptedAndFailed {
		switch {
		case inv == nil:
			return Condition{metav1.ConditionFalse, billingv1alpha1.ReasonPaid, "No invoice is owed."}
		case inv.Status == invoicePaid:
			return Condition{metav1.ConditionFalse, billingv1alpha1.ReasonPaid, fmt.Sprintf("The latest invoice %s is paid.", inv.ID)}
		case inv.AmountDue == 0:
			return Condition{metav1.ConditionFalse, billingv1alpha1.ReasonPaid, fmt.Sprintf("Nothing is owed on the latest invoice %s.", inv.ID)}
		case inv.Status == "":
			return Condition{metav1.ConditionFalse, billingv1alpha1.ReasonPaid, fmt.Sprintf("No payment of the latest invoice %s has failed.", inv.ID)}
		default:
			return Condition{metav1.ConditionFalse, billingv1alpha1.ReasonPaid, fmt.Sprintf("The latest invoice %s is %s; no payment has failed.", inv.ID, inv.Status)}
		}
	}
	if inv == nil || (inv.AttemptCount == 0 && inv.PaymentError == "" && !needsAction) {
		// incomplete without an attempt (default_incomplete waits for the
		// first payment to be confirmed), or past_due/unpaid for an overdue
		// sent invoice.
		if subStatus == subscriptionIncomplete {
			return Condition{metav1.ConditionFalse, billingv1alpha1.ReasonPaid, "The first invoice awaits payment; no payment has failed yet."}
		}
		reason := billingv1alpha1.ReasonPaymentDeclined
		if subStatus == subscriptionUnpaid {
			reason = billingv1alpha1.ReasonRetriesExhausted
		}
		return Condition{metav1.ConditionTrue, reason, fmt.Sprintf("The subscription is %s: the latest invoice is overdue.", subStatus)}
	}

	var reason, what string
	switch {
	case needsAction:
		reason, what = billingv1alpha1.ReasonAuthenticationRequired, "needs the customer to authenticate the payment"
	case subStatus == subscriptionUnpaid || (subStatus == subscriptionPastDue && inv.NextPaymentAttempt == nil):
		reason, what = billingv1alpha1.ReasonRetriesExhausted, "could not be collected and Stripe stopped retrying"
	default:
		reason, what = billingv1alpha1.ReasonPaymentDeclined, "was declined"
	}
	if inv.PaymentError != "" {
		what += " (" + inv.PaymentError + ")"
	}
	msg := fmt.Sprintf("Payment of invoice %s (%s) %s after %s", inv.ID, FormatAmount(inv.AmountDue, inv.Currency), what, attempts(inv.AttemptCount))
	if inv.NextPaymentAttempt != nil {
		msg += "; next attempt at " + inv.NextPaymentAttempt.UTC().Format(time.RFC3339) + "."
	} else {
		msg += "; no further attempt is scheduled."
	}
	return Condition{metav1.ConditionTrue, reason, msg}
}

func attempts(n int64) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// NewFailure tells whether a derived PaymentFailed condition reports a
// failure the status did not already report: True now, and before not True
// for the same reason on the same invoice and attempt. Both writers record
// their Warning Event only then, so one failed attempt gives one Event
// whichever writer noticed it first.
//
// An invoice seen overdue before any attempt is recorded (the subscription
// event saying past_due arrived before the invoice's payment_failed, as
// Stripe's unordered deliveries allow) and the same invoice's first failed
// attempt are one failure: attempt counts 0 and 1 compare equal.
func NewFailure(before *metav1.Condition, beforeInv *billingv1alpha1.InvoiceStatus, now Condition, nowInv *billingv1alpha1.InvoiceStatus) bool {
	if now.Status != metav1.ConditionTrue {
		return false
	}
	if before == nil || before.Status != metav1.ConditionTrue || before.Reason != now.Reason {
		return true
	}
	if beforeInv == nil || nowInv == nil {
		return false
	}
	return beforeInv.ID != nowInv.ID || max(beforeInv.AttemptCount, 1) != max(nowInv.AttemptCount, 1)
}
