package controllers

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Who ended a subscription, from Stripe's cancellation_details
// (https://docs.stripe.com/api/subscriptions/object#subscription_object-cancellation_details):
//
//   - CanceledForNonPayment: reason payment_failed (Stripe canceled it when
//     its retries ran out, as the account's dunning setting says) or
//     payment_disputed (the account's dispute setting), or the first
//     payment was never made (incomplete_expired);
//   - CanceledByOperator: the declaration asked for it: the operator's
//     comment on cancellation_details (written with cancel_at_period_end),
//     or spec.cancelAtPeriodEnd;
//   - CanceledOutsideOperator: any other cancellation (reason
//     cancellation_requested from the Dashboard or another API client, or
//     none): the only one that is drift.

// operatorCancelComment is the cancellation_details.comment the operator
// writes when it schedules a cancellation the declaration asks for.
const operatorCancelComment = "stripe-operator: declared by the StripeSubscription"

// recreateForce is the recreate annotation's value that recreates even
// when the customer's payment method is the one that failed.
const recreateForce = "force"

// endedBy says who ended sub ("" when sub is gone or live).
func endedBy(sub *stripe.Subscription, spec *billingv1alpha1.StripeSubscriptionSpec) string {
	if sub == nil || !subscriptionEnded(sub.Status) {
		return ""
	}
	c := sub.Cancellation
	switch {
	case sub.Status == subStatusIncompleteExpired:
		return billingv1alpha1.ReasonCanceledForNonPayment
	case c != nil && (c.Reason == stripe.CancellationPaymentFailed || c.Reason == stripe.CancellationPaymentDisputed):
		return billingv1alpha1.ReasonCanceledForNonPayment
	case c != nil && c.Comment == operatorCancelComment, spec.CancelAtPeriodEnd:
		return billingv1alpha1.ReasonCanceledByOperator
	}
	return billingv1alpha1.ReasonCanceledOutsideOperator
}

// cancellationStatus is status.cancellation for what this pass read: set
// for an ended subscription, nil otherwise.
func cancellationStatus(sub *stripe.Subscription, ended bool, spec *billingv1alpha1.StripeSubscriptionSpec) *billingv1alpha1.CancellationStatus {
	if !ended || sub == nil {
		return nil
	}
	out := &billingv1alpha1.CancellationStatus{EndedBy: endedBy(sub, spec)}
	if c := sub.Cancellation; c != nil {
		out.Reason, out.Feedback, out.Comment = c.Reason, c.Feedback, c.Comment
	}
	if out.EndedBy == billingv1alpha1.ReasonCanceledForNonPayment && sub.LatestInvoice != nil {
		out.FailedPaymentMethod = sub.LatestInvoice.PaymentErrorMethod
	}
	return out
}

// endedCondition is the Stalled reason and message of an ended
// subscription: who ended it.
func endedCondition(st *billingv1alpha1.StripeSubscriptionStatus, sub *stripe.Subscription) (string, string) {
	how := fmt.Sprintf("annotate the resource with %s=true to create a new subscription", billingv1alpha1.AnnotationRecreate)
	c := st.Cancellation
	if c == nil || c.EndedBy == "" {
		return billingv1alpha1.ReasonSubscriptionEnded, fmt.Sprintf("Subscription %s has ended in Stripe (%s) and is not recreated automatically; %s.", st.SubscriptionID, endedState(sub), how)
	}
	switch c.EndedBy {
	case billingv1alpha1.ReasonCanceledForNonPayment:
		what := "Stripe canceled it for non-payment when its payment retries ran out (cancellation reason " + c.Reason + ")"
		if sub.Status == subStatusIncompleteExpired {
			what = "its first payment was not made within 23 hours (incomplete_expired)"
		}
		if c.FailedPaymentMethod != "" {
			how = fmt.Sprintf("update the customer's payment method (%s failed), then %s; a recreate while %s is the default is refused unless %s=force", c.FailedPaymentMethod, how, c.FailedPaymentMethod, billingv1alpha1.AnnotationRecreate)
		}
		return c.EndedBy, fmt.Sprintf("Subscription %s has ended: %s. It is not recreated automatically; %s.", st.SubscriptionID, what, how)
	case billingv1alpha1.ReasonCanceledByOperator:
		return c.EndedBy, fmt.Sprintf("Subscription %s has ended as declared (cancelAtPeriodEnd); %s.", st.SubscriptionID, how)
	}
	detail := ""
	if c.Reason != "" {
		detail = " (cancellation reason " + c.Reason
		if c.Feedback != "" {
			detail += ", feedback " + c.Feedback
		}
		detail += ")"
	}
	return c.EndedBy, fmt.Sprintf("Subscription %s was canceled outside the operator, in the Dashboard or through the API%s, and is not recreated automatically; %s.", st.SubscriptionID, detail, how)
}

// sameFailedCard tells whether the subscription was canceled for
// non-payment and the customer's default payment method is still the one
// whose payments failed (a recreate would charge it again at once).
func (s *subscriptionScope) sameFailedCard(ctx context.Context) bool {
	c := s.obj.Status.Cancellation
	if c == nil || c.EndedBy != billingv1alpha1.ReasonCanceledForNonPayment || c.FailedPaymentMethod == "" || s.customerID == "" {
		return false
	}
	pm, err := s.defaultPaymentMethod(ctx)
	if err != nil {
		// Unknown: refuse rather than risk the failed card; the request is
		// removed and can be made again.
		log.FromContext(ctx).Info("Could not read the customer's payment method before a recreate; refusing it", "error", err.Error())
		return true
	}
	return pm == c.FailedPaymentMethod
}
