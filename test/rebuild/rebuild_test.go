// Package rebuild proves that identity survives a new cluster: the same
// manifests applied to a brand-new API server (a GitOps rebuild), or
// re-created with new UIDs and empty status (a backup restore), bind to the
// Stripe objects that already exist and create nothing; and two operator
// instances sharing one Stripe account never touch each other's objects.
package rebuild

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

const (
	ns        = "team-a"
	customers = 20
	subs      = 200
)

// manifests are what Git holds: customers, two plans, subscriptions.
func manifests() []client.Object {
	var out []client.Object
	for i := range customers {
		out = append(out, &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("c%02d", i)},
			Spec: billingv1alpha1.StripeCustomerSpec{Email: fmt.Sprintf("c%02d@example.com", i), DefaultPaymentMethod: "pm_card_visa"}})
	}
	for _, p := range []struct {
		name   string
		amount int64
	}{{"basic", 1000}, {"pro", 2500}} {
		out = append(out, &billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: p.name},
			Spec: billingv1alpha1.StripePlanSpec{Product: billingv1alpha1.ProductSpec{Name: p.name},
				Price: billingv1alpha1.PriceSpec{Currency: "usd", UnitAmount: p.amount, Interval: "month", IntervalCount: 1, LookupKey: p.name}}})
	}
	for i := range subs {
		plan := "basic"
		if i%2 == 1 {
			plan = "pro"
		}
		out = append(out, &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("s%03d", i)},
			Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerRef: &billingv1alpha1.LocalObjectReference{Name: fmt.Sprintf("c%02d", i%customers)},
				Items: []billingv1alpha1.SubscriptionItem{{PlanRef: &billingv1alpha1.LocalObjectReference{Name: plan}, Quantity: 1}}}})
	}
	return out
}

// cluster is one API server with the operator running against it.
type cluster struct {
	env  *testenv.Env
	stop func()
}

func startCluster(t *testing.T, fake *stripefake.Server, instance string) *cluster {
	t.Helper()
	env, err := testenv.Start()
	if err != nil {
		t.Fatalf("starting an API server: %v", err)
	}
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	sc, err := stripe.New(stripe.Config{APIKey: "sk_test_rebuild", BaseURL: fake.URL(), RateLimit: 2000})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}}})
	if err != nil {
		t.Fatal(err)
	}
	c := mgr.GetClient()
	for _, r := range []interface{ SetupWithManager(ctrl.Manager) error }{
		&controllers.StripeCustomerReconciler{Client: c, Stripe: sc, Instance: instance, ResyncPeriod: time.Hour, SkipNameValidation: true, MaxConcurrentReconciles: 8},
		&controllers.StripePlanReconciler{Client: c, Stripe: sc, Instance: instance, ResyncPeriod: time.Hour, SkipNameValidation: true},
		&controllers.StripeSubscriptionReconciler{Client: c, Stripe: sc, Instance: instance, ResyncPeriod: time.Hour, SkipNameValidation: true, MaxConcurrentReconciles: 8},
	} {
		if err := r.SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
	}
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(mctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	cl := &cluster{env: env}
	cl.stop = func() {
		cancel()
		<-done
		_ = env.Stop()
	}
	return cl
}

func (cl *cluster) apply(t *testing.T, objs []client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cl.env.Client.Create(context.Background(), o.DeepCopyObject().(client.Object)); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}
}

// waitReady waits for every resource to be Ready for its generation and
// returns the Stripe ID each is bound to, by kind/name.
func (cl *cluster) waitReady(t *testing.T) map[string]string {
	t.Helper()
	ids := map[string]string{}
	NewWithT(t).Eventually(func() int {
		ready := 0
		ids = map[string]string{}
		ctx := context.Background()
		isReady := func(conds []metav1.Condition, gen int64) bool {
			for _, c := range conds {
				if c.Type == billingv1alpha1.ConditionReady {
					return c.Status == metav1.ConditionTrue && c.ObservedGeneration == gen
				}
			}
			return false
		}
		var cs billingv1alpha1.StripeCustomerList
		var ps billingv1alpha1.StripePlanList
		var ss billingv1alpha1.StripeSubscriptionList
		if cl.env.Client.List(ctx, &cs, client.InNamespace(ns)) != nil || cl.env.Client.List(ctx, &ps, client.InNamespace(ns)) != nil ||
			cl.env.Client.List(ctx, &ss, client.InNamespace(ns)) != nil {
			return -1
		}
		for _, c := range cs.Items {
			if isReady(c.Status.Conditions, c.Generation) {
				ready++
				ids["customer/"+c.Name] = c.Status.CustomerID
			}
		}
		for _, p := range ps.Items {
			if isReady(p.Status.Conditions, p.Generation) {
				ready++
				ids["product/"+p.Name] = p.Status.ProductID
				ids["price/"+p.Name] = p.Status.PriceID
			}
		}
		for _, s := range ss.Items {
			if isReady(s.Status.Conditions, s.Generation) {
				ready++
				ids["subscription/"+s.Name] = s.Status.SubscriptionID
			}
		}
		return ready
	}, 5*time.Minute, time.Second).Should(Equal(customers + 2 + subs))
	return ids
}

func creates(fake *stripefake.Server) map[string]int {
	out := map[string]int{}
	for k, v := range fake.Stats().Creates {
		out[k] = v
	}
	return out
}

// TestRebuildAndRestoreCreateNothing: the rebuild and restore scenarios of
// a GitOps-managed cluster against one Stripe account.
func TestRebuildAndRestoreCreateNothing(t *testing.T) {
	g := NewWithT(t)
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})

	first := startCluster(t, fake, "default")
	first.apply(t, manifests())
	original := first.waitReady(t)
	first.stop()
	t.Logf("first cluster: %d Stripe objects, creates %v", len(original), creates(fake))

	// A rebuild happens well after Stripe's search index caught up.
	fake.AdvanceClock(2 * time.Minute)
	before := creates(fake)
	rebuilt := startCluster(t, fake, "default")
	defer rebuilt.stop()
	rebuilt.apply(t, manifests())
	after := rebuilt.waitReady(t)
	t.Logf("rebuild: creates by kind before %v, after %v", before, creates(fake))
	g.Expect(creates(fake)).To(Equal(before), "a rebuilt cluster creates nothing in Stripe")
	g.Expect(after).To(Equal(original), "every resource is bound to its original Stripe object")

	// Restore: delete everything with Orphan, re-create it (new UIDs, empty
	// status) later.
	ctx := context.Background()
	k := rebuilt.env.Client
	for _, o := range manifests() {
		obj := o.DeepCopyObject().(client.Object)
		g.Expect(k.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		switch x := obj.(type) {
		case *billingv1alpha1.StripeCustomer:
			x.Spec.DeletionPolicy = billingv1alpha1.CustomerDeletionPolicyOrphan
		case *billingv1alpha1.StripePlan:
			x.Spec.DeletionPolicy = billingv1alpha1.PlanDeletionPolicyOrphan
		case *billingv1alpha1.StripeSubscription:
			x.Spec.DeletionPolicy = billingv1alpha1.SubscriptionDeletionPolicyOrphan
		}
		g.Expect(k.Update(ctx, obj)).To(Succeed())
	}
	rebuilt.waitReady(t)
	for _, o := range manifests() {
		g.Expect(k.Delete(ctx, o.DeepCopyObject().(client.Object))).To(Succeed())
	}
	g.Eventually(func() int {
		n := 0
		for _, o := range manifests() {
			if err := k.Get(ctx, client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object)); !apierrors.IsNotFound(err) {
				n++
			}
		}
		return n
	}, 2*time.Minute, time.Second).Should(BeZero())
	fake.AdvanceClock(2 * time.Minute)
	before = creates(fake)
	rebuilt.apply(t, manifests())
	restored := rebuilt.waitReady(t)
	t.Logf("restore: creates by kind before %v, after %v", before, creates(fake))
	g.Expect(creates(fake)).To(Equal(before), "a restore creates nothing in Stripe")
	g.Expect(restored).To(Equal(original))
}

// TestTwoInstancesShareOneStripe: the same namespace and names under
// instances a and b each get their own Stripe objects; neither adopts the
// other's.
func TestTwoInstancesShareOneStripe(t *testing.T) {
	g := NewWithT(t)
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	objs := []client.Object{
		&billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"},
			Spec: billingv1alpha1.StripeCustomerSpec{Email: "acme@example.com", DefaultPaymentMethod: "pm_card_visa"}},
		&billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pro"},
			Spec: billingv1alpha1.StripePlanSpec{Product: billingv1alpha1.ProductSpec{Name: "Pro"},
				Price: billingv1alpha1.PriceSpec{Currency: "usd", UnitAmount: 2000, Interval: "month", IntervalCount: 1}}},
		&billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-pro"},
			Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerRef: &billingv1alpha1.LocalObjectReference{Name: "acme"},
				Items: []billingv1alpha1.SubscriptionItem{{PlanRef: &billingv1alpha1.LocalObjectReference{Name: "pro"}, Quantity: 1}}}},
	}
	bound := map[string]map[string]string{}
	for _, instance := range []string{"a", "b"} {
		cl := startCluster(t, fake, instance)
		cl.apply(t, objs)
		ctx := context.Background()
		ids := map[string]string{}
		g.Eventually(func() bool {
			var s billingv1alpha1.StripeSubscription
			if cl.env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-pro"}, &s) != nil {
				return false
			}
			for _, c := range s.Status.Conditions {
				if c.Type == billingv1alpha1.ConditionReady && c.Status == metav1.ConditionTrue {
					ids["subscription"] = s.Status.SubscriptionID
					ids["customer"] = s.Status.CustomerID
					return true
				}
			}
			return false
		}, 2*time.Minute, time.Second).Should(BeTrue())
		bound[instance] = ids
		cl.stop()
		fake.AdvanceClock(2 * time.Minute) // b's lookups see a's objects in search
	}
	g.Expect(bound["a"]["subscription"]).NotTo(Equal(bound["b"]["subscription"]))
	g.Expect(bound["a"]["customer"]).NotTo(Equal(bound["b"]["customer"]))
	g.Expect(fake.Stats().Creates["subscription"]).To(Equal(2))
	g.Expect(fake.Stats().Creates["customer"]).To(Equal(2))
	for instance, ids := range bound {
		snap, _ := fake.Subscription(ids["subscription"])
		g.Expect(snap.Metadata).To(HaveKeyWithValue(billingv1alpha1.StripeMetadataInstance, instance))
		g.Expect(snap.Status).To(Equal("active"), "instance %s's subscription is untouched", instance)
	}
}
