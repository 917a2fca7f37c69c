package controllers

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// resyncFleet is a namespace of unchanged resources of every kind that
// bills (customers, plans, subscriptions of those customers on those
// plans) and the reconcilers that resync them. The reconcilers are kept
// from pass to pass (each pass runs them in a new manager, which reconciles
// every resource once as it starts), so what they cache is warm, as in a
// manager that has been running: each measured pass is a resync in steady
// state.
type resyncFleet struct {
	d                      *directStripe
	ns                     string
	customers, plans, subs int
	cr                     *StripeCustomerReconciler
	pr                     *StripePlanReconciler
	sr                     *StripeSubscriptionReconciler
}

func newResyncFleet(tb testing.TB, ns string, customers, plans, subs int) *resyncFleet {
	tb.Helper()
	f := &resyncFleet{d: newDirectStripe(tb, -1), ns: ns, customers: customers, plans: plans, subs: subs}
	tb.Cleanup(f.d.fake.Close)
	f.cr = &StripeCustomerReconciler{Stripe: f.d.api, ResyncPeriod: time.Hour, SkipNameValidation: true, MaxConcurrentReconciles: 8}
	f.pr = &StripePlanReconciler{Stripe: f.d.api, ResyncPeriod: time.Hour, SkipNameValidation: true, MaxConcurrentReconciles: 8}
	f.sr = &StripeSubscriptionReconciler{Stripe: f.d.api, ResyncPeriod: time.Hour, SkipNameValidation: true, MaxConcurrentReconciles: 8}
	ctx := context.Background()
	create := func(obj client.Object) {
		obj.SetNamespace(ns)
		if err := testClient().Create(ctx, obj); err != nil {
			tb.Fatalf("create: %v", err)
		}
	}
	for i := 0; i < customers; i++ {
		create(newCustomer(fmt.Sprintf("cus-%d", i), nil))
	}
	for i := 0; i < plans; i++ {
		create(newPlan(fmt.Sprintf("plan-%d", i), int64(1000+100*i), nil))
	}
	for i := 0; i < subs; i++ {
		create(&billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sub-%d", i)},
			Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerRef: &billingv1alpha1.LocalObjectReference{Name: fmt.Sprintf("cus-%d", i%customers)},
				Items: []billingv1alpha1.SubscriptionItem{{PlanRef: &billingv1alpha1.LocalObjectReference{Name: fmt.Sprintf("plan-%d", i%plans)}, Quantity: int64(1 + i%5)}}}})
	}
	return f
}

// pass runs every reconciler once over every resource, with lists (nil:
// each object read on its own), and returns the Stripe calls it made.
func (f *resyncFleet) pass(tb testing.TB, lists *ResyncLists) int {
	tb.Helper()
	mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{
		Scheme: testClient().Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{f.ns: {}}},
	})
	if err != nil {
		tb.Fatalf("manager: %v", err)
	}
	f.cr.Client, f.cr.Lists = mgr.GetClient(), lists
	f.pr.Client, f.pr.Lists = mgr.GetClient(), lists
	f.sr.Client, f.sr.Lists = mgr.GetClient(), lists
	for _, r := range []interface{ SetupWithManager(ctrl.Manager) error }{f.cr, f.pr, f.sr} {
		if err := r.SetupWithManager(mgr); err != nil {
			tb.Fatalf("setup: %v", err)
		}
	}
	want := map[string]int{"stripecustomer": f.customers, "stripeplan": f.plans, "stripesubscription": f.subs}
	start := map[string]int{}
	for c := range want {
		start[c] = reconcileTotal(tb, c)
	}
	before := f.d.total()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for c, n := range want {
		for reconcileTotal(tb, c)-start[c] < n {
			if time.Now().After(deadline) {
				tb.Fatalf("%s: only %d of %d reconciled", c, reconcileTotal(tb, c)-start[c], n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	settle(f.d.total)
	calls := f.d.total() - before
	cancel()
	<-done
	return calls
}

// converge runs passes without lists until every resource is Ready.
func (f *resyncFleet) converge(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		f.pass(tb, nil)
		var cl billingv1alpha1.StripeCustomerList
		var pl billingv1alpha1.StripePlanList
		var sl billingv1alpha1.StripeSubscriptionList
		for _, l := range []client.ObjectList{&cl, &pl, &sl} {
			if err := testClient().List(ctx, l, client.InNamespace(f.ns)); err != nil {
				tb.Fatalf("list: %v", err)
			}
		}
		var conds [][]metav1.Condition
		for i := range cl.Items {
			conds = append(conds, cl.Items[i].Status.Conditions)
		}
		for i := range pl.Items {
			conds = append(conds, pl.Items[i].Status.Conditions)
		}
		for i := range sl.Items {
			conds = append(conds, sl.Items[i].Status.Conditions)
		}
		ready := 0
		for _, c := range conds {
			if meta.IsStatusConditionTrue(c, billingv1alpha1.ConditionReady) {
				ready++
			}
		}
		if ready == f.customers+f.plans+f.subs {
			return
		}
		if attempt == 20 {
			tb.Fatalf("only %d of %d resources Ready", ready, f.customers+f.plans+f.subs)
		}
	}
}

// measureResyncAll returns the Stripe calls of one steady-state resync of
// an unchanged fleet: each object read on its own (the baseline) and read
// from whole lists.
func measureResyncAll(tb testing.TB, ns string, customers, plans, subs int) (perObject, listing int) {
	tb.Helper()
	f := newResyncFleet(tb, ns, customers, plans, subs)
	f.converge(tb)
	perObject = f.pass(tb, nil)
	listing = f.pass(tb, &ResyncLists{Lister: f.d.api.(stripe.ResyncLister), MinRefresh: time.Hour})
	return perObject, listing
}

// resyncAllSizes are the fleets BenchmarkResyncByListing measures: the
// issue's (20 customers, 2 plans, 200 subscriptions) and a larger one,
// BENCH_RESYNC_LARGE=customers,plans,subscriptions (default 100,10,1000).
func resyncAllSizes() [][3]int {
	large := [3]int{100, 10, 1000}
	if v := os.Getenv("BENCH_RESYNC_LARGE"); v != "" {
		var c, p, s int
		if _, err := fmt.Sscanf(v, "%d,%d,%d", &c, &p, &s); err == nil && c > 0 && p > 0 && s > 0 {
			large = [3]int{c, p, s}
		}
	}
	return [][3]int{{20, 2, 200}, large}
}

// BenchmarkResyncByListing measures the Stripe calls of one resync of N
// unchanged objects of every kind (customers, plans with their product and
// price, subscriptions), side by side: read one by one and read from whole
// lists. It reports calls/resync and, as x-bound-issue (the size)
// and x-bound-large, the calls over the limit N/100 + 5, which
// hack/benchratios prints with its limit (1).
func BenchmarkResyncByListing(b *testing.B) {
	for i, size := range resyncAllSizes() {
		c, p, s := size[0], size[1], size[2]
		bound := [...]string{"x-bound-issue", "x-bound-large"}[i]
		n := c + 2*p + s // a plan is two Stripe objects: its product and its price
		b.Run(strconv.Itoa(n)+"-objects", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				perObject, listing := measureResyncAll(b, benchNamespace(b), c, p, s)
				fmt.Printf("resync of %d customers, %d plans, %d subscriptions (N=%d Stripe objects): %d Stripe calls by listing, %d one by one; limit N/100+5 = %d\n",
					c, p, s, n, listing, perObject, maxResyncCalls(n))
				b.ReportMetric(float64(listing), "calls/resync")
				b.ReportMetric(float64(perObject), "baseline-calls/resync")
				b.ReportMetric(float64(listing)/float64(maxResyncCalls(n)), bound)
			}
		})
	}
}

// TestResyncByListingAllKinds holds the benchmark's bound at the issue's
// size: a resync of 20 unchanged customers, 2 plans and 200 subscriptions
// makes at most N/100 + 5 Stripe calls, where one by one it makes one per
// object.
func TestResyncByListingAllKinds(t *testing.T) {
	const customers, plans, subs = 20, 2, 200
	n := customers + 2*plans + subs
	perObject, listing := measureResyncAll(t, newNamespace(t), customers, plans, subs)
	t.Logf("resync of %d customers, %d plans, %d subscriptions: %d calls by listing, %d one by one", customers, plans, subs, listing, perObject)
	if listing > maxResyncCalls(n) {
		t.Errorf("resync by listing made %d Stripe calls, more than %d", listing, maxResyncCalls(n))
	}
	if perObject < n {
		t.Errorf("the per-object baseline made %d calls for %d objects; the measurement is off", perObject, n)
	}
}
