package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

func newPlan(name string, amount int64, mutate func(*billingv1alpha1.StripePlanSpec)) *billingv1alpha1.StripePlan {
	p := &billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: billingv1alpha1.StripePlanSpec{
			Product: billingv1alpha1.ProductSpec{Name: "Plan " + name, Description: "desc"},
			Price:   billingv1alpha1.PriceSpec{Currency: "usd", UnitAmount: amount, Interval: "month", IntervalCount: 1, LookupKey: name + "-key"},
		}}
	if mutate != nil {
		mutate(&p.Spec)
	}
	return p
}

func (h *harness) stripePrice(id string) *stripe.Price {
	h.t.Helper()
	p, err := h.stripe.GetPrice(context.Background(), id)
	NewWithT(h.t).Expect(err).NotTo(HaveOccurred())
	return p
}

func (h *harness) stripeProduct(id string) *stripe.Product {
	h.t.Helper()
	p, err := h.stripe.GetProduct(context.Background(), id)
	NewWithT(h.t).Expect(err).NotTo(HaveOccurred())
	return p
}

func TestPlanCreateUpdateRolloverArchive(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{})
	plan := newPlan("pro", 2000, nil)
	h.create(plan)
	h.waitReady(plan)
	g.Expect(plan.Status.ProductID).To(HavePrefix("prod_"))
	first := plan.Status.PriceID
	g.Expect(first).To(HavePrefix("price_"))
	pr := h.stripePrice(first)
	g.Expect(pr.UnitAmount).To(Equal(int64(2000)))
	g.Expect(pr.LookupKey).To(Equal("pro-key"))

	// Product fields update in place.
	h.update(plan, func() { plan.Spec.Product.Name = "Pro Plus" })
	g.Eventually(func() string { return h.stripeProduct(plan.Status.ProductID).Name }, 20*time.Second).Should(Equal("Pro Plus"))

	// A new amount makes a new price, moves the lookup key, archives the old.
	h.update(plan, func() { plan.Spec.Price.UnitAmount = 2500 })
	g.Eventually(func() string { h.get(plan); return plan.Status.PriceID }, 20*time.Second).ShouldNot(Equal(first))
	h.waitReady(plan)
	second := plan.Status.PriceID
	g.Expect(h.stripePrice(second).UnitAmount).To(Equal(int64(2500)))
	g.Expect(h.stripePrice(second).LookupKey).To(Equal("pro-key"))
	g.Expect(h.stripePrice(first).Active).To(BeFalse())
	g.Expect(h.stripePrice(first).LookupKey).To(BeEmpty())
	g.Expect(plan.Status.PreviousPriceIDs).To(Equal([]string{first}))
	h.waitEvent("PriceRolledOver")

	// A Dashboard rename is reverted.
	g.Expect(h.fake.DashboardUpdateProduct(plan.Status.ProductID, map[string]string{"name": "Renamed"})).To(Succeed())
	g.Eventually(func() string { return h.stripeProduct(plan.Status.ProductID).Name }, 20*time.Second).Should(Equal("Pro Plus"))
	h.waitEvent("DriftCorrected")
	g.Expect(h.fake.Stats().Creates["product"]).To(Equal(1))
	g.Expect(h.fake.Stats().Creates["price"]).To(Equal(2))

	// Archive on delete.
	h.delete(plan)
	h.waitGone(plan)
	g.Expect(h.stripePrice(second).Active).To(BeFalse())
	g.Expect(h.stripeProduct(plan.Status.ProductID).Active).To(BeFalse())
}

func TestPlanFailuresAndCrashConvergeToOneObject(t *testing.T) {
	g := NewWithT(t)
	var crash *crashingClient
	h := startHarness(t, harnessOptions{wrapClient: func(c client.Client) client.Client {
		crash = &crashingClient{Client: c, failures: 2, match: func(o client.Object) bool {
			p, ok := o.(*billingv1alpha1.StripePlan)
			return ok && p.Status.ProductID != ""
		}}
		return crash
	}})
	h.fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/products", Status: 500, Count: 2})
	h.fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/prices", Status: 429, RetryAfter: time.Second, Count: 2})
	h.fake.InjectFault(stripefake.Fault{Method: "GET", Path: "/v1/prices", Status: 503, Count: 1})
	plan := newPlan("flaky", 900, nil)
	h.create(plan)
	h.waitReady(plan)
	g.Expect(crash.didCrash()).To(BeTrue())
	g.Expect(h.fake.Stats().Creates["product"]).To(Equal(1))
	g.Expect(h.fake.Stats().Creates["price"]).To(Equal(1))
}

func TestPlanAdoptionObserveAndOrphan(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{})
	ctx := context.Background()
	other := stripe.Owner{UID: "not-ours"} // no identity: made outside the operator
	h.allowAdoption()
	name := "Existing"
	prod, err := h.stripe.CreateProduct(ctx, other, "", stripe.ProductParams{Name: &name})
	g.Expect(err).NotTo(HaveOccurred())
	price, err := h.stripe.CreatePrice(ctx, other, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "eur", UnitAmount: 700, Interval: "year", IntervalCount: 1})
	g.Expect(err).NotTo(HaveOccurred())

	writes := h.fake.Stats().Writes
	obs := newPlan("observed", 700, func(s *billingv1alpha1.StripePlanSpec) {
		s.ProductID, s.Product.Name, s.Product.Description = prod.ID, name, ""
		s.Price = billingv1alpha1.PriceSpec{Currency: "eur", UnitAmount: 700, Interval: "year", IntervalCount: 1}
		s.ManagementPolicy = billingv1alpha1.ManagementPolicyObserve
	})
	h.create(obs)
	h.waitReady(obs)
	g.Expect(obs.Status.PriceID).To(Equal(price.ID))
	g.Expect(h.fake.DashboardUpdateProduct(prod.ID, map[string]string{"name": "Changed"})).To(Succeed())
	h.waitCondition(obs, billingv1alpha1.ConditionReady, "False", billingv1alpha1.ReasonDrifted)
	g.Expect(condOf(obs, billingv1alpha1.ConditionReady).Message).To(ContainSubstring("product.name"))
	h.delete(obs)
	h.waitGone(obs)
	g.Expect(h.fake.Stats().Writes).To(Equal(writes), "Observe mode wrote nothing to Stripe")
	g.Expect(h.stripeProduct(prod.ID).Active).To(BeTrue())

	// Manage adoption of the same product writes our metadata and keeps the
	// matching price; Orphan leaves both active on delete.
	adopt := newPlan("adopted", 700, func(s *billingv1alpha1.StripePlanSpec) {
		s.ProductID, s.Product.Name, s.Product.Description = prod.ID, "Adopted", ""
		s.Price = billingv1alpha1.PriceSpec{Currency: "eur", UnitAmount: 700, Interval: "year", IntervalCount: 1}
		s.DeletionPolicy = billingv1alpha1.PlanDeletionPolicyOrphan
	})
	h.create(adopt)
	h.waitReady(adopt)
	g.Expect(adopt.Status.PriceID).To(Equal(price.ID))
	g.Expect(h.stripeProduct(prod.ID).Name).To(Equal("Adopted"))
	g.Expect(h.stripeProduct(prod.ID).Metadata).To(HaveKeyWithValue(billingv1alpha1.StripeMetadataUID, string(adopt.UID)))
	h.delete(adopt)
	h.waitGone(adopt)
	g.Expect(h.stripeProduct(prod.ID).Active).To(BeTrue())
	g.Expect(h.stripePrice(price.ID).Active).To(BeTrue())
}
