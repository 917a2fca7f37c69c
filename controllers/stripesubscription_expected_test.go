package controllers

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/stripe-operator/stripe-operator/internal/billing"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// TestDriftPriceShapes: a full-period invoice of tiered, decimal,
// transformed, currency-option and metered items is compared with the
// exact expected amount: no false drift when Stripe bills what the terms
// say, and a message naming the item, the field, Stripe's value and the
// declared one when it does not.
func TestDriftPriceShapes(t *testing.T) {
	tiered := &stripe.Price{ID: "price_t", Currency: "usd", PriceTerms: stripe.PriceTerms{BillingScheme: "tiered", TiersMode: "volume",
		Tiers: []stripe.PriceTier{{UpTo: 5, UnitAmount: i64p(1000)}, {UnitAmountDecimal: "800.5"}}, CurrencyOptions: map[string]stripe.CurrencyOption{
			"eur": {Tiers: []stripe.PriceTier{{UpTo: 5, UnitAmount: i64p(900)}, {UnitAmount: i64p(700)}}}}}}
	decimal := &stripe.Price{ID: "price_d", Currency: "usd", PriceTerms: stripe.PriceTerms{BillingScheme: "per_unit", UnitAmountDecimal: "0.05"}}
	packs := &stripe.Price{ID: "price_p", Currency: "usd", UnitAmount: 2500, PriceTerms: stripe.PriceTerms{UnitAmountDecimal: "2500", TransformDivideBy: 10, TransformRound: "up"}}
	metered := &stripe.Price{ID: "price_m", Currency: "usd", PriceTerms: stripe.PriceTerms{UnitAmountDecimal: "0.2", UsageType: billing.UsageMetered}}
	desired := []desiredItem{
		{PriceID: "price_t", Quantity: 7, Currency: "usd", Price: tiered},
		{PriceID: "price_d", Quantity: 30, Currency: "usd", Price: decimal},
		{PriceID: "price_p", Quantity: 21, Currency: "usd", Price: packs},
		{PriceID: "price_m", Quantity: 0, Currency: "usd", Price: metered},
	}
	// 7 x 800.5 = 5603.5 -> 5604; 0.05 x 30 = 1.5 -> 2; 3 packs = 7500.
	expected := expectedAmount(desired)
	NewWithT(t).Expect(expected.Amount).To(Equal(int64(5604 + 2 + 7500)))
	inv := func(cur string, amounts ...int64) *stripe.Subscription {
		lines := []stripe.InvoiceLine{{PriceID: "price_t", Quantity: 7, Amount: amounts[0]}, {PriceID: "price_d", Quantity: 30, Amount: amounts[1]},
			{PriceID: "price_p", Quantity: 21, Amount: amounts[2]}, {PriceID: "price_m", Quantity: 1000, Amount: amounts[3]}}
		due := amounts[0] + amounts[1] + amounts[2] + amounts[3]
		return &stripe.Subscription{Status: "active", LatestInvoice: &stripe.Invoice{ID: "in_1", Currency: cur, BillingReason: "subscription_cycle", AmountDue: due, Lines: lines}}
	}
	tests := []struct {
		name      string
		sub       *stripe.Subscription
		wantDrift []string
		wantNote  []string
	}{
		{"billed as the terms say", inv("usd", 5604, 2, 7500, 200), nil, []string{"compared without the metered usage of item 4 (2.00 USD billed"}},
		{"the eur currency option", func() *stripe.Subscription {
			// 7 x 7.00 = 49.00 EUR on the option's tiers; the other items have no eur option.
			s := inv("eur", 4900, 2, 7500, 0)
			s.LatestInvoice.Lines = s.LatestInvoice.Lines[:1]
			return s
		}(), nil, nil},
		{"a tier billed otherwise", inv("usd", 5600, 2, 7500, 200), []string{"item 1 (price_t, quantity 7) amount is 56.00 USD in Stripe, 56.04 USD declared (volume tiers at quantity 7, exactly 5603.5 before rounding)"}, nil},
		{"packages billed per unit", inv("usd", 5604, 2, 52500, 200), []string{"item 3 (price_p, quantity 21) amount is 525.00 USD in Stripe, 75.00 USD declared (unit amount 2500 x 3, packages of 10 rounded up)"}, nil},
		{"a currency none of the prices bills in", inv("gbp", 5604, 2, 7500, 200), []string{"is in GBP, which the declared prices do not bill in"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := desired
			if tt.name == "the eur currency option" {
				d = desired[:1]
			}
			drift, note := invoiceNote(tt.sub, d, expectedAmount(d))
			if tt.wantDrift == nil {
				g.Expect(drift).To(BeEmpty())
			}
			for _, w := range tt.wantDrift {
				g.Expect(drift).To(ContainSubstring(w))
			}
			for _, w := range tt.wantNote {
				g.Expect(note).To(ContainSubstring(w))
			}
		})
	}
}
