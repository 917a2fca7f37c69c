package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// StripeBillingPreviewReconciler answers StripeBillingPreviews: what the
// embedded StripeSubscription and StripePlan manifests would bill. It is
// not a managed-resource kind: it binds no Stripe object and holds only
// stripe.Previews, an interface without a single write (GET
// /v1/invoices/upcoming and reads). It answers each preview once (its
// spec is immutable) and deletes it when it expires.
type StripeBillingPreviewReconciler struct {
	client.Client
	Stripe stripe.Previews
	// Now is the clock of the previews' proration date; nil means
	// time.Now. Tests set the test-mode Stripe's clock.
	Now func() time.Time
	// WallNow is the clock of expiry (creationTimestamp + ttlSeconds); nil
	// means time.Now.
	WallNow func() time.Time
	// SkipNameValidation lets tests start several managers in one process.
	SkipNameValidation bool
}

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripebillingpreviews,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripebillingpreviews/status,verbs=get;update;patch

// SetupWithManager registers the controller.
func (r *StripeBillingPreviewReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&billingv1alpha1.StripeBillingPreview{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("stripebillingpreview").
		WithOptions(controllerOptions(r.SkipNameValidation, 2))
	return b.Complete(r)
}

func (r *StripeBillingPreviewReconciler) wallNow() time.Time {
	if r.WallNow != nil {
		return r.WallNow()
	}
	return time.Now()
}

func (r *StripeBillingPreviewReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// previewExpiry is when the operator deletes a preview.
func previewExpiry(p *billingv1alpha1.StripeBillingPreview) time.Time {
	ttl := int32(billingv1alpha1.DefaultPreviewTTLSeconds)
	if p.Spec.TTLSeconds != nil {
		ttl = *p.Spec.TTLSeconds
	}
	return p.CreationTimestamp.Add(time.Duration(ttl) * time.Second)
}

// Reconcile answers a preview once and deletes it when it expires.
func (r *StripeBillingPreviewReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var p billingv1alpha1.StripeBillingPreview
	if err := r.Get(ctx, req.NamespacedName, &p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	expires := previewExpiry(&p)
	if left := expires.Sub(r.wallNow()); left <= 0 {
		if err := r.Delete(ctx, &p, client.Preconditions{UID: &p.UID}); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("deleting the expired preview: %w", err)
		}
		log.FromContext(ctx).V(1).Info("Deleted an expired billing preview")
		return ctrl.Result{}, nil
	}
	untilExpiry := ctrl.Result{RequeueAfter: time.Until(expires) + time.Second}
	if ready := meta.FindStatusCondition(p.Status.Conditions, billingv1alpha1.ConditionReady); ready != nil &&
		ready.ObservedGeneration == p.Generation && ready.Reason != billingv1alpha1.ReasonReconcileError {
		return untilExpiry, nil // answered
	}
	orig := p.DeepCopy()
	answer, calls, err := r.answer(ctx, &p)
	p.Status.ExpiresAt = &metav1.Time{Time: expires.UTC().Truncate(time.Second)}
	var refused *previewRefusal
	switch {
	case errors.As(err, &refused):
		p.Status = billingv1alpha1.StripeBillingPreviewStatus{ExpiresAt: p.Status.ExpiresAt, StripeCalls: int32(calls), CommonStatus: p.Status.CommonStatus}
		markStalled(&p, refused.reason, refused.msg)
	case err != nil:
		p.Status.StripeCalls = int32(calls)
		setCondition(&p, billingv1alpha1.ConditionReconciling, metav1.ConditionTrue, billingv1alpha1.ReasonReconcileError, "Asking Stripe failed; retrying.")
		setCondition(&p, billingv1alpha1.ConditionReady, metav1.ConditionFalse, billingv1alpha1.ReasonReconcileError, fmt.Sprintf("Asking Stripe failed: %v", err))
	default:
		conds := p.Status.CommonStatus
		p.Status = *answer
		p.Status.ExpiresAt = &metav1.Time{Time: expires.UTC().Truncate(time.Second)}
		p.Status.StripeCalls = int32(calls)
		p.Status.CommonStatus = conds
		removeCondition(&p, billingv1alpha1.ConditionStalled)
		removeCondition(&p, billingv1alpha1.ConditionReconciling)
		setCondition(&p, billingv1alpha1.ConditionReady, metav1.ConditionTrue, billingv1alpha1.ReasonPreviewed,
			"Stripe previewed the manifests; nothing was written to Stripe or to the resources.")
		p.Status.ObservedGeneration = p.Generation
	}
	if perr := r.Status().Patch(ctx, &p, client.MergeFrom(orig)); perr != nil {
		return ctrl.Result{}, client.IgnoreNotFound(perr)
	}
	if err != nil && refused == nil {
		return ctrl.Result{}, err
	}
	return untilExpiry, nil
}

// previewRefusal is a preview that cannot be answered as written: it names
// something outside its namespace or something that does not exist.
type previewRefusal struct {
	reason, msg string
}

func (e *previewRefusal) Error() string { return e.msg }

func refuse(reason, format string, args ...any) error {
	return &previewRefusal{reason: reason, msg: fmt.Sprintf(format, args...)}
}
