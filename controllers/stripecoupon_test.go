package controllers

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

func newCoupon(name string, mutate func(*billingv1alpha1.StripeCouponSpec)) *billingv1alpha1.StripeCoupon {
	c := &billingv1alpha1.StripeCoupon{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: billingv1alpha1.StripeCouponSpec{Name: "Coupon " + name, PercentOff: "25", Duration: billingv1alpha1.CouponDurationForever,
			Metadata: billingv1alpha1.Metadata{"team": "growth"}}}
	if mutate != nil {
		mutate(&c.Spec)
	}
	return c
}

// promotionCodes lists the Stripe promotion codes of a coupon.
func (h *harness) promotionCodes(couponID string) []*stripe.PromotionCode {
	h.t.Helper()
	codes, err := h.stripe.ListPromotionCodes(context.Background(), couponID, "", false)
	NewWithT(h.t).Expect(err).NotTo(HaveOccurred())
	return codes
}

// TestCouponLifecycle: a StripeCoupon makes one Stripe coupon with its
// identity and its promotion codes; a new name is written in place; new
// terms make a new coupon, keep the old one (previousCouponIDs) and move
// the codes (deactivated on the old coupon, made again on the new one); a
// changed restriction replaces just that code; deletion deactivates the
// codes and deletes the coupons.
func TestCouponLifecycle(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := startHarness(t, harnessOptions{})
	c := newCoupon("launch", func(s *billingv1alpha1.StripeCouponSpec) {
		s.PromotionCodes = []billingv1alpha1.PromotionCodeSpec{{Code: "LAUNCH25"},
			{Code: "FIRST", Restrictions: &billingv1alpha1.PromotionCodeRestrictions{FirstTimeTransaction: true}}}
	})
	h.create(c)
	h.waitReady(c)
	first := c.Status.CouponID
	sc, err := h.stripe.GetCoupon(ctx, first)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sc.PercentOff).To(Equal("25"))
	g.Expect(sc.Metadata).To(HaveKeyWithValue(billingv1alpha1.StripeMetadataName, "launch"))
	g.Expect(h.promotionCodes(first)).To(HaveLen(2))
	g.Expect(c.Status.PromotionCodes).To(HaveLen(2))

	// Name: in place.
	h.update(c, func() { c.Spec.Name = "Launch week" })
	h.waitReady(c)
	g.Expect(c.Status.CouponID).To(Equal(first))
	sc, _ = h.stripe.GetCoupon(ctx, first)
	g.Expect(sc.Name).To(Equal("Launch week"))

	// Terms: a new coupon; the codes move.
	h.update(c, func() { c.Spec.PercentOff = "30" })
	h.waitReady(c)
	second := c.Status.CouponID
	g.Expect(second).NotTo(Equal(first))
	g.Expect(c.Status.PreviousCouponIDs).To(Equal([]string{first}))
	_, err = h.stripe.GetCoupon(ctx, first)
	g.Expect(err).NotTo(HaveOccurred(), "the old coupon is kept for its subscribers")
	for _, pc := range h.promotionCodes(first) {
		g.Expect(pc.Active).To(BeFalse(), "code %s left on the old coupon", pc.Code)
	}
	moved := h.promotionCodes(second)
	g.Expect(moved).To(HaveLen(2))
	for _, pc := range moved {
		g.Expect(pc.Active).To(BeTrue())
		if pc.Code == "FIRST" {
			g.Expect(pc.FirstTimeTransaction).To(BeTrue())
		}
	}
	h.waitEvent("CouponRolledOver")

	// A code's restriction changes: that code is replaced on the same coupon.
	h.update(c, func() { c.Spec.PromotionCodes[0].MaxRedemptions = i64p(5) })
	h.waitReady(c)
	g.Expect(c.Status.CouponID).To(Equal(second))
	var active []*stripe.PromotionCode
	for _, pc := range h.promotionCodes(second) {
		if pc.Active {
			active = append(active, pc)
		}
	}
	g.Expect(active).To(HaveLen(2))
	for _, pc := range active {
		if pc.Code == "LAUNCH25" {
			g.Expect(pc.MaxRedemptions).To(Equal(int64(5)))
		}
	}

	// Deletion: codes off, coupons deleted.
	h.delete(c)
	h.waitGone(c)
	for _, id := range []string{first, second} {
		_, err := h.stripe.GetCoupon(ctx, id)
		g.Expect(stripe.IsNotFound(err)).To(BeTrue(), "coupon %s deleted", id)
		for _, pc := range h.promotionCodes(id) {
			g.Expect(pc.Active).To(BeFalse())
		}
	}
}
