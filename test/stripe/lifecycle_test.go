// Package stripe_test runs one billing lifecycle through the operator
// against Stripe's test mode, or, offline, against the repository's
// test-mode Stripe: the same code either way, so it cannot rot.
//
//   - STRIPE_TEST_API_KEY=sk_test_... (or rk_test_...): Stripe's test mode.
//     `make test-stripe` runs this; without the key it skips with a message.
//   - STRIPE_API_URL=http://...: a test-mode Stripe at that URL.
//   - neither: an in-process test-mode Stripe (this is what `make test` runs).
//
// The operator runs without webhooks here (Stripe cannot reach a test
// machine), so status comes from its periodic resync, which is short.
package stripe_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
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

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("STRIPE_E2E_REQUIRE_KEY") != "" && os.Getenv("STRIPE_TEST_API_KEY") == "" {
		fmt.Println("SKIP: STRIPE_TEST_API_KEY is not set. Set it to a test-mode secret or restricted key (sk_test_... or rk_test_...) to run the lifecycle against Stripe's test mode.")
		return 0
	}
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	return m.Run()
}

// target is the Stripe the lifecycle runs against.
type target struct {
	api     *stripe.Client
	fake    *stripefake.Server // nil against a real Stripe
	resync  time.Duration
	timeout time.Duration
}

func newTarget(t *testing.T) *target {
	t.Helper()
	key, url := os.Getenv("STRIPE_TEST_API_KEY"), os.Getenv("STRIPE_API_URL")
	tg := &target{resync: 2 * time.Second, timeout: 90 * time.Second} // a bound a loaded CI machine cannot break; passes take seconds
	switch {
	case key != "":
		if !strings.HasPrefix(key, "sk_test_") && !strings.HasPrefix(key, "rk_test_") {
			t.Fatal("STRIPE_TEST_API_KEY must be a test-mode key (sk_test_... or rk_test_...); live keys are refused")
		}
		tg.resync, tg.timeout = 5*time.Second, 3*time.Minute
	case url != "":
		key = "sk_test_lifecycle"
	default:
		tg.fake = stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
		key, url = "sk_test_lifecycle", tg.fake.URL()
	}
	// Stripe's test mode allows 25 requests a second.
	api, err := stripe.New(stripe.Config{APIKey: key, BaseURL: url, RateLimit: 20})
	if err != nil {
		t.Fatal(err)
	}
	tg.api = api
	return tg
}

// advance moves the test clock to `to` and waits until Stripe is done.
func (tg *target) advance(t *testing.T, clockID string, to time.Time) {
	t.Helper()
	ctx := context.Background()
	if _, err := tg.api.AdvanceTestClock(ctx, clockID, to); err != nil {
		t.Fatalf("advancing the test clock: %v", err)
	}
	NewWithT(t).Eventually(func() string {
		c, err := tg.api.GetTestClock(ctx, clockID)
		if err != nil {
			return err.Error()
		}
		return c.Status
	}, tg.timeout, time.Second).Should(Equal("ready"))
}

func startOperator(t *testing.T, tg *target, ns string) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(10000)
	go func() {
		for range rec.Events { // drain
		}
	}()
	c := mgr.GetClient()
	for _, r := range []interface{ SetupWithManager(ctrl.Manager) error }{
		&controllers.StripeCustomerReconciler{Client: c, Stripe: tg.api, Recorder: rec, ResyncPeriod: tg.resync, SkipNameValidation: true},
		&controllers.StripePlanReconciler{Client: c, Stripe: tg.api, Recorder: rec, ResyncPeriod: tg.resync, SkipNameValidation: true},
		&controllers.StripeSubscriptionReconciler{Client: c, Stripe: tg.api, Recorder: rec, ResyncPeriod: tg.resync, SkipNameValidation: true},
	} {
		if err := r.SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func condition(obj interface{ GetConditions() []metav1.Condition }, typ string) metav1.Condition {
	for _, c := range obj.GetConditions() {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

// TestLifecycle: a customer with pm_card_visa on a test clock, two plans, a
// subscription, an upgrade with proration and a quantity change, cancel at
// period end and resume, a declined renewal and recovery once the card is
// fixed, and deletion of everything it made, the test clock included.
func TestLifecycle(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	tg := newTarget(t)
	k := env.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "lifecycle-"}}
	g.Expect(k.Create(ctx, ns)).To(Succeed())
	startOperator(t, tg, ns.Name)
	wait := func(f func(Gomega)) { t.Helper(); g.Eventually(f, tg.timeout, 250*time.Millisecond).Should(Succeed()) }
	get := func(obj client.Object) { g.Expect(k.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed()) }
	ready := func(obj interface {
		client.Object
		GetConditions() []metav1.Condition
	}) {
		t.Helper()
		wait(func(g Gomega) {
			get(obj)
			c := condition(obj, billingv1alpha1.ConditionReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: %s", c.Reason, c.Message)
			g.Expect(c.ObservedGeneration).To(Equal(obj.GetGeneration()))
		})
	}

	clock, err := tg.api.CreateTestClock(ctx, "stripe-operator lifecycle", time.Now().Truncate(time.Second))
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		// Deleting the clock deletes its customers and their subscriptions.
		if err := tg.api.DeleteTestClock(context.Background(), clock.ID); err != nil && !stripe.IsNotFound(err) {
			t.Errorf("deleting test clock %s: %v", clock.ID, err)
		}
	})

	cus := &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "acme"},
		Spec: billingv1alpha1.StripeCustomerSpec{Email: "billing@acme.example", Name: "Acme lifecycle",
			DefaultPaymentMethod: "pm_card_visa", TestClock: clock.ID, DeletionPolicy: billingv1alpha1.CustomerDeletionPolicyDelete}}
	plan := func(name string, amount int64) *billingv1alpha1.StripePlan {
		return &billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name},
			Spec: billingv1alpha1.StripePlanSpec{Product: billingv1alpha1.ProductSpec{Name: "Lifecycle " + name},
				Price: billingv1alpha1.PriceSpec{Currency: "usd", UnitAmount: amount, Interval: "month", IntervalCount: 1}}}
	}
	basic, pro := plan("basic", 1000), plan("pro", 2000)
	for _, obj := range []client.Object{cus, basic, pro} {
		g.Expect(k.Create(ctx, obj)).To(Succeed())
	}
	ready(cus)
	ready(basic)
	ready(pro)
	sc, err := tg.api.GetCustomer(ctx, cus.Status.CustomerID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sc.TestClock).To(Equal(clock.ID))
	g.Expect(sc.DefaultPaymentMethod).To(Equal(cus.Status.DefaultPaymentMethod.ID))
	g.Expect(sc.DefaultPaymentMethod).NotTo(Equal("pm_card_visa"), "Stripe makes a new PaymentMethod from the test one")

	sub := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "acme-basic"},
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerRef: &billingv1alpha1.LocalObjectReference{Name: "acme"},
			Items:          []billingv1alpha1.SubscriptionItem{{PlanRef: &billingv1alpha1.LocalObjectReference{Name: "basic"}, Quantity: 1}},
			DeletionPolicy: billingv1alpha1.SubscriptionDeletionPolicyCancel}}
	g.Expect(k.Create(ctx, sub)).To(Succeed())
	ready(sub)
	stripeSub := func() *stripe.Subscription {
		s, err := tg.api.GetSubscription(ctx, sub.Status.SubscriptionID)
		g.Expect(err).NotTo(HaveOccurred())
		return s
	}
	g.Expect(stripeSub().Status).To(Equal("active"))

	// Upgrade with proration and a quantity change, in one update.
	get(sub)
	sub.Spec.Items[0].PlanRef.Name, sub.Spec.Items[0].Quantity = "pro", 2
	sub.Spec.ProrationBehavior = billingv1alpha1.ProrationBehaviorAlwaysInvoice
	g.Expect(k.Update(ctx, sub)).To(Succeed())
	ready(sub)
	s := stripeSub()
	g.Expect(s.Items).To(HaveLen(1))
	g.Expect(s.Items[0]).To(And(HaveField("PriceID", pro.Status.PriceID), HaveField("Quantity", int64(2))))
	g.Expect(sub.Status.Items[0]).To(And(HaveField("PriceID", pro.Status.PriceID), HaveField("Quantity", int64(2))))
	g.Expect(s.LatestInvoice.BillingReason).To(Equal("subscription_update"), "the proration was invoiced")

	// Cancel at period end, then resume.
	for _, v := range []bool{true, false} {
		get(sub)
		sub.Spec.CancelAtPeriodEnd = v
		g.Expect(k.Update(ctx, sub)).To(Succeed())
		ready(sub)
		g.Expect(stripeSub().CancelAtPeriodEnd).To(Equal(v))
		g.Expect(sub.Status.CancelAtPeriodEnd).To(Equal(v))
	}

	// The card starts failing; the renewal is declined.
	get(cus)
	cus.Spec.DefaultPaymentMethod = "pm_card_chargeCustomerFail"
	g.Expect(k.Update(ctx, cus)).To(Succeed())
	ready(cus)
	g.Expect(cus.Status.DefaultPaymentMethod.Source).To(Equal("pm_card_chargeCustomerFail"))
	periodEnd := stripeSub().CurrentPeriodEnd
	tg.advance(t, clock.ID, time.Unix(periodEnd, 0).Add(time.Hour))
	wait(func(g Gomega) {
		get(sub)
		g.Expect(sub.Status.StripeStatus).To(Equal("past_due"))
		c := condition(sub, billingv1alpha1.ConditionPaymentFailed)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	})
	next := sub.Status.LatestInvoice.NextPaymentAttempt
	g.Expect(next).NotTo(BeNil(), "Stripe retries the payment")

	// The card is fixed; Stripe's next retry pays.
	get(cus)
	cus.Spec.DefaultPaymentMethod = "pm_card_visa"
	g.Expect(k.Update(ctx, cus)).To(Succeed())
	ready(cus)
	tg.advance(t, clock.ID, next.Add(time.Hour))
	wait(func(g Gomega) {
		get(sub)
		g.Expect(sub.Status.StripeStatus).To(Equal("active"))
		g.Expect(condition(sub, billingv1alpha1.ConditionPaymentFailed).Status).To(Equal(metav1.ConditionFalse))
	})
	ready(sub)

	// Deletion: the subscription is canceled, the customer deleted, the
	// plans archived (Stripe cannot delete a product that has prices).
	cusID := cus.Status.CustomerID
	for _, obj := range []client.Object{sub, basic, pro, cus} {
		g.Expect(k.Delete(ctx, obj)).To(Succeed())
		wait(func(g Gomega) {
			err := k.Get(ctx, client.ObjectKeyFromObject(obj), obj)
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%s still there", obj.GetName())
		})
	}
	g.Expect(stripeSub().Status).To(Equal("canceled"))
	deleted, err := tg.api.GetCustomer(ctx, cusID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(deleted.Deleted).To(BeTrue())
	for _, p := range []*billingv1alpha1.StripePlan{basic, pro} {
		prod, err := tg.api.GetProduct(ctx, p.Status.ProductID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(prod.Active).To(BeFalse())
	}
}
