package controllers

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/intstr"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

func i64p(v int64) *int64 { return &v }

// TestPriceTermsDiff: every term of a price is compared, unset spec fields
// compare as Stripe's defaults (a price made before these fields existed
// is not rolled over), and equal amounts written as integer or decimal
// are the same term.
func TestPriceTermsDiff(t *testing.T) {
	flat := &stripe.Price{Currency: "usd", UnitAmount: 2000, Interval: "month", IntervalCount: 1,
		PriceTerms: stripe.PriceTerms{BillingScheme: "per_unit", UnitAmountDecimal: "2000", UsageType: "licensed", TaxBehavior: "unspecified"}}
	tiered := &stripe.Price{Currency: "usd", Interval: "month", IntervalCount: 1, PriceTerms: stripe.PriceTerms{BillingScheme: "tiered", TiersMode: "volume", UsageType: "licensed",
		Tiers: []stripe.PriceTier{{UpTo: 5, UnitAmount: i64p(1000), UnitAmountDecimal: "1000"}, {UnitAmountDecimal: "800.5"}}}}
	base := func() billingv1alpha1.PriceSpec {
		return billingv1alpha1.PriceSpec{Currency: "usd", UnitAmount: 2000, Interval: "month", IntervalCount: 1}
	}
	tieredSpec := func() billingv1alpha1.PriceSpec {
		return billingv1alpha1.PriceSpec{Currency: "usd", Interval: "month", BillingScheme: "tiered", TiersMode: "volume", Tiers: []billingv1alpha1.PriceTier{
			{UpTo: intstr.FromInt32(5), UnitAmount: i64p(1000)}, {UpTo: intstr.FromString("inf"), UnitAmountDecimal: "800.50"}}}
	}
	tests := []struct {
		name  string
		price *stripe.Price
		spec  func() billingv1alpha1.PriceSpec
		want  []string
	}{
		{"same (defaults as Stripe's)", flat, base, nil},
		{"same amount as a decimal", flat, func() billingv1alpha1.PriceSpec {
			s := base()
			s.UnitAmount = 0
			s.UnitAmountDecimal = "2000.0"
			return s
		}, nil},
		{"amount", flat, func() billingv1alpha1.PriceSpec { s := base(); s.UnitAmount = 2500; return s }, []string{"unitAmount"}},
		{"decimal amount", flat, func() billingv1alpha1.PriceSpec {
			s := base()
			s.UnitAmount = 0
			s.UnitAmountDecimal = "1999.5"
			return s
		}, []string{"unitAmountDecimal"}},
		{"interval and currency", flat, func() billingv1alpha1.PriceSpec { s := base(); s.Interval = "year"; s.Currency = "eur"; return s }, []string{"currency", "interval"}},
		{"transform", flat, func() billingv1alpha1.PriceSpec {
			s := base()
			s.TransformQuantity = &billingv1alpha1.TransformQuantity{DivideBy: 10, Round: "up"}
			return s
		}, []string{"transformQuantity"}},
		{"metered", flat, func() billingv1alpha1.PriceSpec { s := base(); s.UsageType = "metered"; return s }, []string{"usageType"}},
		{"tax behavior", flat, func() billingv1alpha1.PriceSpec { s := base(); s.TaxBehavior = "exclusive"; return s }, []string{"taxBehavior"}},
		{"currency options", flat, func() billingv1alpha1.PriceSpec {
			s := base()
			s.CurrencyOptions = []billingv1alpha1.CurrencyOption{{Currency: "eur", UnitAmount: i64p(1800)}}
			return s
		}, []string{"currencyOptions"}},
		{"to tiered", flat, tieredSpec, []string{"billingScheme", "tiersMode", "tiers"}},
		{"tiered same", tiered, tieredSpec, nil},
		{"tiers mode", tiered, func() billingv1alpha1.PriceSpec { s := tieredSpec(); s.TiersMode = "graduated"; return s }, []string{"tiersMode"}},
		{"tier amount", tiered, func() billingv1alpha1.PriceSpec { s := tieredSpec(); s.Tiers[1].UnitAmountDecimal = "800.4"; return s }, []string{"tiers"}},
		{"tier bound", tiered, func() billingv1alpha1.PriceSpec { s := tieredSpec(); s.Tiers[0].UpTo = intstr.FromInt32(6); return s }, []string{"tiers"}},
		{"tier flat", tiered, func() billingv1alpha1.PriceSpec { s := tieredSpec(); s.Tiers[0].FlatAmount = i64p(100); return s }, []string{"tiers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec()
			NewWithT(t).Expect(priceTermsDiff(tt.price, &spec)).To(Equal(tt.want))
		})
	}
}

// TestPlanEventsSayWhatHappened: a new plan's first pass says it created
// the product and the price, never that it updated the product's price;
// a change of tiers rolls the price over and says so.
func TestPlanEventsSayWhatHappened(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{})
	plan := newPlan("seats", 0, func(s *billingv1alpha1.StripePlanSpec) {
		s.Price = billingv1alpha1.PriceSpec{Currency: "usd", Interval: "month", LookupKey: "seats", BillingScheme: "tiered", TiersMode: "graduated",
			Tiers: []billingv1alpha1.PriceTier{{UpTo: intstr.FromInt32(5), UnitAmount: i64p(1000)}, {UpTo: intstr.FromString("inf"), UnitAmountDecimal: "800.5"}}}
	})
	h.create(plan)
	h.waitReady(plan)
	first := plan.Status.PriceID
	pr := h.stripePrice(first)
	g.Expect(pr.BillingScheme).To(Equal("tiered"))
	g.Expect(pr.Tiers).To(HaveLen(2))
	g.Expect(pr.Tiers[1].UnitAmountDecimal).To(Equal("800.5"))
	h.waitEvent("Created Stripe price " + first)
	for _, e := range h.events() {
		g.Expect(e).NotTo(ContainSubstring("Updated Stripe product"), "the first pass created, it did not update")
	}

	h.update(plan, func() { plan.Spec.Price.Tiers[1].UnitAmountDecimal = "750" })
	g.Eventually(func() string { h.get(plan); return plan.Status.PriceID }, 20*time.Second).ShouldNot(Equal(first))
	h.waitReady(plan)
	h.waitEvent("PriceRolledOver")
	g.Expect(h.stripePrice(first).Active).To(BeFalse())
	g.Expect(h.stripePrice(plan.Status.PriceID).LookupKey).To(Equal("seats"))
	g.Expect(plan.Status.PreviousPriceIDs).To(Equal([]string{first}))
	for _, e := range h.events() {
		g.Expect(strings.Contains(e, "Updated Stripe product")).To(BeFalse(), "a rollover is told as one: %s", e)
	}
}
