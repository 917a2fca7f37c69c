package controllers

// Tests of Stripe's idempotency semantics as the reconcilers meet them: a
// saved failure never sticks, a repeated change is a new intent, and status
// is compared with what the test-mode Stripe actually holds, never with what
// the client returned.

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// expectStatusMatchesStripe compares the resource's status with the fake's
// own state of the subscription.
func (e *directEnv) expectStatusMatchesStripe(name string) *billingv1alpha1.StripeSubscription {
	e.t.Helper()
	g := NewWithT(e.t)
	obj := e.fetch(name)
	snap := e.m.get(obj.Status.SubscriptionID)
	g.Expect(obj.Status.StripeStatus).To(Equal(snap.Status))
	g.Expect(obj.Status.Items).To(HaveLen(len(snap.Items)))
	for i, it := range snap.Items {
		g.Expect(obj.Status.Items[i]).To(And(HaveField("ItemID", it.ID), HaveField("PriceID", it.Price), HaveField("Quantity", it.Quantity)))
	}
	g.Expect(obj.Status.CancelAtPeriodEnd).To(Equal(snap.CancelAtPeriodEnd))
	return obj
}

// TestSubscriptionDeclineThenFixedCard: a create declined under
// error_if_incomplete (Stripe answers 402 and creates nothing) stalls the
// resource with PaymentDeclined; later passes make no request that can
// charge, until the customer's default payment method changes. Then one
// create, under a new intent (Stripe saved the 402 under the old key for 24
// hours), succeeds.
func TestSubscriptionDeclineThenFixedCard(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	declining, err := e.m.fake.DashboardSetDefaultPaymentMethod(e.m.customerID, "pm_card_chargeCustomerFail")
	g.Expect(err).NotTo(HaveOccurred())
	e.newSub("strict", func(s *billingv1alpha1.StripeSubscription) {
		s.Spec.PaymentBehavior = billingv1alpha1.PaymentBehaviorErrorIfIncomplete
	})
	charges := func() []stripefake.Charge { return e.m.fake.Charges() }
	_, _ = e.reconcile("strict")
	obj := e.fetch("strict")
	g.Expect(obj.Status.SubscriptionID).To(BeEmpty())
	g.Expect(e.m.creates()).To(BeZero(), "Stripe creates nothing under error_if_incomplete when the payment fails")
	g.Expect(charges()).To(HaveLen(1))
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled)).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", billingv1alpha1.ReasonPaymentDeclined)))
	g.Expect(obj.Status.Charges.Declined).To(And(HaveField("PaymentMethod", declining), HaveField("Request", "create"), HaveField("Generation", obj.Generation)))
	g.Expect(obj.Status.Charges.Attempts).To(HaveLen(1))
	first := obj.Annotations[billingv1alpha1.AnnotationCreatePending]
	g.Expect(first).NotTo(BeEmpty())

	// Nothing changed: each pass reads the customer (the sign that it ran
	// and looked) and charges nothing; each refusal is counted.
	refusals := testutil.ToFloat64(chargeRefusalsTotal.WithLabelValues(billingv1alpha1.ReasonPaymentDeclined))
	declined := testutil.ToFloat64(chargeAttemptsTotal.WithLabelValues("create", "declined"))
	g.Expect(declined).To(BeNumerically(">=", 1))
	for i := range 3 {
		reads := e.m.requests("GET /v1/customers/{id}")
		_, _ = e.reconcile("strict")
		g.Expect(e.m.requests("GET /v1/customers/{id}")).To(Equal(reads+1), "pass %d read the customer's payment method", i+1)
		g.Expect(charges()).To(HaveLen(1), "pass %d charged nothing", i+1)
	}
	g.Expect(testutil.ToFloat64(chargeRefusalsTotal.WithLabelValues(billingv1alpha1.ReasonPaymentDeclined))).To(BeNumerically(">=", refusals+3))
	obj = e.fetch("strict")
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled).Message).To(ContainSubstring("No further charge is attempted until"))
	g.Expect(obj.Status.Charges.Attempts).To(HaveLen(1))

	// The card is fixed: the next pass creates it, under a new intent.
	e.m.fake.AdvanceClock(10 * time.Minute)
	_, err = e.m.fake.DashboardSetDefaultPaymentMethod(e.m.customerID, "pm_card_visa")
	g.Expect(err).NotTo(HaveOccurred())
	e.mustReconcile("strict")
	obj = e.expectStatusMatchesStripe("strict")
	g.Expect(obj.Status.StripeStatus).To(Equal("active"))
	g.Expect(e.m.creates()).To(Equal(1))
	g.Expect(charges()).To(HaveLen(2))
	g.Expect(charges()[1].Succeeded).To(BeTrue())
	g.Expect(obj.Annotations).NotTo(HaveKey(billingv1alpha1.AnnotationCreatePending))
	g.Expect(obj.Status.Charges.Declined).To(BeNil())
	g.Expect(obj.Status.Charges.Attempts).To(HaveLen(2))
}

// TestSubscriptionCreate500AfterExecution: Stripe did the create and then
// answered 500, which it saves under the key. The next pass finds the
// subscription instead of creating a second one.
func TestSubscriptionCreate500AfterExecution(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.m.fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/subscriptions", Status: 500, Count: 1, AfterExecute: true})
	e.newSub("once", nil)
	_, err := e.reconcile("once")
	g.Expect(err).To(HaveOccurred())
	g.Expect(e.m.creates()).To(Equal(1), "the create executed")
	for range 3 {
		e.mustReconcile("once")
	}
	g.Expect(e.m.creates()).To(Equal(1), "exactly one subscription")
	obj := e.expectStatusMatchesStripe("once")
	g.Expect(obj.Status.SubscriptionID).NotTo(BeEmpty())
	g.Expect(obj.Annotations).NotTo(HaveKey(billingv1alpha1.AnnotationCreatePending))
}

// TestSubscriptionSameDriftCorrectedEachTime: the same Dashboard edit made
// three times within an hour is corrected three times, and status matches
// Stripe after each correction.
func TestSubscriptionSameDriftCorrectedEachTime(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("drift", nil)
	e.mustReconcile("drift")
	id := e.fetch("drift").Status.SubscriptionID
	for i := range 3 {
		item := e.m.get(id).Items[0].ID
		g.Expect(e.m.fake.DashboardSetItemQuantity(id, item, 5)).To(Succeed())
		e.mustReconcile("drift")
		g.Expect(e.m.get(id).Items[0].Quantity).To(Equal(int64(2)), "correction %d reached Stripe", i+1)
		obj := e.expectStatusMatchesStripe("drift")
		g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Status).To(Equal(metav1.ConditionFalse))
		e.m.fake.AdvanceClock(10 * time.Minute)
	}
}

// TestSubscriptionQuantityUndoneAndRedone: A -> B -> A is three intents;
// Stripe ends at A.
func TestSubscriptionQuantityUndoneAndRedone(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("aba", nil)
	e.mustReconcile("aba")
	id := e.fetch("aba").Status.SubscriptionID
	for _, q := range []int64{3, 2, 3, 2} {
		e.updateSpec("aba", func(s *billingv1alpha1.StripeSubscriptionSpec) { s.Items[0].Quantity = q })
		e.mustReconcile("aba")
		g.Expect(e.m.get(id).Items[0].Quantity).To(Equal(q))
		e.expectStatusMatchesStripe("aba")
	}
}

// TestSubscriptionCancelAtCompared: a cancellation date set in the
// Dashboard is drift; Manage mode removes it.
func TestSubscriptionCancelAtCompared(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("cancel-at", nil)
	e.mustReconcile("cancel-at")
	id := e.fetch("cancel-at").Status.SubscriptionID
	g.Expect(e.m.fake.DashboardSetCancelAt(id, e.m.fake.Now().Add(48*time.Hour))).To(Succeed())
	g.Expect(e.m.get(id).CancelAt).NotTo(BeZero())
	e.mustReconcile("cancel-at")
	g.Expect(e.m.get(id).CancelAt).To(BeZero())
	obj := e.expectStatusMatchesStripe("cancel-at")
	g.Expect(obj.Status.CancelAt).To(BeNil())
}

// TestCustomerPaymentMethodUndoneAndRedone: defaultPaymentMethod A -> B ->
// A: each change attaches anew (a test PaymentMethod makes a new pm_...),
// Stripe ends at A, and status records the PaymentMethod Stripe holds. The
// same Dashboard change made twice is corrected twice.
func TestCustomerPaymentMethodUndoneAndRedone(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{})
	cus := newCustomer("aba", nil)
	h.create(cus)
	h.waitReady(cus)
	id := cus.Status.CustomerID
	recorded := func(source string) func() bool {
		return func() bool {
			h.get(cus)
			st := cus.Status.DefaultPaymentMethod
			ready := condOf(cus, billingv1alpha1.ConditionReady)
			return st != nil && st.Source == source && st.ID == h.stripeCustomer(id).DefaultPaymentMethod &&
				ready != nil && ready.Status == metav1.ConditionTrue && cus.Status.ObservedGeneration == cus.Generation
		}
	}
	for _, pm := range []string{"pm_card_mastercard", "pm_card_visa", "pm_card_mastercard", "pm_card_visa"} {
		h.update(cus, func() { cus.Spec.DefaultPaymentMethod = pm })
		g.Eventually(func() string { return h.defaultPMToken(id) }, 20*time.Second).Should(Equal(pm))
		g.Eventually(recorded(pm), 20*time.Second).Should(BeTrue(), "status records %s as Stripe holds it", pm)
	}
	for i := range 2 {
		_, err := h.fake.DashboardSetDefaultPaymentMethod(id, "pm_card_chargeCustomerFail")
		g.Expect(err).NotTo(HaveOccurred())
		g.Eventually(func() string { return h.defaultPMToken(id) }, 20*time.Second).Should(Equal("pm_card_visa"), "correction %d", i+1)
		g.Eventually(recorded("pm_card_visa"), 20*time.Second).Should(BeTrue())
	}
}

// TestPlanProductNameUndoneAndRedone: product.name A -> B -> A ends at A in
// Stripe.
func TestPlanProductNameUndoneAndRedone(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{})
	p := newPlan("aba", 1000, nil)
	h.create(p)
	h.waitReady(p)
	for _, name := range []string{"B", "A", "B", "A"} {
		h.update(p, func() { p.Spec.Product.Name = name })
		g.Eventually(func() string {
			prod, err := h.stripe.GetProduct(context.Background(), p.Status.ProductID)
			g.Expect(err).NotTo(HaveOccurred())
			return prod.Name
		}, 20*time.Second).Should(Equal(name))
		h.waitReady(p)
	}
}

// TestQuietResyncsWriteNothing: three resyncs with nothing changed make no
// Stripe write for any kind. The resyncs are counted (Stripe reads of each
// kind), not timed, so a slow machine only makes the test take longer.
func TestQuietResyncsWriteNothing(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{resync: time.Second})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	sub := newSub("quiet", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.Metadata = billingv1alpha1.Metadata{"team": "a"}
	}, planItem("pro", 2))
	h.create(sub)
	h.waitReady(sub)
	// One resource of each kind: the customer, the plan (its product) and
	// the subscription, each read by its passes.
	kinds := []string{"GET /v1/customers", "GET /v1/products", "GET /v1/subscriptions"}
	// The passes the create triggered have settled once every resource was
	// read twice more: a pass that started earlier has finished by then.
	for _, route := range kinds {
		h.waitStripeReads(route, h.stripeReads(route), 2)
	}
	before := h.fake.Stats()
	for _, route := range kinds { // three resyncs of every resource
		h.waitStripeReads(route, readsOf(before, route), 3)
	}
	after := h.fake.Stats()
	for route, n := range after.Requests {
		if strings.HasPrefix(route, "POST ") || strings.HasPrefix(route, "DELETE ") {
			g.Expect(n).To(Equal(before.Requests[route]), "%s during quiet resyncs", route)
		}
	}
	g.Expect(after.Writes).To(Equal(before.Writes), "Stripe writes during quiet resyncs")
}

// TestCustomerOnTestClock: spec.testClock puts the new customer on the
// test clock.
func TestCustomerOnTestClock(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{})
	clock, err := h.stripe.CreateTestClock(context.Background(), "e2e", h.fake.Now())
	g.Expect(err).NotTo(HaveOccurred())
	cus := newCustomer("clocked", func(s *billingv1alpha1.StripeCustomerSpec) { s.TestClock = clock.ID })
	h.create(cus)
	h.waitReady(cus)
	g.Expect(h.stripeCustomer(cus.Status.CustomerID).TestClock).To(Equal(clock.ID))
}

// TestTestClockRefusedWithLiveKey: spec.testClock is for test mode; with a
// live key the customer is Stalled and Stripe is never called.
func TestTestClockRefusedWithLiveKey(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	live, err := stripe.New(stripe.Config{APIKey: "sk_live_notARealKey", AllowLiveMode: true, BaseURL: fake.URL(), RateLimit: 1000})
	g.Expect(err).NotTo(HaveOccurred())
	ns := newNamespace(t)
	cus := newCustomer("live", func(s *billingv1alpha1.StripeCustomerSpec) { s.TestClock = "clock_Anything" })
	cus.Namespace = ns
	g.Expect(testClient().Create(ctx, cus)).To(Succeed())
	r := &StripeCustomerReconciler{Client: testClient(), Stripe: live, ResyncPeriod: time.Hour}
	_, _ = r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "live"}})
	g.Expect(testClient().Get(ctx, types.NamespacedName{Namespace: ns, Name: "live"}, cus)).To(Succeed())
	stalled := condOf(cus, billingv1alpha1.ConditionStalled)
	g.Expect(stalled).NotTo(BeNil())
	g.Expect(stalled.Message).To(ContainSubstring("spec.testClock"))
	g.Expect(fake.Stats().Writes).To(BeZero())
	g.Expect(cus.Status.CustomerID).To(BeEmpty())
}
