package controllers

import (
	"context"
	"k8s.io/apimachinery/pkg/labels"
	"time"

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
		b = b.WatchesRawSource(source.Channel(r.CredentialsChanged, handler.EnqueueRequestsFromMapFunc(r.all)))
	}
	return b.Complete(r)
}

func (r *StripePlanReconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	var list billingv1alpha1.StripePlanList
	if err := r.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "Listing StripePlans to enqueue")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

func (r *StripePlanReconciler) resync() time.Duration { return resyncOr(r.ResyncPeriod) }

// planScope is what one pass knows about one StripePlan.
type planScope struct {
	obj     *billingv1alpha1.StripePlan
	orig    *billingv1alpha1.StripePlanStatus
	owner   stripe.Owner
	product *stripe.Product
	price   *stripe.Price
	drift   []string
	skip    bool
}

func (s *planScope) observeMode() bool {
	return s.obj.GetManagementPolicy() == billingv1alpha1.ManagementPolicyObserve
}

// Reconcile runs the phases over one StripePlan and writes status once.
func (r *StripePlanReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := &billingv1alpha1.StripePlan{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("stripePlan", klog.KObj(obj)))
	s := &planScope{obj: obj, orig: obj.Status.DeepCopy(), owner: ownerOf(obj, r.Instance)}
	defer func() {
		result, retErr = finishPass(ctx, func(ctx context.Context) error { return r.persistStatus(ctx, s) }, s.skip, result, retErr)
	}()
	if !obj.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	return runPhases(ctx, s, []phase[*planScope]{
		{"finalizer", r.phaseFinalizer},
		{"product", r.phaseProduct},
		{"productUpdate", r.phaseProductUpdate},
		{"price", r.phasePrice},
		{"report", r.phaseReport},
	}, r.resync(), r.fail)
}

// fail turns a phase error into conditions and a result.
func (r *StripePlanReconciler) fail(ctx context.Context, s *planScope, phaseName string, err error) (ctrl.Result, error) {
	res, err, skip := failPass(ctx, s.obj, phaseName, err, r.resync())
	s.skip = skip
	return res, err
}

func (r *StripePlanReconciler) persistStatus(ctx context.Context, s *planScope) error {
	if err := patchStatus(ctx, r.Client, s.obj, s.orig,
		func(o client.Object) any { return &o.(*billingv1alpha1.StripePlan).Status },
		func(o client.Object, st any) {
			o.(*billingv1alpha1.StripePlan).Status = *st.(*billingv1alpha1.StripePlanStatus).DeepCopy()
		}); err != nil {
		return err
	}
	s.orig = s.obj.Status.DeepCopy()
	return nil
}

func (r *StripePlanReconciler) adoption() adoptionPolicy {
	return adoptionPolicy{reader: r.Client, selector: r.AdoptionSelector}
}
