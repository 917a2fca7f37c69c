package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// planSubscriptionCounter writes a StripePlan's status.subscriptions, and
// nothing else: the counts of the StripeSubscriptions of its namespace that
// reference it, by the price their status reports. It is the one writer of
// that field. It reads only the informer cache (the subscriptions' status
// is what the subscription reconciler and the webhook server read from
// Stripe), so a subscription that moves costs no Stripe call, and the plan's
// own reconciler, which reads Stripe, is not woken by subscriptions.
type planSubscriptionCounter struct {
	client.Client
}

// setupPlanSubscriptionCounter registers the counter as its own controller.
func setupPlanSubscriptionCounter(mgr ctrl.Manager, skipNameValidation bool) error {
	c := &planSubscriptionCounter{Client: mgr.GetClient()}
	return ctrl.NewControllerManagedBy(mgr).
		Named("stripeplan-subscriptions").
		For(&billingv1alpha1.StripePlan{}, builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool {
				o, ok1 := e.ObjectOld.(*billingv1alpha1.StripePlan)
				n, ok2 := e.ObjectNew.(*billingv1alpha1.StripePlan)
				return !ok1 || !ok2 || o.Status.PriceID != n.Status.PriceID || !slices.Equal(o.Status.PreviousPriceIDs, n.Status.PreviousPriceIDs)
			},
			DeleteFunc:  func(event.DeleteEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		Watches(&billingv1alpha1.StripeSubscription{}, countLater(plansOf),
			builder.WithPredicates(subscriptionPricesChanged())).
		WithOptions(controllerOptions(skipNameValidation, 1)).
		Complete(c)
}

// countDelay coalesces the subscription events of a burst (a namespace of
// subscriptions created or moved at once) into one count per plan: each
// count lists the plan's subscriptions, so counting on every event would
// cost O(N²) for N subscriptions.
const countDelay = 2 * time.Second

// countLater enqueues the plans a subscription event concerns after
// countDelay; an earlier pending request for the same plan absorbs it.
func countLater(m handler.MapFunc) handler.EventHandler {
	add := func(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		for _, req := range m(ctx, o) {
			q.AddAfter(req, countDelay)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.ObjectOld, q)
			add(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
	}
}

// plansOf maps a subscription to the plans its items reference.
func plansOf(_ context.Context, o client.Object) []reconcile.Request {
	sub, ok := o.(*billingv1alpha1.StripeSubscription)
	if !ok {
		return nil
	}
	var out []reconcile.Request
	for _, it := range sub.Spec.Items {
		if it.PlanRef != nil {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: sub.Namespace, Name: it.PlanRef.Name}})
		}
	}
	return out
}

// subscriptionPricesChanged passes subscription events that can change a
// count: created, deleted, its items' prices, its plan references or its
// scheduled price change.
func subscriptionPricesChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*billingv1alpha1.StripeSubscription)
			n, ok2 := e.ObjectNew.(*billingv1alpha1.StripeSubscription)
			if !ok1 || !ok2 {
				return true
			}
			return !slices.Equal(itemPrices(o), itemPrices(n)) || !slices.Equal(planNames(o), planNames(n)) ||
				!equality.Semantic.DeepEqual(o.Status.ScheduledPriceChange, n.Status.ScheduledPriceChange)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func itemPrices(s *billingv1alpha1.StripeSubscription) []string {
	out := make([]string, 0, len(s.Status.Items))
	for _, it := range s.Status.Items {
		out = append(out, it.PriceID)
	}
	return out
}

func planNames(s *billingv1alpha1.StripeSubscription) []string {
	var out []string
	for _, it := range s.Spec.Items {
		if it.PlanRef != nil {
			out = append(out, it.PlanRef.Name)
		}
	}
	return out
}

// Reconcile counts and writes status.subscriptions when it changed (a merge
// patch of that field alone, with the resourceVersion as precondition).
func (c *planSubscriptionCounter) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var plan billingv1alpha1.StripePlan
	if err := c.Get(ctx, req.NamespacedName, &plan); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if plan.Status.PriceID == "" {
		return ctrl.Result{}, nil
	}
	var list billingv1alpha1.StripeSubscriptionList
	// Read only: the cache's objects, not deep copies of them.
	if err := c.List(ctx, &list, client.InNamespace(plan.Namespace), client.MatchingFields{subscriptionPlanRefIndex: plan.Name}, client.UnsafeDisableDeepCopy); err != nil {
		// Without the subscription controller's index (a manager that runs
		// no subscription controller), list the namespace.
		if err := c.List(ctx, &list, client.InNamespace(plan.Namespace), client.UnsafeDisableDeepCopy); err != nil {
			return ctrl.Result{}, fmt.Errorf("listing StripeSubscriptions: %w", err)
		}
	}
	counts := countPlanSubscriptions(&plan, list.Items)
	if equality.Semantic.DeepEqual(plan.Status.Subscriptions, counts) {
		return ctrl.Result{}, nil
	}
	orig := plan.DeepCopy()
	plan.Status.Subscriptions = counts
	if err := c.Status().Patch(ctx, &plan, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			// The plan's reconciler wrote first: count again on its
			// newer copy, without an error log.
			return ctrl.Result{RequeueAfter: conflictBackoff()}, nil
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, nil
}

// countPlanSubscriptions counts the subscriptions referencing plan by the
// price of their items (status.items, as Stripe last reported them).
func countPlanSubscriptions(plan *billingv1alpha1.StripePlan, subs []billingv1alpha1.StripeSubscription) *billingv1alpha1.PlanSubscriptions {
	out := &billingv1alpha1.PlanSubscriptions{}
	byPrev := make([]int32, len(plan.Status.PreviousPriceIDs))
	for i := range subs {
		s := &subs[i]
		if !slices.Contains(planNames(s), plan.Name) {
			continue
		}
		prices := itemPrices(s)
		switch {
		case slices.Contains(prices, plan.Status.PriceID):
			out.OnCurrentPrice++
		default:
			earlier := -1
			for j := len(plan.Status.PreviousPriceIDs) - 1; j >= 0 && earlier < 0; j-- {
				if slices.Contains(prices, plan.Status.PreviousPriceIDs[j]) {
					earlier = j
				}
			}
			if earlier < 0 {
				out.Other++
				continue
			}
			out.OnPreviousPrices++
			byPrev[earlier]++
			if sc := s.Status.ScheduledPriceChange; sc != nil && slices.Contains(sc.PriceIDs, plan.Status.PriceID) {
				out.ScheduledToMove++
			}
		}
	}
	for j, n := range byPrev {
		if n > 0 {
			out.ByPreviousPrice = append(out.ByPreviousPrice, billingv1alpha1.PriceSubscriptions{PriceID: plan.Status.PreviousPriceIDs[j], Subscriptions: n})
		}
	}
	return out
}
