package controllers

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
)

// webhookEventApplied passes updates in which the webhook server applied a
// Stripe event: status.lastEvent (subscription events) or
// latestInvoice.lastEvent (invoice events) moved, or it recorded an event
// whose order it could not know (a new deferredEvent; the reconciler's read
// clears it, which wakes nothing). The reconciler then looks
// at Stripe soon after a change made there (a Dashboard edit is corrected
// or reported without waiting for the resync). Status-only changes are
// otherwise filtered out; the reconciler's own status writes keep both
// markers as they are, so they do not wake it.
func webhookEventApplied() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*billingv1alpha1.StripeSubscription)
			n, ok2 := e.ObjectNew.(*billingv1alpha1.StripeSubscription)
			if !ok1 || !ok2 {
				return false
			}
			return !equality.Semantic.DeepEqual(o.Status.LastEvent, n.Status.LastEvent) ||
				(n.Status.DeferredEvent != nil && !equality.Semantic.DeepEqual(o.Status.DeferredEvent, n.Status.DeferredEvent)) ||
				!equality.Semantic.DeepEqual(invoiceMarker(o.Status.LatestInvoice), invoiceMarker(n.Status.LatestInvoice))
		},
	}
}

func invoiceMarker(in *billingv1alpha1.InvoiceStatus) *billingv1alpha1.EventRef {
	if in == nil {
		return nil
	}
	return in.LastEvent
}

// paymentFailedEvent records the PaymentFailed Warning when obj's status,
// just written, reports a failure the status before did not
// (billing.NewFailure, the webhook server's rule too). It runs after the
// write, so that a pass that loses a conflict to the webhook server (which
// then recorded the Warning) records nothing: one failed attempt, one Event.
func (r *StripeSubscriptionReconciler) paymentFailedEvent(obj *billingv1alpha1.StripeSubscription, before *billingv1alpha1.StripeSubscriptionStatus) {
	pf := meta.FindStatusCondition(obj.Status.Conditions, billingv1alpha1.ConditionPaymentFailed)
	if pf == nil || before == nil {
		return
	}
	was := meta.FindStatusCondition(before.Conditions, billingv1alpha1.ConditionPaymentFailed)
	now := billing.Condition{Status: pf.Status, Reason: pf.Reason, Message: pf.Message}
	if billing.NewFailure(was, before.LatestInvoice, now, obj.Status.LatestInvoice) {
		r.event(obj, true, "PaymentFailed", pf.Message)
	}
}
