package controllers

import (
	"sort"
	"strconv"
	"strings"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// A plan's price terms: what the spec asks Stripe to create, and which
// terms of a Stripe price differ from the spec. Stripe prices are
// immutable, so any term that differs is a price change: a new price, the
// lookup key moved to it, the old one archived (the rollover in
// stripeplan_external.go). The terms are currency, the per-unit amount
// (unitAmount or unitAmountDecimal: equal amounts are the same term),
// billingScheme, tiersMode, tiers, transformQuantity, usageType,
// aggregateUsage, currencyOptions, taxBehavior, interval and
// intervalCount. lookupKey and active are changed in place.

// specDecimal is an amount as a decimal string: the decimal when set, else
// the integer.
func specDecimal(i *int64, d billingv1alpha1.DecimalAmount) string {
	if d != "" {
		return normDecimal(string(d))
	}
	if i != nil {
		return strconv.FormatInt(*i, 10)
	}
	return ""
}

// normDecimal drops trailing zeros of a fraction ("5.50" is "5.5", "5.0"
// is "5").
func normDecimal(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

func specTiers(tiers []billingv1alpha1.PriceTier) []stripe.PriceTier {
	var out []stripe.PriceTier
	for _, t := range tiers {
		st := stripe.PriceTier{UnitAmount: t.UnitAmount, UnitAmountDecimal: normDecimal(string(t.UnitAmountDecimal)),
			FlatAmount: t.FlatAmount, FlatAmountDecimal: normDecimal(string(t.FlatAmountDecimal))}
		if !t.IsInf() {
			st.UpTo = int64(t.UpTo.IntValue())
		}
		out = append(out, st)
	}
	return out
}

// specPriceTerms are the terms to create a price with.
func specPriceTerms(spec *billingv1alpha1.PriceSpec) stripe.PriceTerms {
	t := stripe.PriceTerms{BillingScheme: string(spec.BillingScheme), TiersMode: string(spec.TiersMode),
		UnitAmountDecimal: normDecimal(string(spec.UnitAmountDecimal)), Tiers: specTiers(spec.Tiers),
		UsageType: string(spec.UsageType), AggregateUsage: string(spec.AggregateUsage), TaxBehavior: string(spec.TaxBehavior)}
	if q := spec.TransformQuantity; q != nil {
		t.TransformDivideBy, t.TransformRound = q.DivideBy, q.Round
	}
	for _, o := range spec.CurrencyOptions {
		if t.CurrencyOptions == nil {
			t.CurrencyOptions = map[string]stripe.CurrencyOption{}
		}
		t.CurrencyOptions[o.Currency] = stripe.CurrencyOption{UnitAmount: o.UnitAmount, UnitAmountDecimal: normDecimal(string(o.UnitAmountDecimal)),
			Tiers: specTiers(o.Tiers), TaxBehavior: string(o.TaxBehavior)}
	}
	return t
}

func orDef(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// stripeUnit is a Stripe price's per-unit amount as a decimal string.
func stripeUnit(p *stripe.Price) string {
	if p.UnitAmountDecimal != "" {
		return p.UnitAmountDecimal
	}
	return strconv.FormatInt(p.UnitAmount, 10)
}

func tierDecimal(i *int64, d string) string {
	if d != "" {
		return d
	}
	if i != nil {
		return strconv.FormatInt(*i, 10)
	}
	return ""
}

func tiersEqual(a, b []stripe.PriceTier) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].UpTo != b[i].UpTo ||
			orDef(tierDecimal(a[i].UnitAmount, a[i].UnitAmountDecimal), "0") != orDef(tierDecimal(b[i].UnitAmount, b[i].UnitAmountDecimal), "0") ||
			orDef(tierDecimal(a[i].FlatAmount, a[i].FlatAmountDecimal), "0") != orDef(tierDecimal(b[i].FlatAmount, b[i].FlatAmountDecimal), "0") {
			return false
		}
	}
	return true
}

// priceTermsDiff names the spec's price terms that a Stripe price does not
// have (nil when it has them all). Unset spec fields compare as Stripe's
// defaults (per_unit, licensed, sum for metered, tax behavior unspecified),
// so a price made before these fields existed matches a spec without them.
func priceTermsDiff(p *stripe.Price, spec *billingv1alpha1.PriceSpec) []string {
	var out []string
	add := func(f string) { out = append(out, f) }
	if p.Currency != spec.Currency {
		add("currency")
	}
	count := spec.IntervalCount
	if count == 0 {
		count = 1
	}
	if p.Interval != string(spec.Interval) {
		add("interval")
	}
	if p.IntervalCount != count {
		add("intervalCount")
	}
	want := specPriceTerms(spec)
	scheme := orDef(want.BillingScheme, billing.SchemePerUnit)
	if orDef(p.BillingScheme, billing.SchemePerUnit) != scheme {
		add("billingScheme")
	}
	if scheme == billing.SchemePerUnit {
		if stripeUnit(p) != orDef(specDecimal(&spec.UnitAmount, spec.UnitAmountDecimal), "0") {
			if spec.UnitAmountDecimal != "" {
				add("unitAmountDecimal")
			} else {
				add("unitAmount")
			}
		}
	} else {
		if p.TiersMode != want.TiersMode {
			add("tiersMode")
		}
		if !tiersEqual(p.Tiers, want.Tiers) {
			add("tiers")
		}
	}
	if p.TransformDivideBy != want.TransformDivideBy || (want.TransformDivideBy > 0 && p.TransformRound != want.TransformRound) {
		add("transformQuantity")
	}
	usage := orDef(want.UsageType, billing.UsageLicensed)
	if orDef(p.UsageType, billing.UsageLicensed) != usage {
		add("usageType")
	}
	if usage == billing.UsageMetered && orDef(p.AggregateUsage, "sum") != orDef(want.AggregateUsage, "sum") {
		add("aggregateUsage")
	}
	if orDef(p.TaxBehavior, "unspecified") != orDef(want.TaxBehavior, "unspecified") {
		add("taxBehavior")
	}
	if !currencyOptionsEqual(p.CurrencyOptions, want.CurrencyOptions, scheme) {
		add("currencyOptions")
	}
	return out
}

func currencyOptionsEqual(have, want map[string]stripe.CurrencyOption, scheme string) bool {
	if len(have) != len(want) {
		return false
	}
	for cur, w := range want {
		h, ok := have[cur]
		if !ok {
			return false
		}
		if scheme == billing.SchemeTiered {
			if !tiersEqual(h.Tiers, w.Tiers) {
				return false
			}
		} else if orDef(tierDecimal(h.UnitAmount, h.UnitAmountDecimal), "0") != orDef(tierDecimal(w.UnitAmount, w.UnitAmountDecimal), "0") {
			return false
		}
		if w.TaxBehavior != "" && orDef(h.TaxBehavior, "unspecified") != w.TaxBehavior {
			return false
		}
	}
	return true
}

// priceMatches reports whether a Stripe price has the spec's immutable
// terms.
func priceMatches(p *stripe.Price, spec *billingv1alpha1.PriceSpec) bool {
	return len(priceTermsDiff(p, spec)) == 0
}

// priceChangeText names a price change for status and Events, e.g.
// "price terms (unitAmount, tiers)".
func priceChangeText(fields []string) string {
	return "price terms (" + strings.Join(fields, ", ") + ")"
}

// billingTerms converts a Stripe price into the terms the expected amount
// is computed from.
func billingTerms(p *stripe.Price) billing.PriceTerms {
	t := billing.PriceTerms{Currency: p.Currency, BillingScheme: p.BillingScheme, TiersMode: p.TiersMode,
		TransformDivideBy: p.TransformDivideBy, TransformRound: p.TransformRound, UsageType: p.UsageType}
	if orDef(p.BillingScheme, billing.SchemePerUnit) == billing.SchemePerUnit {
		t.UnitAmount = stripeUnit(p)
	}
	conv := func(tiers []stripe.PriceTier) []billing.Tier {
		var out []billing.Tier
		for _, x := range tiers {
			out = append(out, billing.Tier{UpTo: x.UpTo, UnitAmount: tierDecimal(x.UnitAmount, x.UnitAmountDecimal), FlatAmount: tierDecimal(x.FlatAmount, x.FlatAmountDecimal)})
		}
		return out
	}
	t.Tiers = conv(p.Tiers)
	curs := make([]string, 0, len(p.CurrencyOptions))
	for c := range p.CurrencyOptions {
		curs = append(curs, c)
	}
	sort.Strings(curs)
	for _, c := range curs {
		o := p.CurrencyOptions[c]
		if t.CurrencyOptions == nil {
			t.CurrencyOptions = map[string]billing.CurrencyOption{}
		}
		t.CurrencyOptions[c] = billing.CurrencyOption{UnitAmount: tierDecimal(o.UnitAmount, o.UnitAmountDecimal), Tiers: conv(o.Tiers)}
	}
	return t
}
