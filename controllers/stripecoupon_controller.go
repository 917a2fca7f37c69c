package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// StripeCouponReconciler converges a StripeCoupon with a Stripe coupon and
// its promotion codes.
type StripeCouponReconciler struct {
	client.Client
	Stripe   stripe.API
	Recorder record.EventRecorder
	// ResyncPeriod is how often an unchanged coupon is compared with Stripe
	// again (jittered). Default 10m.
	ResyncPeriod time.Duration
	// SkipNameValidation lets tests start several managers in one process.
	SkipNameValidation bool
	// Instance is this operator instance's name (--instance-name).
	Instance string
	// AdoptionSelector selects the namespaces where Stripe objects created
	// outside the operator may be adopted; nil means
	// DefaultAdoptionSelector.
	AdoptionSelector labels.Selector
	// MaxConcurrentReconciles is the number of workers; 0 means
	// DefaultMaxConcurrentReconciles.
	MaxConcurrentReconciles int
	// CredentialsChanged, when set, re-queues every coupon.
	CredentialsChanged <-chan event.GenericEvent
}

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripecoupons,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripecoupons/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripecoupons/finalizers,verbs=update

// SetupWithManager registers the controller.
func (r *StripeCouponReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("stripecoupon").
		For(&billingv1alpha1.StripeCoupon{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, annotationsChangedByOthers()))).
		WithOptions(controllerOptions(r.SkipNameValidation, r.MaxConcurrentReconciles))
	if r.CredentialsChanged != nil {
		b = b.WatchesRawSource(source.Channel(r.CredentialsChanged, handler.EnqueueRequestsFromMapFunc(enqueueAll(r.Client, &billingv1alpha1.StripeCouponList{}))))
	}
	return b.Complete(r)
}

// Reconcile runs one pass of the managed-resource core over one
// StripeCoupon.
func (r *StripeCouponReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return newManaged(managedConfig{client: r.Client, recorder: r.Recorder, resync: r.ResyncPeriod, instance: r.Instance, adoptionSelector: r.AdoptionSelector, stripe: stripeBackend{api: r.Stripe}},
		managedKindOf[billingv1alpha1.StripeCoupon]("stripeCoupon", func(o *billingv1alpha1.StripeCoupon) *billingv1alpha1.StripeCouponStatus { return &o.Status },
			func(p *pass[*billingv1alpha1.StripeCoupon]) external { return &couponExternal{r: r, pass: p} }),
	).Reconcile(ctx, req)
}
