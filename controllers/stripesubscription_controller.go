package controllers

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/labels"
	"math/rand/v2"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
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

// Field indexes on StripeSubscription, registered by SetupWithManager.
const (
	// subscriptionPlanRefIndex lists the StripePlans the items reference.
	subscriptionPlanRefIndex = "spec.items.planRef.name"
	// subscriptionCustomerRefIndex is the referenced StripeCustomer.
	subscriptionCustomerRefIndex = "spec.customerRef.name"
)

// defaultResyncPeriod is used when ResyncPeriod is unset.
const defaultResyncPeriod = 10 * time.Minute

// waitRecheck is how often a subscription waiting for its customer or plan
// looks again; the watches on StripeCustomer and StripePlan normally wake it
// earlier.
const waitRecheck = 30 * time.Second

// StripeSubscriptionReconciler converges a StripeSubscription with its Stripe
// subscription through its lifecycle (create, adopt, update, cancel), and
// reports billing drift and failed payments in conditions.
type StripeSubscriptionReconciler struct {
	client.Client
	Stripe   stripe.API
	Recorder record.EventRecorder
	// ResyncPeriod is how often an unchanged subscription is read again from
	// Stripe (jittered), the safety net for missed webhooks. Default 10m.
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
	// CredentialsChanged, when set, re-queues every subscription (for
	// example after the Stripe API key Secret changed).
	CredentialsChanged <-chan event.GenericEvent
	// Lists, when set, lets the periodic resync of an unchanged subscription
	// read it from a whole list of subscriptions (see resync_lists.go).
	Lists *ResyncLists
	// MaxChargeAttempts is the most charge attempts (creates and updates
	// that can charge) the operator makes per subscription in 24 hours
	// (--max-charge-attempts); 0 means DefaultMaxChargeAttempts. See
	// stripesubscription_charges.go.
	MaxChargeAttempts int
	// Now is the clock of the charge window; nil means time.Now. Tests set
	// the test-mode Stripe's clock.
	Now func() time.Time

	// prices caches unit amount and currency by price ID. Both are immutable
	// in Stripe, so the cache never goes stale; it keeps a resync of an
	// unchanged subscription at a single Stripe call.
	prices sync.Map // price ID -> priceInfo
	// couponTenants, promotionCodes and priceProducts cache what never
	// changes in Stripe: a coupon's owner ("namespace/name" or ""), a
	// promotion code's code, a price's product (stripesubscription_discount.go).
	couponTenants, promotionCodes, priceProducts sync.Map
	// reads remembers, per resource, the status markers of this process's
	// last read of its subscription (see statusCarriesNews).
	reads sync.Map // UID -> readMark
	// corrections remembers the last drift correction per UID until its
	// record is written (drift_corrections.go).
	corrections sync.Map // UID -> correctionMark
	// identities remembers each customer's identity-bearing subscriptions
	// for the lookup before a create (see subscriptionIdentities).
	identities subscriptionIdentities
	// customerTenants caches the owning namespace/name of customers named
	// by spec.customerID ("" for a customer made outside the operator).
	customerTenants sync.Map // customer ID -> string
}

type priceInfo struct {
	unitAmount int64
	currency   string
	// interval and intervalCount are the billing period ("" when the
	// entry came from an item that did not carry it).
	interval      string
	intervalCount int64
	// price is the price with its terms (Complete when read in full).
	price *stripe.Price
}

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripesubscriptions,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripesubscriptions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripesubscriptions/finalizers,verbs=update
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripecustomers;stripeplans,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// SetupWithManager registers the field indexes and the controller.
func (r *StripeSubscriptionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	registerChargeMetrics()
	if err := setupStripeSubscriptionIndexes(context.Background(), mgr); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("stripesubscription").
		For(&billingv1alpha1.StripeSubscription{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			annotationsChangedByOthers(),
			webhookEventApplied(),
		))).
		Watches(&billingv1alpha1.StripePlan{},
			handler.EnqueueRequestsFromMapFunc(r.subscriptionsForPlan),
			builder.WithPredicates(planPriceChanged())).
		Watches(&billingv1alpha1.StripeCustomer{},
			handler.EnqueueRequestsFromMapFunc(r.subscriptionsForCustomer),
			builder.WithPredicates(customerIDChanged())).
		WithOptions(controllerOptions(r.SkipNameValidation, r.MaxConcurrentReconciles))
	if r.CredentialsChanged != nil {
		b = b.WatchesRawSource(source.Channel(r.CredentialsChanged, handler.EnqueueRequestsFromMapFunc(enqueueAll(r.Client, &billingv1alpha1.StripeSubscriptionList{}))))
	}
	return b.Complete(r)
}

// setupStripeSubscriptionIndexes registers the field indexes the
// subscription controller's watches use (once per manager).
func setupStripeSubscriptionIndexes(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &billingv1alpha1.StripeSubscription{}, subscriptionPlanRefIndex, func(o client.Object) []string {
		sub := o.(*billingv1alpha1.StripeSubscription)
		var names []string
		for _, it := range sub.Spec.Items {
			if it.PlanRef != nil {
				names = append(names, it.PlanRef.Name)
			}
		}
		return names
	}); err != nil {
		return fmt.Errorf("indexing %s: %w", subscriptionPlanRefIndex, err)
	}
	if err := idx.IndexField(ctx, &billingv1alpha1.StripeSubscription{}, subscriptionCustomerRefIndex, func(o client.Object) []string {
		sub := o.(*billingv1alpha1.StripeSubscription)
		if sub.Spec.CustomerRef == nil {
			return nil
		}
		return []string{sub.Spec.CustomerRef.Name}
	}); err != nil {
		return fmt.Errorf("indexing %s: %w", subscriptionCustomerRefIndex, err)
	}
	return nil
}

// planPriceChanged passes plan events that can change what a subscription
// resolves: a plan appearing or going, its current price moving, or its
// priceChangePolicy.
func planPriceChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*billingv1alpha1.StripePlan)
			n, ok2 := e.ObjectNew.(*billingv1alpha1.StripePlan)
			return !ok1 || !ok2 || o.Status.PriceID != n.Status.PriceID || o.Spec.PriceChangePolicy != n.Spec.PriceChangePolicy
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// customerIDChanged passes customer events that can change what a
// subscription resolves or whether it may be created: the customer's Stripe
// ID, or it becoming (or ceasing to be) Ready for its current generation.
func customerIDChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*billingv1alpha1.StripeCustomer)
			n, ok2 := e.ObjectNew.(*billingv1alpha1.StripeCustomer)
			return !ok1 || !ok2 || o.Status.CustomerID != n.Status.CustomerID || customerSettled(o) != customerSettled(n) ||
				customerTaxLocation(o) != customerTaxLocation(n)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// customerSettled tells whether a StripeCustomer is Ready for its current
// generation: created, and its spec (default payment method included)
// applied in Stripe.
func customerSettled(c *billingv1alpha1.StripeCustomer) bool {
	ready := findCondition(c.Status.Conditions, billingv1alpha1.ConditionReady)
	return c.Status.CustomerID != "" && ready != nil && ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == c.Generation
}

func (r *StripeSubscriptionReconciler) subscriptionsForPlan(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listRequests(ctx, client.InNamespace(o.GetNamespace()), client.MatchingFields{subscriptionPlanRefIndex: o.GetName()})
}

func (r *StripeSubscriptionReconciler) subscriptionsForCustomer(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listRequests(ctx, client.InNamespace(o.GetNamespace()), client.MatchingFields{subscriptionCustomerRefIndex: o.GetName()})
}

func (r *StripeSubscriptionReconciler) listRequests(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var list billingv1alpha1.StripeSubscriptionList
	if err := r.List(ctx, &list, opts...); err != nil {
		log.FromContext(ctx).Error(err, "Listing StripeSubscriptions to enqueue")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: list.Items[i].Namespace, Name: list.Items[i].Name}})
	}
	return reqs
}

// subscriptionScope is the StripeSubscription kind's external client for
// one pass: what the pass knows about one StripeSubscription and its Stripe
// subscription (status.subscriptionID).
type subscriptionScope struct {
	r *StripeSubscriptionReconciler
	*pass[*billingv1alpha1.StripeSubscription]

	// Resolved declaration. customerSettled is false while a referenced
	// StripeCustomer is not Ready for its current generation (its payment
	// method may not be in place yet).
	customerID      string
	customerSettled bool
	desired         []desiredItem
	expected        *billingv1alpha1.Amount

	// sub is the Stripe subscription as last read or returned by a write.
	sub *stripe.Subscription
	// ended is true when sub is canceled or incomplete_expired (or gone).
	ended bool
	// replaces is the ended subscription a requested recreate replaces;
	// recreated tells that this pass created its replacement.
	replaces  string
	recreated bool
	// diff is what differed from the declaration this pass.
	diff subscriptionDiff
	// fromStatus: this pass took the subscription from status, which an
	// invoice event just brought up to date, instead of reading Stripe.
	fromStatus bool
	// priceChange is what the plans' priceChangePolicy asks of this pass
	// (stripesubscription_pricechange.go).
	priceChange priceChangePass
	// tax is this pass's tax and billing-date findings
	// (stripesubscription_tax.go).
	tax taxState
	// discount is the declared discount (stripesubscription_discount.go).
	discount discountPass
}

// Reconcile runs one pass of the managed-resource core over one
// StripeSubscription.
func (r *StripeSubscriptionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return newManaged(managedConfig{client: r.Client, recorder: r.Recorder, resync: r.ResyncPeriod, instance: r.Instance, adoptionSelector: r.AdoptionSelector, stripe: stripeBackend{api: r.Stripe}},
		managedKindOf[billingv1alpha1.StripeSubscription]("stripeSubscription", func(o *billingv1alpha1.StripeSubscription) *billingv1alpha1.StripeSubscriptionStatus {
			return &o.Status
		},
			func(p *pass[*billingv1alpha1.StripeSubscription]) external { return &subscriptionScope{r: r, pass: p} }),
	).Reconcile(ctx, req)
}

// beforeFailure keeps in status whatever was read from Stripe this pass
// when a later phase fails.
func (s *subscriptionScope) beforeFailure() {
	if s.sub != nil {
		setObservedStatus(&s.obj.Status, s.sub)
	}
}

// statusWritten records the PaymentFailed Warning once the status that
// reports a new failure is written.
func (s *subscriptionScope) statusWritten(before *billingv1alpha1.StripeSubscription) {
	s.r.paymentFailedEvent(s.obj, &before.Status)
	if s.fromStatus {
		s.r.usedStatus(s.obj)
	}
}

func conflictBackoff() time.Duration {
	return 200*time.Millisecond + time.Duration(rand.Int64N(int64(300*time.Millisecond)))
}

// event records a Kubernetes Event when a recorder is configured.
func (r *StripeSubscriptionReconciler) event(obj *billingv1alpha1.StripeSubscription, warning bool, reason, msg string) {
	emit(r.Recorder, obj, warning, reason, msg)
}
