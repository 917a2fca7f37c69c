package controllers

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// benchN is the number of subscriptions BenchmarkSubscriptionConverge
// creates: 1000 by default (about a minute at 25 requests/s); -benchN or
// BENCH_N changes it.
var benchN = flag.Int("benchN", 0, "subscriptions to converge in BenchmarkSubscriptionConverge (default 1000, env BENCH_N)")

// benchRate is the Stripe request rate the benchmark is bounded by.
const benchRate = 25.0

func benchSize() int {
	if *benchN > 0 {
		return *benchN
	}
	if v, err := strconv.Atoi(os.Getenv("BENCH_N")); err == nil && v > 0 {
		return v
	}
	return 1000
}

// benchBackend is a rate-limited Stripe for the benchmark and a count of the
// requests it served.
type benchBackend struct {
	api        stripe.API
	calls      func() int
	close      func()
	customerID string
	priceID    string
	// routes is the fake's request count by route, for the log.
	routes func() map[string]int
	// rateLimited is the number of 429s the fake answered.
	rateLimited func() int
}

// BenchmarkSubscriptionConverge measures, against a Stripe limited to 25
// requests per second:
//
//   - the time and the Stripe calls to converge N new subscriptions (all
//     Ready), reported as calls/sub (goal ≤ 1.01) and as x-bound: the
//     elapsed time divided by the least time N creates take at 25/s (goal
//     ≤ 1.02; 1.0 would mean the operator is limited only by Stripe's rate
//     and makes no other call);
//   - the Stripe calls per subscription of one resync pass when nothing
//     changed (calls/sub/resync).
func BenchmarkSubscriptionConverge(b *testing.B) {
	n := benchSize()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		be := newBenchBackend(b)
		ns, sentinelNS := benchNamespace(b), benchNamespace(b)
		ctx, cancel := context.WithCancel(context.Background())
		resync := make(chan event.GenericEvent, 1)
		// Only this run's namespaces: the resources an earlier benchmark
		// left behind (its Stripe gone) must not queue ahead of these.
		mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{
			Scheme:  testClient().Scheme(),
			Metrics: metricsserver.Options{BindAddress: "0"},
			Cache:   cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}, sentinelNS: {}}},
		})
		if err != nil {
			b.Fatalf("manager: %v", err)
		}
		r := &StripeSubscriptionReconciler{
			Client: mgr.GetClient(), Stripe: be.api, ResyncPeriod: time.Hour,
			SkipNameValidation: true, CredentialsChanged: resync, MaxConcurrentReconciles: 8,
		}
		if err := r.SetupWithManager(mgr); err != nil {
			b.Fatalf("setup: %v", err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = mgr.Start(ctx) }()
		// A running operator: the manifests are applied once its controller
		// works, which a sentinel shows: a subscription of a StripeCustomer
		// that does not exist is Stalled without any Stripe call.
		waitControllerRunning(b, sentinelNS)

		start := time.Now()
		b.StartTimer()
		for j := 0; j < n; j++ {
			obj := &billingv1alpha1.StripeSubscription{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("bench-%d", j)},
				Spec: billingv1alpha1.StripeSubscriptionSpec{
					CustomerID: be.customerID,
					Items:      []billingv1alpha1.SubscriptionItem{{PriceID: be.priceID, Quantity: int64(1 + j%5)}},
				},
			}
			if err := testClient().Create(ctx, obj); err != nil {
				b.Fatalf("create: %v", err)
			}
		}
		// Listing 1,000 objects competes with the operator for the CPU: wait
		// on the fake's count of calls first, then check Ready.
		for be.calls() < n && time.Since(start) < time.Duration(float64(n)*10/benchRate)*time.Second {
			time.Sleep(20 * time.Millisecond)
		}
		allCalls := time.Since(start)
		waitAllReady(b, ns, n, time.Duration(float64(n)*10/benchRate)*time.Second+2*time.Minute)
		b.StopTimer()
		elapsed := time.Since(start)
		calls := be.calls()
		b.Logf("converge: %d calls for %d subscriptions (%d answered 429), by route: %v", calls, n, be.rateLimited(), be.routes())
		// The limiter's bound for n creates: n requests at benchRate.
		bound := time.Duration(float64(n) / benchRate * float64(time.Second))
		b.Logf("converge: %d Stripe calls after %s, all Ready after %s (the limiter's bound: %s)", n, allCalls, elapsed, bound)
		b.ReportMetric(float64(calls)/float64(n), "calls/sub")
		b.ReportMetric(elapsed.Seconds()/bound.Seconds(), "x-bound")
		b.ReportMetric(elapsed.Seconds(), "converge-s")

		// One resync pass over unchanged subscriptions.
		settle(be.calls)
		before := be.calls()
		resync <- event.GenericEvent{Object: &billingv1alpha1.StripeSubscription{}}
		deadline := time.Now().Add(time.Duration(float64(n)*3/benchRate)*time.Second + time.Minute)
		for be.calls()-before < n && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		settle(be.calls)
		b.ReportMetric(float64(be.calls()-before)/float64(n), "calls/sub/resync")

		cancel()
		<-done
		be.close()
	}
}

// settle waits until the call count stops moving for a second.
func settle(calls func() int) {
	last := calls()
	for {
		time.Sleep(time.Second)
		now := calls()
		if now == last {
			return
		}
		last = now
	}
}

func waitAllReady(b *testing.B, ns string, n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		var list billingv1alpha1.StripeSubscriptionList
		if err := testClient().List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			b.Fatalf("list: %v", err)
		}
		ready := 0
		for i := range list.Items {
			if meta.IsStatusConditionTrue(list.Items[i].Status.Conditions, billingv1alpha1.ConditionReady) {
				ready++
			}
		}
		if ready == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d subscriptions Ready after %s", ready, n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitControllerRunning creates, in ns, a subscription whose customer does
// not exist and waits until the controller reported it Stalled.
func waitControllerRunning(b *testing.B, ns string) {
	obj := &billingv1alpha1.StripeSubscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sentinel"},
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerRef: &billingv1alpha1.LocalObjectReference{Name: "missing"},
			Items: []billingv1alpha1.SubscriptionItem{{PriceID: "price_sentinel", Quantity: 1}}},
	}
	if err := testClient().Create(context.Background(), obj); err != nil {
		b.Fatalf("sentinel: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for !meta.IsStatusConditionTrue(obj.Status.Conditions, billingv1alpha1.ConditionStalled) {
		if time.Now().After(deadline) {
			b.Fatal("the controller did not start within a minute")
		}
		time.Sleep(20 * time.Millisecond)
		if err := testClient().Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			b.Fatalf("sentinel: %v", err)
		}
	}
}

func benchNamespace(b *testing.B) string {
	ns := "bench-" + strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36)
	if err := testClient().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatalf("namespace: %v", err)
	}
	return ns
}

// newBenchBackend is the stateful fake Stripe over HTTP, rate-limited at
// 25 requests/s like Stripe's test mode, behind the real client whose shared
// limiter is set to the same rate; calls are what the fake served.
func newBenchBackend(b *testing.B) *benchBackend {
	d := newDirectStripe(b, benchRate)
	// The measured client: the shared limiter at Stripe test mode's rate.
	limited, err := stripe.New(stripe.Config{APIKey: "sk_test_bench", BaseURL: d.fake.URL(), RateLimit: benchRate, Burst: 1, EndpointRateLimit: benchRate})
	if err != nil {
		b.Fatal(err)
	}
	base := d.total()
	return &benchBackend{api: limited, calls: func() int { return d.total() - base },
		close: d.fake.Close, customerID: d.customerID, priceID: d.price["basic"],
		routes: func() map[string]int { return d.fake.Stats().Requests }, rateLimited: func() int { return d.fake.Stats().RateLimited }}
}
