package controllers

import (
	"context"
	"k8s.io/apimachinery/pkg/labels"
	"time"

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

// StripePlanReconciler converges a StripePlan with a Stripe product and its
// one recurring price.
type StripePlanReconciler struct {
	client.Client
	Stripe   stripe.API
	Recorder record.EventRecorder
	// ResyncPeriod is how often an unchanged plan is compared with Stripe
	// again (jittered). Default 10m.
	ResyncPeriod time.Duration
	// SkipNameValidation lets tests start several managers in one process.
	SkipNameValidation bool
	// Instance is this operator instance's name (--instance-name), written
	// into every Stripe object's identity; "" means DefaultInstance.
	Instance string
	// AdoptionSelector selects the namespaces where Stripe objects created
	// outside the operator may be adopted; nil means
	// DefaultAdoptionSelector.
	AdoptionSelector labels.Selector
	// MaxConcurrentReconciles is the number of workers; 0 means
	// DefaultMaxConcurrentReconciles. All share the one Stripe limiter.
	MaxConcurrentReconciles int
	// CredentialsChanged, when set, re-queues every plan.
	CredentialsChanged <-chan event.GenericEvent
	// Lists, when set, lets the periodic resync of an unchanged plan read
	// its Stripe objects from whole lists (resync_lists.go).
	Lists *ResyncLists
}

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripeplans,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripeplans/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripeplans/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// SetupWithManager registers the controller.
func (r *StripePlanReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("stripeplan").
		For(&billingv1alpha1.StripePlan{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, annotationsChangedByOthers()))).
		WithOptions(controllerOptions(r.SkipNameValidation, r.MaxConcurrentReconciles))
	if r.CredentialsChanged != nil {
		b = b.WatchesRawSource(source.Channel(r.CredentialsChanged, handler.EnqueueRequestsFromMapFunc(enqueueAll(r.Client, &billingv1alpha1.StripePlanList{}))))
	}
	if err := b.Complete(r); err != nil {
		return err
	}
	// status.subscriptions has its own writer (stripeplan_counts.go).
	return setupPlanSubscriptionCounter(mgr, r.SkipNameValidation)
}

// Reconcile runs one pass of the managed-resource core over one StripePlan.
func (r *StripePlanReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return newManaged(managedConfig{client: r.Client, recorder: r.Recorder, resync: r.ResyncPeriod, instance: r.Instance, adoptionSelector: r.AdoptionSelector, stripe: stripeBackend{api: r.Stripe}, lists: r.Lists},
		managedKindOf[billingv1alpha1.StripePlan]("stripePlan", func(o *billingv1alpha1.StripePlan) *billingv1alpha1.StripePlanStatus { return &o.Status },
			func(p *pass[*billingv1alpha1.StripePlan]) external { return &planExternal{r: r, pass: p} }),
	).Reconcile(ctx, req)
}
