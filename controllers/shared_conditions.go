package controllers

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// conditioned is implemented by every billing kind.
type conditioned interface {
	client.Object
	GetConditions() []metav1.Condition
	SetConditions([]metav1.Condition)
	SetObservedGeneration(int64)
	GetManagementPolicy() billingv1alpha1.ManagementPolicy
}

// setCondition sets one condition; lastTransitionTime changes only when the
// status does, so identical passes produce identical status.
func setCondition(o conditioned, condType string, status metav1.ConditionStatus, reason, message string) {
	conds := o.GetConditions()
	meta.SetStatusCondition(&conds, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: o.GetGeneration(),
	})
	o.SetConditions(conds)
}

func removeCondition(o conditioned, condType string) {
	conds := o.GetConditions()
	meta.RemoveStatusCondition(&conds, condType)
	o.SetConditions(conds)
}

// markReconciling says work is in flight: Reconciling=True, Ready=False.
func markReconciling(o conditioned, reason, message string) {
	setCondition(o, billingv1alpha1.ConditionReconciling, metav1.ConditionTrue, reason, message)
	removeCondition(o, billingv1alpha1.ConditionStalled)
	setCondition(o, billingv1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
}

// markStalled says a retry cannot help: Stalled=True, Ready=False, and
// Reconciling removed (kstatus: nothing is in flight). The generation was
// observed, so observedGeneration follows: kstatus reads a resource whose
// observedGeneration lags as in progress before it looks at Stalled.
func markStalled(o conditioned, reason, message string) {
	setCondition(o, billingv1alpha1.ConditionStalled, metav1.ConditionTrue, reason, message)
	removeCondition(o, billingv1alpha1.ConditionReconciling)
	setCondition(o, billingv1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
	o.SetObservedGeneration(o.GetGeneration())
}

// markSynced records that the pass reached Stripe and applied (or, in
// Observe mode, compared) the spec, and sets observedGeneration.
func markSynced(o conditioned) {
	reason, msg := billingv1alpha1.ReasonReconcileSuccess, "The Stripe object was reconciled with the spec."
	if o.GetManagementPolicy() == billingv1alpha1.ManagementPolicyObserve {
		reason, msg = billingv1alpha1.ReasonObserved, "The Stripe object was read and compared with the spec; Observe mode writes nothing."
	}
	setCondition(o, billingv1alpha1.ConditionSynced, metav1.ConditionTrue, reason, msg)
	removeCondition(o, billingv1alpha1.ConditionStalled)
	removeCondition(o, billingv1alpha1.ConditionReconciling)
	o.SetObservedGeneration(o.GetGeneration())
}

// markReady sets Ready=True (call after markSynced).
func markReady(o conditioned, message string) {
	setCondition(o, billingv1alpha1.ConditionReady, metav1.ConditionTrue, billingv1alpha1.ReasonAvailable, message)
}

// markNotReady sets Ready=False without touching the others.
func markNotReady(o conditioned, reason, message string) {
	setCondition(o, billingv1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
}

// specError is an error in the declaration or its references that a retry of
// the same spec cannot fix (the object is Stalled until the spec changes or
// the reference appears, which a watch reports).
type specError struct {
	reason string
	msg    string
}

func (e *specError) Error() string { return e.msg }

func newSpecError(reason, format string, args ...any) error {
	return &specError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// waitError says the object waits for something that will happen on its own
// (a referenced customer getting its ID); it requeues without backoff growth.
type waitError struct {
	reason string
	msg    string
	after  time.Duration
}

func (e *waitError) Error() string { return e.msg }

func newWaitError(reason string, after time.Duration, format string, args ...any) error {
	return &waitError{reason: reason, msg: fmt.Sprintf(format, args...), after: after}
}

// handleError turns a phase error into conditions and a result. Stripe
// errors are classified by internal/stripe; their text is stable (no request
// IDs), so an identical failure writes an identical status and does not
// re-trigger the reconcile.
func handleError(o conditioned, err error, resync time.Duration) (ctrl.Result, error) {
	var se *specError
	if errors.As(err, &se) {
		setCondition(o, billingv1alpha1.ConditionSynced, metav1.ConditionFalse, se.reason, se.msg)
		markStalled(o, se.reason, se.msg)
		return ctrl.Result{RequeueAfter: jitter(resync)}, nil
	}
	var we *waitError
	if errors.As(err, &we) {
		setCondition(o, billingv1alpha1.ConditionSynced, metav1.ConditionFalse, we.reason, we.msg)
		markReconciling(o, we.reason, we.msg)
		return ctrl.Result{RequeueAfter: we.after}, nil
	}
	var stripeErr *stripe.Error
	if !errors.As(err, &stripeErr) {
		msg := "Reconcile failed: " + err.Error()
		setCondition(o, billingv1alpha1.ConditionSynced, metav1.ConditionFalse, billingv1alpha1.ReasonReconcileError, msg)
		markReconciling(o, billingv1alpha1.ReasonReconcileError, msg)
		return ctrl.Result{}, err
	}
	switch stripeErr.Class {
	case stripe.ClassRateLimited:
		msg := "Stripe is rate limiting requests; retrying."
		setCondition(o, billingv1alpha1.ConditionSynced, metav1.ConditionFalse, billingv1alpha1.ReasonRateLimited, msg)
		markReconciling(o, billingv1alpha1.ReasonRateLimited, msg)
		after := stripeErr.RetryAfter
		if after <= 0 {
			after = time.Second
		}
		return ctrl.Result{RequeueAfter: after + time.Duration(rand.Int64N(int64(after)+1))}, nil
	case stripe.ClassAuth:
		reason, msg := credentialsCondition(stripeErr)
		setCondition(o, billingv1alpha1.ConditionSynced, metav1.ConditionFalse, reason, msg)
		markStalled(o, reason, msg)
		return ctrl.Result{RequeueAfter: jitter(resync)}, nil
	case stripe.ClassTerminal, stripe.ClassIdempotency:
		msg := "Stripe rejected the spec: " + stripeErr.Error()
		setCondition(o, billingv1alpha1.ConditionSynced, metav1.ConditionFalse, billingv1alpha1.ReasonInvalidSpec, msg)
		markStalled(o, billingv1alpha1.ReasonInvalidSpec, msg)
		return ctrl.Result{RequeueAfter: jitter(resync)}, nil
	case stripe.ClassNotFound:
		msg := "A Stripe object the spec names does not exist: " + stripeErr.Error()
		setCondition(o, billingv1alpha1.ConditionSynced, metav1.ConditionFalse, billingv1alpha1.ReasonNotFound, msg)
		markStalled(o, billingv1alpha1.ReasonNotFound, msg)
		return ctrl.Result{RequeueAfter: jitter(resync)}, nil
	default:
		msg := "Stripe request failed; retrying: " + stripeErr.Error()
		setCondition(o, billingv1alpha1.ConditionSynced, metav1.ConditionFalse, billingv1alpha1.ReasonReconcileError, msg)
		markReconciling(o, billingv1alpha1.ReasonReconcileError, msg)
		return ctrl.Result{}, err
	}
}

// jitter spreads resyncs over +10% so that many objects do not hit Stripe
// in the same second.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}
