package controllers

import (
	"context"
	"k8s.io/apimachinery/pkg/labels"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
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
		b = b.WatchesRawSource(source.Channel(r.CredentialsChanged, handler.EnqueueRequestsFromMapFunc(r.all)))
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

func (r *StripeCustomerReconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	var list billingv1alpha1.StripeCustomerList
	if err := r.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "Listing StripeCustomers to enqueue")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

func (r *StripeCustomerReconciler) resync() time.Duration { return resyncOr(r.ResyncPeriod) }

// customerScope is what one pass knows about one StripeCustomer.
type customerScope struct {
	obj   *billingv1alpha1.StripeCustomer
	orig  *billingv1alpha1.StripeCustomerStatus
	owner stripe.Owner
	// cus is the Stripe customer as last read or written.
	cus *stripe.Customer
	// drift names the fields where Stripe differs from the spec.
	drift []string
	skip  bool
}

func (s *customerScope) observeMode() bool {
	return s.obj.GetManagementPolicy() == billingv1alpha1.ManagementPolicyObserve
}

// Reconcile runs the phases over one StripeCustomer and writes status once.
func (r *StripeCustomerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := &billingv1alpha1.StripeCustomer{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("stripeCustomer", klog.KObj(obj)))
	s := &customerScope{obj: obj, orig: obj.Status.DeepCopy(), owner: ownerOf(obj, r.Instance)}
	defer func() {
		result, retErr = finishPass(ctx, func(ctx context.Context) error { return r.persistStatus(ctx, s) }, s.skip, result, retErr)
	}()
	if !obj.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	return runPhases(ctx, s, []phase[*customerScope]{
		{"finalizer", r.phaseFinalizer},
		{"ensure", r.phaseEnsure},
		{"update", r.phaseUpdate},
		{"report", r.phaseReport},
	}, r.resync(), r.fail)
}

// fail turns a phase error into conditions and a result.
func (r *StripeCustomerReconciler) fail(ctx context.Context, s *customerScope, phaseName string, err error) (ctrl.Result, error) {
	res, err, skip := failPass(ctx, s.obj, phaseName, err, r.resync())
	s.skip = skip
	return res, err
}

func (r *StripeCustomerReconciler) persistStatus(ctx context.Context, s *customerScope) error {
	if err := patchStatus(ctx, r.Client, s.obj, s.orig,
		func(o client.Object) any { return &o.(*billingv1alpha1.StripeCustomer).Status },
		func(o client.Object, st any) {
			o.(*billingv1alpha1.StripeCustomer).Status = *st.(*billingv1alpha1.StripeCustomerStatus).DeepCopy()
		}); err != nil {
		return err
	}
	s.orig = s.obj.Status.DeepCopy()
	return nil
}

// patchMeta persists a metadata change without losing the status computed
// so far in memory (a patch response overwrites the object).
func (r *StripeCustomerReconciler) patchMeta(ctx context.Context, s *customerScope, mutate func()) error {
	want := s.obj.Status.DeepCopy()
	if err := patchMeta(ctx, r.Client, s.obj, mutate); err != nil {
		return err
	}
	s.orig = s.obj.Status.DeepCopy()
	s.obj.Status = *want
	return nil
}

func (r *StripeCustomerReconciler) adoption() adoptionPolicy {
	return adoptionPolicy{reader: r.Client, selector: r.AdoptionSelector}
}
