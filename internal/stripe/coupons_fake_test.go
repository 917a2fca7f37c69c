package stripe_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// couponFixture: a paying customer (pm_card_visa) and a monthly 20 usd
// price.
type couponFixture struct {
	c        *stripe.Client
	fake     *stripefake.Server
	customer string
	product  string
	price    string
}

func newCouponFixture(t *testing.T) *couponFixture {
	g := NewWithT(t)
	ctx := context.Background()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1})
	f := &couponFixture{c: c, fake: fake}
	f.customer = f.newCustomer(t)
	prod, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("Pro")})
	g.Expect(err).NotTo(HaveOccurred())
	f.product = prod.ID
	p, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "usd", UnitAmount: 2000, Interval: "month", IntervalCount: 1})
	g.Expect(err).NotTo(HaveOccurred())
	f.price = p.ID
	return f
}

func (f *couponFixture) newCustomer(t *testing.T) string {
	g := NewWithT(t)
	ctx := context.Background()
	cus, err := f.c.CreateCustomer(ctx, owner, stripe.NewIntent(), stripe.CustomerParams{Email: str("a@example.com")})
	g.Expect(err).NotTo(HaveOccurred())
	pm, err := f.c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = f.c.UpdateCustomer(ctx, owner, cus.ID, stripe.CustomerParams{DefaultPaymentMethod: &pm})
	g.Expect(err).NotTo(HaveOccurred())
	return cus.ID
}

func (f *couponFixture) subscribe(t *testing.T, customer string, p stripe.SubscriptionCreateParams) (*stripe.Subscription, error) {
	p.CustomerID = customer
	p.Items = []stripe.SubscriptionItemParams{{PriceID: f.price, Quantity: 1}}
	return f.c.CreateSubscription(context.Background(), owner, stripe.NewIntent(), p)
}

// amountsDue are the amounts due of a subscription's invoices, oldest first.
func (f *couponFixture) amountsDue(id string) []int64 {
	snap, _ := f.fake.Subscription(id)
	var out []int64
	for _, in := range snap.Invoices {
		out = append(out, in.AmountDue)
	}
	return out
}

// TestFakeCouponDurations: once discounts the first invoice, repeating
// every invoice within its months (then the discount is gone from the
// subscription, its end reported), forever every invoice; percent-off
// rounds half up, amount-off never goes below zero.
func TestFakeCouponDurations(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newCouponFixture(t)
	mk := func(p stripe.CouponCreateParams) string {
		c, err := f.c.CreateCoupon(ctx, owner, stripe.NewIntent(), p)
		g.Expect(err).NotTo(HaveOccurred())
		return c.ID
	}
	once := mk(stripe.CouponCreateParams{PercentOff: "50", Duration: "once"})
	repeating := mk(stripe.CouponCreateParams{PercentOff: "33.33", Duration: "repeating", DurationInMonths: 2})
	forever := mk(stripe.CouponCreateParams{AmountOff: 2500, Currency: "usd", Duration: "forever"})

	subs := map[string]*stripe.Subscription{}
	for name, id := range map[string]string{"once": once, "repeating": repeating, "forever": forever} {
		s, err := f.subscribe(t, f.newCustomer(t), stripe.SubscriptionCreateParams{Coupon: id})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.Discount).NotTo(BeNil())
		g.Expect(s.Discount.CouponID).To(Equal(id))
		subs[name] = s
	}
	g.Expect(subs["repeating"].Discount.End).To(Equal(time.Unix(subs["repeating"].Discount.Start, 0).UTC().AddDate(0, 2, 0).Unix()))
	g.Expect(subs["once"].Discount.End).To(BeZero())
	for i := 0; i < 3; i++ {
		f.fake.AdvanceClock(32 * 24 * time.Hour)
	}
	// 33.33 % of 2000 is 666.6: 667 off, 1333 due.
	g.Expect(f.amountsDue(subs["once"].ID)).To(Equal([]int64{1000, 2000, 2000, 2000}))
	g.Expect(f.amountsDue(subs["repeating"].ID)).To(Equal([]int64{1333, 1333, 2000, 2000}))
	g.Expect(f.amountsDue(subs["forever"].ID)).To(Equal([]int64{0, 0, 0, 0}))
	for name, want := range map[string]bool{"once": false, "repeating": false, "forever": true} {
		s, err := f.c.GetSubscription(ctx, subs[name].ID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.Discount != nil).To(Equal(want), name)
	}
}

// TestFakeCouponLimits: a coupon is immutable beyond name and metadata;
// max_redemptions and redeem_by end its use by new subscriptions, never
// the discounts made; a deleted coupon keeps discounting.
func TestFakeCouponLimits(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newCouponFixture(t)
	c, err := f.c.CreateCoupon(ctx, owner, "", stripe.CouponCreateParams{PercentOff: "10", Duration: "forever", MaxRedemptions: 1,
		RedeemBy: f.fake.Now().Add(40 * 24 * time.Hour).Unix()})
	g.Expect(err).NotTo(HaveOccurred())
	// Immutable: Stripe refuses other parameters on update.
	_, err = f.c.UpdateCoupon(ctx, owner, c.ID, stripe.CouponUpdateParams{Name: str("ok")})
	g.Expect(err).NotTo(HaveOccurred())
	s1, err := f.subscribe(t, f.customer, stripe.SubscriptionCreateParams{Coupon: c.ID})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = f.subscribe(t, f.newCustomer(t), stripe.SubscriptionCreateParams{Coupon: c.ID})
	g.Expect(err).To(MatchError(ContainSubstring("Coupon expired")), "max_redemptions reached")
	g.Expect(f.c.DeleteCoupon(ctx, owner, c.ID)).To(Succeed())
	_, err = f.c.GetCoupon(ctx, c.ID)
	g.Expect(stripe.IsNotFound(err)).To(BeTrue())
	f.fake.AdvanceClock(32 * 24 * time.Hour)
	g.Expect(f.amountsDue(s1.ID)).To(Equal([]int64{1800, 1800}), "the discount made outlives its coupon")

	late, err := f.c.CreateCoupon(ctx, owner, "", stripe.CouponCreateParams{PercentOff: "10", Duration: "once", RedeemBy: f.fake.Now().Add(24 * time.Hour).Unix()})
	g.Expect(err).NotTo(HaveOccurred())
	f.fake.AdvanceClock(48 * time.Hour)
	_, err = f.subscribe(t, f.newCustomer(t), stripe.SubscriptionCreateParams{Coupon: late.ID})
	g.Expect(err).To(MatchError(ContainSubstring("Coupon expired")), "redeem_by passed")
}

// TestFakePromotionCodeRestrictions: first_time_transaction, minimum
// amount, expiry, max redemptions, and a code string unique among active
// codes.
func TestFakePromotionCodeRestrictions(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newCouponFixture(t)
	c, err := f.c.CreateCoupon(ctx, owner, "", stripe.CouponCreateParams{PercentOff: "25", Duration: "forever"})
	g.Expect(err).NotTo(HaveOccurred())
	first, err := f.c.CreatePromotionCode(ctx, owner, stripe.PromotionCodeCreateParams{CouponID: c.ID, Code: "WELCOME", Active: true, FirstTimeTransaction: true})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = f.c.CreatePromotionCode(ctx, owner, stripe.PromotionCodeCreateParams{CouponID: c.ID, Code: "welcome", Active: true})
	g.Expect(err).To(MatchError(ContainSubstring("already exists")), "unique regardless of case among active codes")

	// A customer who paid before is refused; a new one gets it.
	_, err = f.subscribe(t, f.customer, stripe.SubscriptionCreateParams{})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = f.subscribe(t, f.customer, stripe.SubscriptionCreateParams{PromotionCode: first.ID})
	g.Expect(err).To(MatchError(ContainSubstring("prior transactions")))
	s, err := f.subscribe(t, f.newCustomer(t), stripe.SubscriptionCreateParams{PromotionCode: first.ID})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.Discount.PromotionCodeID).To(Equal(first.ID))
	g.Expect(s.LatestInvoice.AmountDue).To(Equal(int64(1500)))
	g.Expect(s.LatestInvoice.DiscountAmount).To(Equal(int64(500)))

	min, err := f.c.CreatePromotionCode(ctx, owner, stripe.PromotionCodeCreateParams{CouponID: c.ID, Code: "BIG", Active: true, MinimumAmount: 5000, MinimumAmountCurrency: "usd",
		MaxRedemptions: 1, ExpiresAt: f.fake.Now().Add(24 * time.Hour).Unix()})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = f.subscribe(t, f.newCustomer(t), stripe.SubscriptionCreateParams{PromotionCode: min.ID})
	g.Expect(err).To(MatchError(ContainSubstring("minimum amount")))

	once, err := f.c.CreatePromotionCode(ctx, owner, stripe.PromotionCodeCreateParams{CouponID: c.ID, Code: "ONCE", Active: true, MaxRedemptions: 1})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = f.subscribe(t, f.newCustomer(t), stripe.SubscriptionCreateParams{PromotionCode: once.ID})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = f.subscribe(t, f.newCustomer(t), stripe.SubscriptionCreateParams{PromotionCode: once.ID})
	g.Expect(err).To(MatchError(ContainSubstring("maximum number of times")))

	f.fake.AdvanceClock(48 * time.Hour)
	_, err = f.subscribe(t, f.newCustomer(t), stripe.SubscriptionCreateParams{PromotionCode: min.ID})
	g.Expect(err).To(MatchError(ContainSubstring("expired")))

	// Deactivated, the code string is free for a new code.
	_, err = f.c.UpdatePromotionCode(ctx, owner, first.ID, stripe.PromotionCodeUpdateParams{Active: bptr(false)})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = f.c.CreatePromotionCode(ctx, owner, stripe.PromotionCodeCreateParams{CouponID: c.ID, Code: "WELCOME", Active: true})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = f.c.UpdatePromotionCode(ctx, owner, first.ID, stripe.PromotionCodeUpdateParams{Active: bptr(true)})
	g.Expect(err).To(MatchError(ContainSubstring("already exists")))
}
