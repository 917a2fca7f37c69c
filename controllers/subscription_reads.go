package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// readMark is what a subscription's status held when this process last read
// the subscription from Stripe (or got it back from a write).
type readMark struct {
	at             time.Time
	generation     int64
	subscriptionID string
	lastEvent      *billingv1alpha1.EventRef
	deferred       *billingv1alpha1.EventRef
	invoiceEvent   *billingv1alpha1.EventRef
}

// noteRead remembers the markers of the status a pass that read Stripe
// wrote.
func (r *StripeSubscriptionReconciler) noteRead(uid types.UID, obj *billingv1alpha1.StripeSubscription) {
	st := &obj.Status
	r.reads.Store(uid, readMark{at: time.Now(), generation: obj.Generation, subscriptionID: st.SubscriptionID,
		lastEvent: st.LastEvent.DeepCopy(), deferred: st.DeferredEvent.DeepCopy(), invoiceEvent: invoiceMarker(st.LatestInvoice).DeepCopy()})
}

// statusCarriesNews tells whether this pass may take the subscription from
// status instead of reading Stripe: it was woken by the webhook server's
// write of an invoice event, whose state status now shows, and nothing else
// changed since this process last read Stripe. That is, the spec is the one
// the last successful pass applied; no subscription event was applied and
// none was deferred since (a customer.subscription.updated can carry a
// Dashboard edit that status does not show, such as metadata); no request
// annotation is pending; and the last read is younger than the resync
// period (a resync always reads). When in doubt, it reads. A pass that uses
// status moves the remembered invoice marker once its status is written
// (usedStatus), so the next resync reads.
func (r *StripeSubscriptionReconciler) statusCarriesNews(obj *billingv1alpha1.StripeSubscription) bool {
	v, ok := r.reads.Load(obj.UID)
	if !ok {
		return false
	}
	m := v.(readMark)
	st := &obj.Status
	ann := obj.GetAnnotations()
	_, pending := ann[billingv1alpha1.AnnotationCreatePending]
	_, recreate := ann[billingv1alpha1.AnnotationRecreate]
	synced := findCondition(st.Conditions, billingv1alpha1.ConditionSynced)
	inv := invoiceMarker(st.LatestInvoice)
	if readOwed(st) || pending || recreate || m.generation != obj.Generation || st.ObservedGeneration != obj.Generation ||
		synced == nil || synced.Status != metav1.ConditionTrue || synced.ObservedGeneration != obj.Generation ||
		m.subscriptionID != st.SubscriptionID || time.Since(m.at) >= resyncOr(r.ResyncPeriod) ||
		!equality.Semantic.DeepEqual(m.lastEvent, st.LastEvent) || !equality.Semantic.DeepEqual(m.deferred, st.DeferredEvent) ||
		inv == nil || equality.Semantic.DeepEqual(m.invoiceEvent, inv) {
		return false
	}
	return true
}

// usedStatus notes, once the status of a pass that took the subscription
// from status is written, that its invoice marker was consumed: a later
// pass with the same marker (a resync) reads Stripe. Noted only after the
// write, so that a pass whose write conflicted (the webhook server's
// event-ID annotation write often lands just after the status write that
// woke it) takes status again on its retry instead of reading.
func (r *StripeSubscriptionReconciler) usedStatus(obj *billingv1alpha1.StripeSubscription) {
	v, ok := r.reads.Load(obj.UID)
	if !ok {
		return
	}
	m := v.(readMark)
	m.invoiceEvent = invoiceMarker(obj.Status.LatestInvoice).DeepCopy()
	r.reads.Store(obj.UID, m)
}

// readOwed tells whether the webhook server deferred an event that no read
// of Stripe has settled yet (status.deferredEvent; setObservedStatus clears
// it): the pass must then read the subscription on its own, never take it
// from status or from a list.
func readOwed(st *billingv1alpha1.StripeSubscriptionStatus) bool {
	return st.DeferredEvent != nil
}
