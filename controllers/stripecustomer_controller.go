package controllers

import (
	"context"
	"k8s.io/apimachinery/pkg/labels"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// StripeCustomerReconciler converges a StripeCustomer with its Stripe
// customer.
type StripeCustomerReconciler struct {
	client.Client
	Stripe   stripe.API
	Recorder record.EventRecorder
	// ResyncPeriod is how often an unchanged customer is compared with
	// Stripe again (jittered). Default 10m.
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
	// CredentialsChanged, when set, re-queues every customer.
	CredentialsChanged <-chan event.GenericEvent
	// Lists, when set, lets the periodic resync of an unchanged customer read
	// its Stripe objects from whole lists (resync_lists.go).
	Lists *ResyncLists
}

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripecustomers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripecustomers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripecustomers/finalizers,verbs=update
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripesubscriptions,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// SetupWithManager registers the controller. It also watches
// StripeSubscriptions, so a customer waiting to be deleted re-checks when a
// subscription that references it goes away.
func (r *StripeCustomerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("stripecustomer").
		For(&billingv1alpha1.StripeCustomer{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, annotationsChangedByOthers()))).
		// A subscription matters to its customer only when it appears, goes,
		// starts being deleted or changes its customerRef; its status writes
		// (each webhook event) must not cost a customer reconcile and a
		// Stripe read.
		Watches(&billingv1alpha1.StripeSubscription{}, handler.EnqueueRequestsFromMapFunc(customerOfSubscription),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionStarted()))).
		WithOptions(controllerOptions(r.SkipNameValidation, r.MaxConcurrentReconciles))
	if r.CredentialsChanged != nil {
		b = b.WatchesRawSource(source.Channel(r.CredentialsChanged, handler.EnqueueRequestsFromMapFunc(enqueueAll(r.Client, &billingv1alpha1.StripeCustomerList{}))))
	}
	return b.Complete(r)
}

// deletionStarted passes an update that sets the deletion timestamp.
func deletionStarted() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
	}}
}

func customerOfSubscription(_ context.Context, o client.Object) []reconcile.Request {
	sub, ok := o.(*billingv1alpha1.StripeSubscription)
	if !ok || sub.Spec.CustomerRef == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: sub.Namespace, Name: sub.Spec.CustomerRef.Name}}}
}

// Reconcile runs one pass of the managed-resource core over one
// StripeCustomer.
func (r *StripeCustomerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return newManaged(managedConfig{client: r.Client, recorder: r.Recorder, resync: r.ResyncPeriod, instance: r.Instance, adoptionSelector: r.AdoptionSelector, stripe: stripeBackend{api: r.Stripe}, lists: r.Lists},
		managedKindOf[billingv1alpha1.StripeCustomer]("stripeCustomer", func(o *billingv1alpha1.StripeCustomer) *billingv1alpha1.StripeCustomerStatus { return &o.Status },
			func(p *pass[*billingv1alpha1.StripeCustomer]) external { return &customerExternal{r: r, pass: p} }),
	).Reconcile(ctx, req)
}
