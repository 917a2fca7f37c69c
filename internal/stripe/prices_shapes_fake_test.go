package stripe_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// TestFakeBillsPriceShapes: the test-mode Stripe bills each price shape
// as Stripe documents it (see stripefake/price_terms.go): the first
// invoice of a subscription at the given quantity.
func TestFakeBillsPriceShapes(t *testing.T) {
	ctx := context.Background()
	tiers := []stripe.PriceTier{{UpTo: 5, UnitAmount: i64(1000)}, {UpTo: 20, UnitAmount: i64(800), FlatAmount: i64(500)}, {UnitAmountDecimal: "600.5", FlatAmount: i64(1000)}}
	tests := []struct {
		name     string
		terms    stripe.PriceTerms
		unit     int64
		qty      int64
		currency string // the customer's currency, "" for none
		want     int64
		wantCur  string
	}{
		{name: "per unit", unit: 2000, qty: 3, want: 6000},
		{name: "graduated into tier 2", terms: stripe.PriceTerms{BillingScheme: "tiered", TiersMode: "graduated", Tiers: tiers}, qty: 7, want: 5000 + 1600 + 500},
		{name: "graduated into the last tier (decimal)", terms: stripe.PriceTerms{BillingScheme: "tiered", TiersMode: "graduated", Tiers: tiers}, qty: 21, want: 5000 + 12000 + 500 + 601 + 1000},
		{name: "volume", terms: stripe.PriceTerms{BillingScheme: "tiered", TiersMode: "volume", Tiers: tiers}, qty: 7, want: 500 + 5600},
		{name: "volume last tier, rounded half up", terms: stripe.PriceTerms{BillingScheme: "tiered", TiersMode: "volume", Tiers: tiers}, qty: 25, want: 16013},
		{name: "decimal, Stripe's example 0.05 x 30", terms: stripe.PriceTerms{UnitAmountDecimal: "0.05"}, qty: 30, want: 2},
		{name: "transform up", terms: stripe.PriceTerms{TransformDivideBy: 10, TransformRound: "up"}, unit: 2500, qty: 21, want: 7500},
		{name: "transform down", terms: stripe.PriceTerms{TransformDivideBy: 10, TransformRound: "down"}, unit: 2500, qty: 21, want: 5000},
		{name: "currency option picked by the customer's currency", terms: stripe.PriceTerms{CurrencyOptions: map[string]stripe.CurrencyOption{"eur": {UnitAmount: i64(1800)}}},
			unit: 2000, qty: 2, currency: "eur", want: 3600, wantCur: "eur"},
		{name: "metered bills nothing up front", terms: stripe.PriceTerms{UsageType: "metered", UnitAmountDecimal: "0.2"}, qty: 0, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
			c, err := stripe.New(stripe.Config{APIKey: testKey, BaseURL: fake.URL(), RateLimit: 1000})
			g.Expect(err).NotTo(HaveOccurred())
			cus, err := c.CreateCustomer(ctx, owner, stripe.NewIntent(), stripe.CustomerParams{Email: str("a@example.com")})
			g.Expect(err).NotTo(HaveOccurred())
			_, err = c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)
			g.Expect(err).NotTo(HaveOccurred())
			if tt.currency != "" {
				g.Expect(fake.SetCustomerCurrency(cus.ID, tt.currency)).To(Succeed())
			}
			prod, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("P")})
			g.Expect(err).NotTo(HaveOccurred())
			p, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "usd", UnitAmount: tt.unit, Interval: "month", PriceTerms: tt.terms})
			g.Expect(err).NotTo(HaveOccurred())
			sub, err := c.CreateSubscription(ctx, owner, stripe.NewIntent(), stripe.SubscriptionCreateParams{CustomerID: cus.ID,
				Items: []stripe.SubscriptionItemParams{{PriceID: p.ID, Quantity: tt.qty}}})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(sub.LatestInvoice.AmountDue).To(Equal(tt.want))
			cur := tt.wantCur
			if cur == "" {
				cur = "usd"
			}
			g.Expect(sub.LatestInvoice.Currency).To(Equal(cur))
			g.Expect(sub.Currency).To(Equal(cur))
		})
	}
}

// TestFakeMeteredPriceItems: a quantity on a metered item is refused as Stripe
// refuses it; reported usage is aggregated and billed at the renewal.
func TestFakeMeteredPriceItems(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	c, err := stripe.New(stripe.Config{APIKey: testKey, BaseURL: fake.URL(), RateLimit: 1000})
	g.Expect(err).NotTo(HaveOccurred())
	cus, err := c.CreateCustomer(ctx, owner, stripe.NewIntent(), stripe.CustomerParams{Email: str("a@example.com")})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)
	g.Expect(err).NotTo(HaveOccurred())
	prod, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("Calls")})
	g.Expect(err).NotTo(HaveOccurred())
	for _, tc := range []struct {
		agg  string
		want int64
	}{{"sum", 250 * 2}, {"max", 150 * 2}, {"last_during_period", 100 * 2}} {
		p, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "usd", Interval: "month",
			PriceTerms: stripe.PriceTerms{UnitAmountDecimal: "2", UsageType: "metered", AggregateUsage: tc.agg}})
		g.Expect(err).NotTo(HaveOccurred())
		_, err = c.CreateSubscription(ctx, owner, stripe.NewIntent(), stripe.SubscriptionCreateParams{CustomerID: cus.ID,
			Items: []stripe.SubscriptionItemParams{{PriceID: p.ID, Quantity: 1}}})
		g.Expect(err).To(MatchError(ContainSubstring("Quantity should not be specified where usage_type is `metered`")), tc.agg)
		sub, err := c.CreateSubscription(ctx, owner, stripe.NewIntent(), stripe.SubscriptionCreateParams{CustomerID: cus.ID,
			Items: []stripe.SubscriptionItemParams{{PriceID: p.ID}}})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(sub.Items[0].Quantity).To(BeZero())
		for _, q := range []int64{150, 100} {
			g.Expect(fake.ReportUsage(sub.Items[0].ID, q, "increment")).To(Succeed())
			fake.AdvanceClock(time.Hour)
		}
		fake.AdvanceClock(31 * 24 * time.Hour)
		got, err := c.GetSubscription(ctx, sub.ID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.LatestInvoice.BillingReason).To(Equal("subscription_cycle"))
		g.Expect(got.LatestInvoice.Lines[0].Amount).To(Equal(tc.want), tc.agg)
	}
}
