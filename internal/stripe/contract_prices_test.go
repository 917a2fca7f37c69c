package stripe_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// The request shapes of the price shapes (issue 21), sent to stripe-mock
// (Stripe's OpenAPI description validates every parameter) and to the
// fake: tiered prices (graduated and volume, integer and decimal tiers),
// unit_amount_decimal, transform_quantity, metered prices with
// aggregate_usage, currency_options (per-unit and tiered), tax_behavior;
// reads expanding tiers and currency_options; subscriptions with a metered
// item sent without a quantity.

type priceShape struct {
	name   string
	params stripe.PriceCreateParams
}

func priceShapes(product string) []priceShape {
	base := func(t stripe.PriceTerms) stripe.PriceCreateParams {
		return stripe.PriceCreateParams{ProductID: product, Currency: "usd", Interval: "month", IntervalCount: 1, PriceTerms: t}
	}
	tiers := []stripe.PriceTier{{UpTo: 5, UnitAmount: i64(1000)}, {UpTo: 20, UnitAmountDecimal: "800.5", FlatAmount: i64(500)}, {UnitAmount: i64(600), FlatAmountDecimal: "100.25"}}
	withAmount := func(p stripe.PriceCreateParams, amount int64) stripe.PriceCreateParams {
		p.UnitAmount = amount
		return p
	}
	return []priceShape{
		{"graduated tiers", base(stripe.PriceTerms{BillingScheme: "tiered", TiersMode: "graduated", Tiers: tiers})},
		{"volume tiers", base(stripe.PriceTerms{BillingScheme: "tiered", TiersMode: "volume", Tiers: tiers})},
		{"decimal unit amount", base(stripe.PriceTerms{UnitAmountDecimal: "0.05"})},
		{"transform_quantity", withAmount(base(stripe.PriceTerms{TransformDivideBy: 10, TransformRound: "up"}), 2500)},
		{"metered", base(stripe.PriceTerms{UnitAmountDecimal: "0.2", UsageType: "metered", AggregateUsage: "max"})},
		{"currency options", withAmount(base(stripe.PriceTerms{TaxBehavior: "exclusive", CurrencyOptions: map[string]stripe.CurrencyOption{
			"eur": {UnitAmount: i64(1800), TaxBehavior: "exclusive"}, "jpy": {UnitAmountDecimal: "3000"}}}), 2000)},
		{"tiered currency options", base(stripe.PriceTerms{BillingScheme: "tiered", TiersMode: "volume", Tiers: []stripe.PriceTier{{UnitAmount: i64(1000)}},
			CurrencyOptions: map[string]stripe.CurrencyOption{"eur": {Tiers: []stripe.PriceTier{{UnitAmount: i64(900)}}}}})},
		{"tax behavior inclusive", withAmount(base(stripe.PriceTerms{TaxBehavior: "inclusive"}), 1000)},
	}
}

func runPriceShapesContract(t *testing.T, baseURL string, fake bool) {
	ctx := context.Background()
	c, err := stripe.New(stripe.Config{APIKey: testKey, BaseURL: baseURL, RateLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	cus, err := c.CreateCustomer(ctx, owner, stripe.NewIntent(), stripe.CustomerParams{Email: str("shapes@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID); err != nil {
		t.Fatal(err)
	}
	prod, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("Shapes")})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, s := range priceShapes(prod.ID) {
		p, err := c.CreatePrice(ctx, owner, s.params)
		if err != nil {
			t.Fatalf("create %s: %v", s.name, err)
		}
		ids[s.name] = p.ID
		got, err := c.GetPrice(ctx, p.ID)
		if err != nil {
			t.Fatalf("get %s: %v", s.name, err)
		}
		if fake {
			// Only the fake answers with what was sent (stripe-mock
			// answers fixtures): the terms read back are the terms sent.
			want := s.params.PriceTerms
			if got.BillingScheme != orStr(want.BillingScheme, "per_unit") || len(got.Tiers) != len(want.Tiers) ||
				got.UnitAmountDecimal != want.UnitAmountDecimal && want.UnitAmountDecimal != "" ||
				got.TransformDivideBy != want.TransformDivideBy || len(got.CurrencyOptions) != len(want.CurrencyOptions) ||
				got.UsageType != orStr(want.UsageType, "licensed") || !got.Complete {
				t.Errorf("%s read back as %+v, sent %+v", s.name, got.PriceTerms, want)
			}
		}
	}
	if _, err := c.ListPrices(ctx, prod.ID, true); err != nil {
		t.Fatal(err)
	}
	// A subscription with a licensed and a metered item: the metered one
	// carries no quantity.
	sub, err := c.CreateSubscription(ctx, owner, stripe.NewIntent(), stripe.SubscriptionCreateParams{CustomerID: cus.ID,
		Items: []stripe.SubscriptionItemParams{{PriceID: ids["graduated tiers"], Quantity: 7}, {PriceID: ids["metered"]}}})
	if err != nil {
		t.Fatalf("create subscription with a metered item: %v", err)
	}
	items := append([]stripe.SubscriptionItem(nil), sub.Items...)
	for len(items) < 2 {
		items = append(items, stripe.SubscriptionItem{ID: fmt.Sprintf("si_shape%d", len(items))})
	}
	if _, err := c.UpdateSubscription(ctx, owner, sub.ID, stripe.SubscriptionUpdateParams{ProrationBehavior: "none",
		Items: []stripe.SubscriptionItemUpdate{{ID: items[0].ID, PriceID: ids["volume tiers"], Quantity: 12}, {ID: items[1].ID, PriceID: ids["metered"]}}}); err != nil {
		t.Fatalf("update a subscription with a metered item: %v", err)
	}
}

func orStr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func TestContractPriceShapesStripeMock(t *testing.T) {
	runPriceShapesContract(t, startStripeMock(t), false)
}

func TestContractPriceShapesFake(t *testing.T) {
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	runPriceShapesContract(t, fake.URL(), true)
}
