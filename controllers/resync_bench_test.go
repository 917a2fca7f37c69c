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
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// resyncBenchN is the number of unchanged subscriptions
// BenchmarkSubscriptionResyncByListing resyncs: 1000, or BENCH_RESYNC_N.
func resyncBenchN() int {
	if v, err := strconv.Atoi(os.Getenv("BENCH_RESYNC_N")); err == nil && v > 0 {
		return v
	}
	return 1000
}

// maxResyncCalls is the bound for a resync of 1,000 unchanged
// subscriptions: N/100 list pages plus a constant.
func maxResyncCalls(n int) int { return (n+99)/100 + 5 }

// reconcileTotal is controller-runtime's reconcile count for a controller.
func reconcileTotal(tb testing.TB, controller string) int {
	families, err := metrics.Registry.Gather()
	if err != nil {
		tb.Fatalf("gathering metrics: %v", err)
	}
	total := 0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					total += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return total
}

// runResyncPass starts a manager with a subscription reconciler (lists is
// nil for the per-object baseline), which reconciles every subscription
// once as it starts, and returns the Stripe calls that pass made.
func runResyncPass(tb testing.TB, d *directStripe, ns string, n int, lists *ResyncLists) int {
	tb.Helper()
	mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{
		Scheme: testClient().Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	if err != nil {
		tb.Fatalf("manager: %v", err)
	}
	r := &StripeSubscriptionReconciler{Client: mgr.GetClient(), Stripe: d.api, ResyncPeriod: time.Hour,
		SkipNameValidation: true, MaxConcurrentReconciles: 8, Lists: lists}
	if err := r.SetupWithManager(mgr); err != nil {
		tb.Fatalf("setup: %v", err)
	}
	reconciled := reconcileTotal(tb, "stripesubscription")
	before := d.total()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	deadline := time.Now().Add(5 * time.Minute)
	for reconcileTotal(tb, "stripesubscription")-reconciled < n {
		if time.Now().After(deadline) {
			tb.Fatalf("only %d of %d subscriptions reconciled", reconcileTotal(tb, "stripesubscription")-reconciled, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	settle(d.total)
	calls := d.total() - before
	cancel()
	<-done
	return calls
}

// measureResync creates n subscriptions in namespace ns, lets them converge,
// and returns the Stripe calls of one resync of them read one by one (the
// per-object baseline) and read from a whole list.
func measureResync(tb testing.TB, ns string, n int) (perObject, listing int) {
	tb.Helper()
	d := newDirectStripe(tb, -1)
	defer d.fake.Close()
	ctx := context.Background()
	for j := 0; j < n; j++ {
		obj := &billingv1alpha1.StripeSubscription{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("resync-%d", j)},
			Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerID: d.customerID,
				Items: []billingv1alpha1.SubscriptionItem{{PriceID: d.price["basic"], Quantity: int64(1 + j%5)}}},
		}
		if err := testClient().Create(ctx, obj); err != nil {
			tb.Fatalf("create: %v", err)
		}
	}
	// Converge (not measured) until every subscription is Ready.
	runResyncPass(tb, d, ns, n, nil)
	for ready := 0; ready < n; {
		var list billingv1alpha1.StripeSubscriptionList
		if err := testClient().List(ctx, &list, client.InNamespace(ns)); err != nil {
			tb.Fatalf("list: %v", err)
		}
		ready = 0
		for i := range list.Items {
			if meta.IsStatusConditionTrue(list.Items[i].Status.Conditions, billingv1alpha1.ConditionReady) {
				ready++
			}
		}
		if ready < n {
			runResyncPass(tb, d, ns, n, nil)
		}
	}
	perObject = runResyncPass(tb, d, ns, n, nil)
	listing = runResyncPass(tb, d, ns, n, &ResyncLists{Lister: d.api.(stripe.ResyncLister), MinRefresh: time.Hour})
	return perObject, listing
}

// BenchmarkSubscriptionResyncByListing measures the Stripe calls of one
// resync of N (default 1,000) unchanged subscriptions, side by side: read
// one by one (the per-object baseline) and read from a whole list. It
// prints both and their ratio, and fails when the listing resync makes
// more than N/100 + 5 calls.
func BenchmarkSubscriptionResyncByListing(b *testing.B) {
	n := resyncBenchN()
	for i := 0; i < b.N; i++ {
		perObject, listing := measureResync(b, benchNamespace(b), n)
		ratio := float64(perObject) / float64(max(listing, 1))
		fmt.Printf("resync of %d unchanged subscriptions: %d Stripe calls by listing, %d one by one (%.0fx fewer)\n", n, listing, perObject, ratio)
		b.ReportMetric(float64(listing), "calls/resync")
		b.ReportMetric(float64(perObject), "baseline-calls/resync")
		b.ReportMetric(ratio, "x-fewer")
		if listing > maxResyncCalls(n) {
			b.Fatalf("a resync by listing of %d unchanged subscriptions made %d Stripe calls, more than %d", n, listing, maxResyncCalls(n))
		}
	}
}

// TestResyncByListingCallBound holds the benchmark's bound at a size that
// fits `make test`: 150 unchanged subscriptions resync in at most 2 + 5
// calls, where one by one they take 150.
func TestResyncByListingCallBound(t *testing.T) {
	const n = 150
	perObject, listing := measureResync(t, newNamespace(t), n)
	t.Logf("resync of %d unchanged subscriptions: %d calls by listing, %d one by one", n, listing, perObject)
	if listing > maxResyncCalls(n) {
		t.Errorf("resync by listing made %d Stripe calls, more than %d", listing, maxResyncCalls(n))
	}
	if perObject < n {
		t.Errorf("the per-object baseline made %d calls for %d subscriptions; the measurement is off", perObject, n)
	}
}
