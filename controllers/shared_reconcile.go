package controllers

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// phase is one named step of a pass over a scope S (what the pass knows
// about one resource).
type phase[S any] struct {
	name string
	run  func(ctx context.Context, s S) error
}

// runPhases runs phases in order and stops at the first error, which it
// hands to fail with the phase's name. A pass that completes requeues after
// the jittered resync period.
func runPhases[S any](ctx context.Context, s S, phases []phase[S], resync time.Duration, fail func(context.Context, S, string, error) (ctrl.Result, error)) (ctrl.Result, error) {
	for _, p := range phases {
		if err := p.run(ctx, s); err != nil {
			return fail(ctx, s, p.name, err)
		}
	}
	return ctrl.Result{RequeueAfter: jitter(resync)}, nil
}

// resyncOr returns d, or the default resync period when d is not set.
func resyncOr(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return defaultResyncPeriod
}

// finishPass writes status at the end of a pass: a conflict (the webhook
// server or a person wrote the object) requeues quietly, a vanished object
// is fine.
func finishPass(ctx context.Context, persist func(context.Context) error, skip bool, result ctrl.Result, retErr error) (ctrl.Result, error) {
	if skip {
		return result, retErr
	}
	if err := persist(ctx); err != nil {
		switch {
		case apierrors.IsNotFound(err):
		case apierrors.IsConflict(err):
			return ctrl.Result{RequeueAfter: conflictBackoff()}, retErr
		default:
			return result, errors.Join(retErr, err)
		}
	}
	return result, retErr
}

// failPass logs a phase error (Stripe request IDs go to the log, never to
// conditions) and turns it into conditions and a result. It reports skip
// when the error is a conflict, so the stale object's status is not written.
func failPass(ctx context.Context, obj conditioned, phaseName string, err error, resync time.Duration) (ctrl.Result, error, bool) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: conflictBackoff()}, nil, true
	}
	logger := log.FromContext(ctx).WithValues("phase", phaseName)
	var se *stripe.Error
	if errors.As(err, &se) && se.RequestID != "" {
		logger = logger.WithValues("stripeRequestID", se.RequestID)
	}
	var spec *specError
	var wait *waitError
	switch {
	case errors.As(err, &wait):
		logger.V(1).Info("Waiting", "reason", wait.reason, "message", wait.msg)
	case errors.As(err, &spec):
		logger.Info("Cannot reconcile until the spec or a reference changes", "reason", spec.reason, "message", spec.msg)
	case stripe.ClassOf(err) == stripe.ClassRateLimited:
		// Expected under load: the shared limiter paces the retry.
		logger.Info("Stripe is rate limiting; requeueing", "error", err.Error())
	default:
		logger.Error(err, "Reconcile phase failed")
	}
	res, rerr := handleError(obj, err, resync)
	return res, rerr, false
}

// emit records a Kubernetes Event when a recorder is configured.
func emit(rec record.EventRecorder, obj client.Object, warning bool, reason, msg string) {
	if rec == nil {
		return
	}
	t := corev1.EventTypeNormal
	if warning {
		t = corev1.EventTypeWarning
	}
	rec.Event(obj, t, reason, msg)
}

// DefaultMaxConcurrentReconciles is the number of workers per kind: one hung
// Stripe call (bounded by the call deadline) holds one worker, not the kind.
const DefaultMaxConcurrentReconciles = 4

func controllerOptions(skipNameValidation bool, workers int) controller.Options {
	if workers <= 0 {
		workers = DefaultMaxConcurrentReconciles
	}
	opts := controller.Options{MaxConcurrentReconciles: workers}
	if skipNameValidation {
		t := true
		opts.SkipNameValidation = &t
	}
	return opts
}

// annotationsChangedByOthers passes an update whose annotations changed in a
// key other than the operator's own bookkeeping: create-pending, and the
// webhook server's event-ID annotations (the status write before them
// already woke the reconciler, see webhookEventApplied). Removing
// create-pending right after a create changes nothing in Stripe, so it must
// not cost a second pass and a Stripe read (GenerationChangedPredicate alone
// would drop every annotation, the recreate request included).
func annotationsChangedByOthers() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations()
		for k, v := range n {
			if !bookkeeping(k) && o[k] != v {
				return true
			}
		}
		for k := range o {
			if _, ok := n[k]; !ok && !bookkeeping(k) {
				return true
			}
		}
		return false
	}}
}

// bookkeeping tells the annotations the operator's own writers keep.
func bookkeeping(key string) bool {
	switch key {
	case billingv1alpha1.AnnotationCreatePending, billingv1alpha1.AnnotationLastEventID, billingv1alpha1.AnnotationRecentEventIDs:
		return true
	}
	return false
}
