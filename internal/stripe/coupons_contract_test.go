package stripe_test

import (
	"context"
	"testing"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// The coupon request shapes (coupons, promotion codes, a subscription's
// coupon, promotion_code and discount removal), sent to stripe-mock and to
// the fake like the main contract suite.

type couponContractState struct {
	// mock: the server is stripe-mock, whose OpenAPI description is newer
	// than 2023-10-16: it requires promotion[coupon] (API 2025-09-30)
	// where 2023-10-16 takes coupon, and it no longer knows a
	// subscription's coupon and promotion_code parameters (replaced by
	// discounts in 2025-03-31), both documented at 2023-10-16
	// (https://docs.stripe.com/api/subscriptions/create?api-version=2023-10-16).
	// Those two shapes are checked against the fake only; the rest of the
	// steps run on both.
	mock                           bool
	customer, product, price, sub  string
	percent, amount, promo, promo2 string
}

var couponContractSteps = []struct {
	name string
	run  func(ctx context.Context, c *stripe.Client, st *couponContractState) error
}{
	{"customer, product, price", func(ctx context.Context, c *stripe.Client, st *couponContractState) error {
		cus, err := c.CreateCustomer(ctx, owner, stripe.NewIntent(), stripe.CustomerParams{Email: str("a@example.com")})
		if err != nil {
			return err
		}
		st.customer = cus.ID
		pm, err := c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)
		if err != nil {
			return err
		}
		if _, err := c.UpdateCustomer(ctx, owner, cus.ID, stripe.CustomerParams{DefaultPaymentMethod: &pm}); err != nil {
			return err
		}
		p, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("Pro")})
		if err != nil {
			return err
		}
		st.product = p.ID
		pr, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: p.ID, Currency: "usd", UnitAmount: 2000, Interval: "month", IntervalCount: 1})
		if err == nil {
			st.price = pr.ID
		}
		return err
	}},
	{"create coupons (percent with limits and products; amount with currency options, repeating)", func(ctx context.Context, c *stripe.Client, st *couponContractState) error {
		cp, err := c.CreateCoupon(ctx, owner, stripe.NewIntent(), stripe.CouponCreateParams{Name: "Launch", PercentOff: "12.5", Duration: "forever",
			MaxRedemptions: 100, RedeemBy: time.Now().Add(30 * 24 * time.Hour).Unix(), AppliesToProducts: []string{st.product}, Metadata: map[string]string{"k": "v"}})
		if err != nil {
			return err
		}
		st.percent = cp.ID
		cp, err = c.CreateCoupon(ctx, owner, "", stripe.CouponCreateParams{AmountOff: 500, Currency: "usd", CurrencyOptions: map[string]int64{"eur": 450},
			Duration: "repeating", DurationInMonths: 3})
		if err == nil {
			st.amount = cp.ID
		}
		return err
	}},
	{"get, list and update coupons", func(ctx context.Context, c *stripe.Client, st *couponContractState) error {
		if _, err := c.GetCoupon(ctx, st.percent); err != nil {
			return err
		}
		if _, err := c.ListCoupons(ctx, time.Now().Add(-time.Hour)); err != nil {
			return err
		}
		_, err := c.UpdateCoupon(ctx, owner, st.percent, stripe.CouponUpdateParams{Name: str("Launch 2"), Metadata: map[string]string{"k": ""}})
		return err
	}},
	{"create promotion codes with restrictions", func(ctx context.Context, c *stripe.Client, st *couponContractState) error {
		if st.mock {
			st.promo, st.promo2 = "promo_contract1", "promo_contract2"
			return nil
		}
		p, err := c.CreatePromotionCode(ctx, owner, stripe.PromotionCodeCreateParams{CouponID: st.amount, Code: "WELCOME", Active: true, FirstTimeTransaction: true,
			MinimumAmount: 1000, MinimumAmountCurrency: "usd", ExpiresAt: time.Now().Add(24 * time.Hour).Unix(), MaxRedemptions: 10, Metadata: map[string]string{"k": "v"}})
		if err != nil {
			return err
		}
		st.promo = p.ID
		p, err = c.CreatePromotionCode(ctx, owner, stripe.PromotionCodeCreateParams{CouponID: st.amount, Code: "PARTNER", Active: true})
		if err == nil {
			st.promo2 = p.ID
		}
		return err
	}},
	{"get, list and update promotion codes", func(ctx context.Context, c *stripe.Client, st *couponContractState) error {
		if _, err := c.GetPromotionCode(ctx, st.promo); err != nil {
			return err
		}
		if _, err := c.ListPromotionCodes(ctx, st.amount, "", false); err != nil {
			return err
		}
		if _, err := c.ListPromotionCodes(ctx, "", "WELCOME", true); err != nil {
			return err
		}
		_, err := c.UpdatePromotionCode(ctx, owner, st.promo, stripe.PromotionCodeUpdateParams{Active: bptr(false), Metadata: map[string]string{"k": "w"}})
		return err
	}},
	{"subscription with a coupon, then a promotion code, then no discount", func(ctx context.Context, c *stripe.Client, st *couponContractState) error {
		coupon := st.percent
		if st.mock {
			coupon = ""
		}
		s, err := c.CreateSubscription(ctx, owner, stripe.NewIntent(), stripe.SubscriptionCreateParams{CustomerID: st.customer,
			Items: []stripe.SubscriptionItemParams{{PriceID: st.price, Quantity: 1}}, Coupon: coupon})
		if err != nil {
			return err
		}
		st.sub = s.ID
		if st.mock {
			return c.DeleteSubscriptionDiscount(ctx, owner, st.sub)
		}
		if _, err := c.UpdateSubscription(ctx, owner, st.sub, stripe.SubscriptionUpdateParams{PromotionCode: str(st.promo2)}); err != nil {
			return err
		}
		return c.DeleteSubscriptionDiscount(ctx, owner, st.sub)
	}},
	{"delete coupon", func(ctx context.Context, c *stripe.Client, st *couponContractState) error {
		return c.DeleteCoupon(ctx, owner, st.percent)
	}},
}

func runCouponContract(t *testing.T, baseURL string, mock bool) {
	c, err := stripe.New(stripe.Config{APIKey: testKey, BaseURL: baseURL, RateLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	st := &couponContractState{mock: mock}
	for _, step := range couponContractSteps {
		if err := step.run(context.Background(), c, st); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
}

func TestCouponContractStripeMock(t *testing.T) {
	runCouponContract(t, startStripeMock(t), true)
}

func TestCouponContractFake(t *testing.T) {
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	runCouponContract(t, fake.URL(), false)
}
