package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

func couponDiscount(name string) *billingv1alpha1.SubscriptionDiscount {
	return &billingv1alpha1.SubscriptionDiscount{CouponRef: &billingv1alpha1.LocalObjectReference{Name: name}}
}

// stripeDiscount reads the Stripe subscription's discount.
func (h *harness) stripeDiscount(sub *billingv1alpha1.StripeSubscription) *stripe.Discount {
	h.t.Helper()
	h.get(sub)
	s, err := h.stripe.GetSubscription(context.Background(), sub.Status.SubscriptionID)
	NewWithT(h.t).Expect(err).NotTo(HaveOccurred())
	return s.Discount
}

// TestSubscriptionDiscountDeclaredMeansApplied: a declared coupon is
// applied at creation (the first invoice is discounted) and recorded in
// status; a coupon swapped in the Dashboard is BillingDrift naming both
// coupons and is corrected; one removed there is applied again; removing
// spec.discount removes the discount in Stripe.
func TestSubscriptionDiscountDeclaredMeansApplied(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := startHarness(t, harnessOptions{})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	c := newCoupon("quarter", nil)
	h.create(c)
	h.waitReady(c)

	sub := newSub("s", func(s *billingv1alpha1.StripeSubscriptionSpec) { s.Discount = couponDiscount("quarter") }, planItem("pro", 1))
	h.create(sub)
	h.waitReady(sub)
	g.Expect(h.stripeDiscount(sub).CouponID).To(Equal(c.Status.CouponID))
	g.Expect(sub.Status.LatestInvoice.AmountDue).To(Equal(int64(1500)))
	g.Eventually(func() string {
		h.get(sub)
		if sub.Status.Discount == nil {
			return ""
		}
		return sub.Status.Discount.CouponID
	}, 20*time.Second).Should(Equal(c.Status.CouponID))
	h.waitCondition(sub, billingv1alpha1.ConditionBillingDrift, "False", billingv1alpha1.ReasonInSync)

	// Swapped in the Dashboard for a hand-made 100 % coupon.
	free, err := h.stripe.CreateCoupon(ctx, stripe.Owner{UID: "by-hand"}, "", stripe.CouponCreateParams{PercentOff: "100", Duration: "forever"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.fake.DashboardApplyCoupon(sub.Status.SubscriptionID, free.ID)).To(Succeed())
	h.waitCondition(sub, billingv1alpha1.ConditionBillingDrift, "False", billingv1alpha1.ReasonDriftCorrected)
	msg := condOf(sub, billingv1alpha1.ConditionBillingDrift).Message
	g.Expect(msg).To(ContainSubstring("coupon " + free.ID + " is applied in Stripe"))
	g.Expect(msg).To(ContainSubstring("StripeCoupon quarter"))
	g.Expect(h.stripeDiscount(sub).CouponID).To(Equal(c.Status.CouponID))

	// Removed in the Dashboard: applied again.
	corrections := countEvents(h, "DriftCorrected")
	g.Expect(h.fake.DashboardRemoveDiscount(sub.Status.SubscriptionID)).To(Succeed())
	g.Eventually(func() int { return countEvents(h, "DriftCorrected") }, 20*time.Second).Should(BeNumerically(">", corrections))
	g.Eventually(func() string { h.get(sub); return condOf(sub, billingv1alpha1.ConditionBillingDrift).Message }, 20*time.Second).
		Should(ContainSubstring("is declared but no discount is applied in Stripe"))
	g.Expect(h.stripeDiscount(sub)).NotTo(BeNil())

	// Removed from the spec: removed in Stripe.
	h.update(sub, func() { sub.Spec.Discount = nil })
	g.Eventually(func() *stripe.Discount { return h.stripeDiscount(sub) }, 20*time.Second).Should(BeNil())
	h.waitCondition(sub, billingv1alpha1.ConditionBillingDrift, "False", "")
	g.Eventually(func() *billingv1alpha1.DiscountStatus { h.get(sub); return sub.Status.Discount }, 20*time.Second).Should(BeNil())
}

func countEvents(h *harness, substr string) int {
	n := 0
	for _, e := range h.events() {
		if contains(e, substr) {
			n++
		}
	}
	return n
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

// TestSubscriptionDiscountObserveAndEnd: in Observe mode a coupon added
// in the Dashboard is BillingDrift naming it, and nothing is written; a
// repeating coupon that ended after its months is not drift, status keeps
// its end, and it is not applied again.
func TestSubscriptionDiscountObserveAndEnd(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := startHarness(t, harnessOptions{})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	c := newCoupon("intro", func(s *billingv1alpha1.StripeCouponSpec) {
		s.Duration, s.DurationInMonths = billingv1alpha1.CouponDurationRepeating, i64p(2)
	})
	h.create(c)
	h.waitReady(c)
	sub := newSub("s", func(s *billingv1alpha1.StripeSubscriptionSpec) { s.Discount = couponDiscount("intro") }, planItem("pro", 1))
	h.create(sub)
	h.waitReady(sub)
	start := h.fake.Now()
	g.Eventually(func() bool { h.get(sub); return sub.Status.Discount != nil && sub.Status.Discount.End != nil }, 20*time.Second).Should(BeTrue())
	g.Expect(sub.Status.Discount.End.Time.Unix()).To(Equal(start.UTC().AddDate(0, 2, 0).Unix()))

	for i := 0; i < 3; i++ {
		h.advance(31 * 24 * time.Hour)
	}
	g.Eventually(func() bool { h.get(sub); return sub.Status.Discount != nil && sub.Status.Discount.Ended }, 30*time.Second).Should(BeTrue())
	g.Expect(h.stripeDiscount(sub)).To(BeNil(), "an ended discount is not applied again")
	h.waitCondition(sub, billingv1alpha1.ConditionBillingDrift, "False", billingv1alpha1.ReasonInSync)
	snap := h.snapshot(sub)
	var due []int64
	for _, in := range snap.Invoices {
		due = append(due, in.AmountDue)
	}
	g.Expect(due).To(Equal([]int64{1500, 1500, 2000, 2000}))

	// Observe mode: a coupon added in the Dashboard is reported.
	watch := newSub("watch", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.SubscriptionID, s.ManagementPolicy = sub.Status.SubscriptionID, billingv1alpha1.ManagementPolicyObserve
		s.DeletionPolicy = billingv1alpha1.SubscriptionDeletionPolicyOrphan
	}, planItem("pro", 1))
	h.update(sub, func() { sub.Spec.DeletionPolicy = billingv1alpha1.SubscriptionDeletionPolicyOrphan })
	h.delete(sub)
	h.waitGone(sub)
	// The orphaned subscription still names resource "s"; a new "s" in
	// Observe mode watches it.
	watch.Name = "s"
	h.create(watch)
	h.waitReady(watch)
	writes := h.fake.Stats().Writes
	extra, err := h.stripe.CreateCoupon(ctx, stripe.Owner{UID: "by-hand"}, "", stripe.CouponCreateParams{AmountOff: 500, Currency: "usd", Duration: "forever"})
	g.Expect(err).NotTo(HaveOccurred())
	writes++
	g.Expect(h.fake.DashboardApplyCoupon(watch.Status.SubscriptionID, extra.ID)).To(Succeed())
	h.waitCondition(watch, billingv1alpha1.ConditionBillingDrift, "True", billingv1alpha1.ReasonDrifted)
	g.Expect(condOf(watch, billingv1alpha1.ConditionBillingDrift).Message).To(ContainSubstring("coupon " + extra.ID + " is applied in Stripe, no discount declared"))
	g.Expect(h.fake.Stats().Writes).To(Equal(writes), "Observe mode wrote nothing to Stripe")
}

// TestSubscriptionDiscountTenancyAndPromotionCodes: a couponID of another
// namespace's StripeCoupon is refused without a write; a promotion code
// with a first-time restriction is refused by Stripe for a customer who
// paid before (Stalled, Stripe's words) and redeemed by a new one.
func TestSubscriptionDiscountTenancyAndPromotionCodes(t *testing.T) {
	g := NewWithT(t)
	a := startHarness(t, harnessOptions{instance: "shared"})
	a.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	c := newCoupon("welcome", func(s *billingv1alpha1.StripeCouponSpec) {
		s.PromotionCodes = []billingv1alpha1.PromotionCodeSpec{{Code: "WELCOME",
			Restrictions: &billingv1alpha1.PromotionCodeRestrictions{FirstTimeTransaction: true}}}
	})
	a.create(c)
	a.waitReady(c)
	paid := newSub("paid", nil, planItem("pro", 1))
	a.create(paid)
	a.waitReady(paid)
	again := newSub("again", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.Discount = &billingv1alpha1.SubscriptionDiscount{PromotionCode: "WELCOME"}
	}, planItem("pro", 1))
	a.create(again)
	a.waitCondition(again, billingv1alpha1.ConditionStalled, "True", "")
	g.Expect(condOf(again, billingv1alpha1.ConditionStalled).Message).To(ContainSubstring("prior transactions"))

	b := startHarness(t, harnessOptions{instance: "shared", fake: a.fake})
	b.billingSetup("pm_card_visa", map[string]int64{"other": 2000})
	fresh := newSub("fresh", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.Discount = &billingv1alpha1.SubscriptionDiscount{PromotionCode: "WELCOME"}
	}, planItem("other", 1))
	steal := newSub("steal", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.Discount = &billingv1alpha1.SubscriptionDiscount{CouponID: c.Status.CouponID}
	}, planItem("other", 1))
	writes := a.fake.Stats().Writes
	b.create(steal)
	b.waitCondition(steal, billingv1alpha1.ConditionStalled, "True", ReasonOwnedElsewhere)
	g.Expect(condOf(steal, billingv1alpha1.ConditionStalled).Message).To(ContainSubstring(a.ns + "/welcome"))
	g.Expect(a.fake.Stats().Writes).To(Equal(writes), "no Stripe write")
	// The promotion code's coupon belongs to namespace a, too.
	b.create(fresh)
	b.waitCondition(fresh, billingv1alpha1.ConditionStalled, "True", ReasonOwnedElsewhere)

	// In namespace a, a new customer redeems it.
	cus2 := newCustomer("cus2", nil)
	a.create(cus2)
	a.waitReady(cus2)
	first := newSub("first", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.CustomerRef = &billingv1alpha1.LocalObjectReference{Name: "cus2"}
		s.Discount = &billingv1alpha1.SubscriptionDiscount{PromotionCode: "WELCOME"}
	}, planItem("pro", 1))
	a.create(first)
	a.waitReady(first)
	g.Expect(first.Status.LatestInvoice.AmountDue).To(Equal(int64(1500)))
	a.waitCondition(first, billingv1alpha1.ConditionBillingDrift, "False", billingv1alpha1.ReasonInSync)
}

// TestSubscriptionDiscountDashboardChangeByWebhook: with a resync of an
// hour, the customer.subscription.updated event of a coupon applied in the
// Dashboard is what brings the pass that removes it.
func TestSubscriptionDiscountDashboardChangeByWebhook(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := startHarness(t, harnessOptions{webhooks: true, resync: time.Hour})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	sub := newSub("s", nil, planItem("pro", 1))
	h.create(sub)
	h.waitReady(sub)
	h.waitCondition(sub, billingv1alpha1.ConditionBillingDrift, "False", billingv1alpha1.ReasonInSync)
	free, err := h.stripe.CreateCoupon(ctx, stripe.Owner{UID: "by-hand"}, "", stripe.CouponCreateParams{PercentOff: "100", Duration: "forever"})
	g.Expect(err).NotTo(HaveOccurred())
	// The creation's events are delivered first, so the Dashboard's event
	// is the news of its own pass.
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	g.Expect(h.fake.FlushEvents(fctx)).To(Succeed())
	g.Expect(h.fake.DashboardApplyCoupon(sub.Status.SubscriptionID, free.ID)).To(Succeed())
	h.waitCondition(sub, billingv1alpha1.ConditionBillingDrift, "False", billingv1alpha1.ReasonDriftCorrected)
	g.Expect(condOf(sub, billingv1alpha1.ConditionBillingDrift).Message).To(ContainSubstring("coupon " + free.ID + " is applied in Stripe, no discount declared"))
	g.Expect(h.stripeDiscount(sub)).To(BeNil())
}
