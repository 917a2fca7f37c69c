package controllers

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// subscriptionNeedsPerson tells whether a subscription waits for something
// only a person can do, so that it is reported Stalled (kstatus Failed: Flux
// fails fast instead of timing out) rather than in progress forever:
//
//   - incomplete with no payment attempt scheduled: the first payment was
//     declined or needs authentication, or was never attempted
//     (default_incomplete); Stripe does not retry a subscription's first
//     invoice, and the subscription expires after 23 hours;
//   - unpaid: Stripe's retries are over and it stopped collecting;
//   - past_due with no further attempt scheduled (retries exhausted);
//   - paused: the trial ended without a payment method.
//
// A past_due subscription with a retry scheduled is not stalled: Stripe is
// still working on it (kstatus InProgress, Argo CD Degraded through
// PaymentFailed).
func subscriptionNeedsPerson(sub *stripe.Subscription, pay condition) (reason, message string, stalled bool) {
	if sub == nil {
		return "", "", false
	}
	inv := sub.LatestInvoice
	switch {
	case sub.Status == subStatusIncomplete && (inv == nil || inv.NextPaymentAttempt == 0):
		if pay.status == metav1.ConditionTrue {
			return pay.reason, pay.message + " Stripe does not retry a subscription's first payment: update the payment method and pay the invoice, or the subscription expires.", true
		}
		return billingv1alpha1.ReasonAwaitingPayment,
			"The subscription is incomplete: its first invoice awaits the customer's payment and Stripe will not attempt it; the subscription expires unless the invoice is paid.", true
	case sub.Status == subStatusUnpaid:
		msg := "The subscription is unpaid: Stripe stopped retrying the payment and no longer collects; update the payment method and pay the open invoice."
		if pay.status == metav1.ConditionTrue {
			msg = pay.message + " Update the payment method and pay the open invoice."
		}
		return billingv1alpha1.ReasonUnpaid, msg, true
	case pay.status == metav1.ConditionTrue && pay.reason == billingv1alpha1.ReasonRetriesExhausted:
		return pay.reason, pay.message + " Update the payment method and pay the open invoice.", true
	case sub.Status == subStatusPaused:
		return billingv1alpha1.ReasonPaused, fmt.Sprintf("The subscription is %s in Stripe: its trial ended without a payment method; add one and resume the subscription.", sub.Status), true
	}
	return "", "", false
}
