package stripefake

import (
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The price shapes of the Prices API (https://docs.stripe.com/api/prices/create):
// per-unit or tiered (graduated or volume) prices, decimal amounts,
// transform_quantity, metered usage, currency_options and tax_behavior;
// and what a subscription item of each costs for a period.

// fakeTier is one tier; upTo 0 is inf. Amounts are exact decimal strings
// in the currency's minor unit ("" when unset).
type fakeTier struct {
	upTo       int64
	unit, flat string
	// unitInt, flatInt: the amount was sent as an integer (unit_amount,
	// flat_amount), so Stripe reports the integer field too.
	unitInt, flatInt bool
}

// fakeCurrencyOption is one of currency_options.
type fakeCurrencyOption struct {
	unit        string
	unitInt     bool
	tiers       []fakeTier
	taxBehavior string
}

// priceTerms are a price's terms beyond currency and interval.
type priceTerms struct {
	billingScheme, tiersMode string
	// unit is unit_amount_decimal (exact); unitInt: it is a whole number,
	// so unit_amount is reported too ("Decimal amounts for pricing",
	// https://docs.stripe.com/billing/subscriptions/decimal-amounts: "the
	// integer unit_amount field is not populated if the object is created
	// with a decimal value ... You can still pass integer values into
	// unit_amount_decimal, in which case unit_amount is populated").
	unit                      string
	unitInt                   bool
	tiers                     []fakeTier
	divideBy                  int64
	round                     string
	usageType, aggregateUsage string
	currencyOptions           map[string]fakeCurrencyOption
	taxBehavior               string
}

// decimalRE is unit_amount_decimal: "a decimal value in cents (or local
// equivalent) with at most 12 decimal places".
var decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,12})?$`)

func wholeDecimal(s string) bool {
	return !strings.Contains(strings.TrimRight(strings.TrimRight(s, "0"), "."), ".")
}

// amountPair reads an integer amount or its _decimal twin (one of them).
func (r *request) amountPair(intKey, decKey string) (val string, isInt, ok bool, err *apiError) {
	iv, hasInt := r.str(intKey)
	dv, hasDec := r.str(decKey)
	switch {
	case hasInt && hasDec:
		return "", false, false, invalid(decKey, "You may only specify one of these parameters: %s, %s.", intKey, decKey)
	case hasInt:
		n, e := strconv.ParseInt(iv, 10, 64)
		if e != nil || n < 0 {
			return "", false, false, invalid(intKey, "Invalid non-negative integer: %s", iv)
		}
		return strconv.FormatInt(n, 10), true, true, nil
	case hasDec:
		if !decimalRE.MatchString(dv) {
			return "", false, false, invalid(decKey, "Invalid decimal: %s (at most 12 decimal places)", dv)
		}
		return normDec(dv), wholeDecimal(dv), true, nil
	}
	return "", false, false, nil
}

// normDec drops trailing zeros of a fraction ("5.0" is "5").
func normDec(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// parseTiers reads prefix[i][up_to|unit_amount|unit_amount_decimal|
// flat_amount|flat_amount_decimal]. Stripe: each tier needs an amount, the
// up_to bounds rise, and the last tier is inf ("Use inf to define a
// fallback tier", https://docs.stripe.com/api/prices/create#create_price-tiers-up_to).
func (r *request) parseTiers(prefix string) ([]fakeTier, *apiError) {
	var out []fakeTier
	for _, i := range r.indexed(prefix) {
		k := prefix + "[" + i + "]"
		t := fakeTier{}
		up, ok := r.str(k + "[up_to]")
		switch {
		case !ok:
			return nil, invalid(k+"[up_to]", "Missing required param: %s[up_to].", k)
		case up == "inf":
		default:
			n, err := strconv.ParseInt(up, 10, 64)
			if err != nil || n < 1 {
				return nil, invalid(k+"[up_to]", "Invalid up_to: %s", up)
			}
			t.upTo = n
		}
		var err *apiError
		var hasUnit, hasFlat bool
		if t.unit, t.unitInt, hasUnit, err = r.amountPair(k+"[unit_amount]", k+"[unit_amount_decimal]"); err != nil {
			return nil, err
		}
		if t.flat, t.flatInt, hasFlat, err = r.amountPair(k+"[flat_amount]", k+"[flat_amount_decimal]"); err != nil {
			return nil, err
		}
		if !hasUnit && !hasFlat {
			return nil, invalid(k, "Each tier must have a unit_amount or a flat_amount.")
		}
		out = append(out, t)
	}
	for j, t := range out {
		last := j == len(out)-1
		if last != (t.upTo == 0) {
			return nil, invalid(prefix, "The last tier must have up_to set to inf, and only the last one.")
		}
		if j > 0 && !last && t.upTo <= out[j-1].upTo {
			return nil, invalid(prefix, "Tiers must be sorted by rising up_to.")
		}
	}
	return out, nil
}

// parsePriceTerms reads the terms of a price create. Stripe's rules
// (https://docs.stripe.com/api/prices/create): billing_scheme tiered needs
// tiers and tiers_mode and no unit_amount; per_unit needs unit_amount or
// unit_amount_decimal (one of them); transform_quantity "Cannot be
// combined with tiers"; aggregate_usage applies to metered prices only;
// each currency_options entry has a unit amount or tiers as the price
// does.
func (r *request) parsePriceTerms(currency string) (priceTerms, *apiError) {
	t := priceTerms{billingScheme: "per_unit", usageType: "licensed"}
	if v, ok := r.str("billing_scheme"); ok {
		if v != "per_unit" && v != "tiered" {
			return t, invalid("billing_scheme", "Invalid billing_scheme: %s", v)
		}
		t.billingScheme = v
	}
	unit, unitInt, hasUnit, err := r.amountPair("unit_amount", "unit_amount_decimal")
	if err != nil {
		return t, err
	}
	if t.billingScheme == "tiered" {
		if hasUnit {
			return t, invalid("unit_amount", "unit_amount cannot be set when billing_scheme is tiered.")
		}
		mode, _ := r.str("tiers_mode")
		if mode != "graduated" && mode != "volume" {
			return t, invalid("tiers_mode", "Missing required param: tiers_mode (graduated or volume) for billing_scheme=tiered.")
		}
		t.tiersMode = mode
		if t.tiers, err = r.parseTiers("tiers"); err != nil {
			return t, err
		}
		if len(t.tiers) == 0 {
			return t, invalid("tiers", "Missing required param: tiers.")
		}
	} else {
		if !hasUnit {
			return t, invalid("unit_amount", "Missing or invalid unit_amount.")
		}
		if len(r.indexed("tiers")) > 0 {
			return t, invalid("tiers", "tiers can only be set when billing_scheme is tiered.")
		}
		t.unit, t.unitInt = unit, unitInt
	}
	if d, ok, e := r.int("transform_quantity[divide_by]"); e != nil {
		return t, e
	} else if ok {
		if t.billingScheme == "tiered" {
			return t, invalid("transform_quantity", "transform_quantity cannot be combined with tiers.")
		}
		round, _ := r.str("transform_quantity[round]")
		if d < 1 || (round != "up" && round != "down") {
			return t, invalid("transform_quantity", "transform_quantity needs divide_by (at least 1) and round (up or down).")
		}
		t.divideBy, t.round = d, round
	}
	if v, ok := r.str("recurring[usage_type]"); ok {
		if v != "licensed" && v != "metered" {
			return t, invalid("recurring[usage_type]", "Invalid recurring[usage_type]: %s", v)
		}
		t.usageType = v
	}
	if v, ok := r.str("recurring[aggregate_usage]"); ok {
		if t.usageType != "metered" {
			return t, invalid("recurring[aggregate_usage]", "aggregate_usage can only be set when usage_type is metered.")
		}
		switch v {
		case "sum", "last_during_period", "last_ever", "max":
		default:
			return t, invalid("recurring[aggregate_usage]", "Invalid recurring[aggregate_usage]: %s", v)
		}
		t.aggregateUsage = v
	} else if t.usageType == "metered" {
		t.aggregateUsage = "sum" // Stripe's default
	}
	if v, ok := r.str("tax_behavior"); ok {
		switch v {
		case "inclusive", "exclusive", "unspecified":
		default:
			return t, invalid("tax_behavior", "Invalid tax_behavior: %s", v)
		}
		t.taxBehavior = v
	}
	for _, cur := range r.mapKeys("currency_options") {
		k := "currency_options[" + cur + "]"
		if cur == currency || !currencyRE.MatchString(cur) {
			return t, invalid(k, "Invalid currency option %s: it must be another currency than the price's.", cur)
		}
		o := fakeCurrencyOption{}
		u, ui, has, e := r.amountPair(k+"[unit_amount]", k+"[unit_amount_decimal]")
		if e != nil {
			return t, e
		}
		o.unit, o.unitInt = u, ui
		if o.tiers, e = r.parseTiers(k + "[tiers]"); e != nil {
			return t, e
		}
		switch {
		case t.billingScheme == "tiered" && len(o.tiers) == 0:
			return t, invalid(k+"[tiers]", "Missing required param: %s[tiers] (the price is tiered).", k)
		case t.billingScheme != "tiered" && !has:
			return t, invalid(k+"[unit_amount]", "Missing required param: %s[unit_amount].", k)
		}
		o.taxBehavior, _ = r.str(k + "[tax_behavior]")
		if t.currencyOptions == nil {
			t.currencyOptions = map[string]fakeCurrencyOption{}
		}
		t.currencyOptions[cur] = o
	}
	return t, nil
}

// mapKeys lists the distinct keys of name[key][...] parameters, sorted.
func (r *request) mapKeys(name string) []string {
	seen := map[string]bool{}
	var out []string
	for k := range r.form {
		if rest, ok := strings.CutPrefix(k, name+"["); ok {
			if j := strings.Index(rest, "]"); j > 0 && !seen[rest[:j]] {
				seen[rest[:j]] = true
				out = append(out, rest[:j])
			}
		}
	}
	sort.Strings(out)
	return out
}

func tiersJSON(tiers []fakeTier) []any {
	out := []any{}
	for _, t := range tiers {
		m := map[string]any{"up_to": nil, "unit_amount": nil, "unit_amount_decimal": nil, "flat_amount": nil, "flat_amount_decimal": nil}
		if t.upTo != 0 {
			m["up_to"] = t.upTo
		}
		if t.unit != "" {
			m["unit_amount_decimal"] = t.unit
			if t.unitInt {
				m["unit_amount"], _ = strconv.ParseInt(t.unit, 10, 64)
			}
		}
		if t.flat != "" {
			m["flat_amount_decimal"] = t.flat
			if t.flatInt {
				m["flat_amount"], _ = strconv.ParseInt(t.flat, 10, 64)
			}
		}
		out = append(out, m)
	}
	return out
}

// termsJSON adds the terms to a price object. tiers and currency_options
// are included only when expanded ("This field is not included by
// default", https://docs.stripe.com/api/prices/object#price_object-tiers);
// currency_options then lists the main currency too.
func (p *price) termsJSON(m map[string]any, expand map[string]bool) {
	t := &p.terms
	m["billing_scheme"] = t.billingScheme
	m["tiers_mode"] = nullable(t.tiersMode)
	m["unit_amount"], m["unit_amount_decimal"] = nil, nil
	if t.billingScheme != "tiered" {
		m["unit_amount_decimal"] = t.unit
		if t.unitInt {
			m["unit_amount"], _ = strconv.ParseInt(t.unit, 10, 64)
		}
	}
	m["transform_quantity"] = nil
	if t.divideBy > 0 {
		m["transform_quantity"] = map[string]any{"divide_by": t.divideBy, "round": t.round}
	}
	rec := m["recurring"].(map[string]any)
	rec["usage_type"] = t.usageType
	rec["aggregate_usage"] = nullable(t.aggregateUsage)
	m["tax_behavior"] = nullable(t.taxBehavior)
	if expand["tiers"] && t.billingScheme == "tiered" {
		m["tiers"] = tiersJSON(t.tiers)
	}
	if expand["currency_options"] {
		opts := map[string]any{}
		main := map[string]any{"unit_amount": m["unit_amount"], "unit_amount_decimal": m["unit_amount_decimal"], "tax_behavior": m["tax_behavior"]}
		if t.billingScheme == "tiered" {
			main["tiers"] = tiersJSON(t.tiers)
		}
		opts[p.currency] = main
		for cur, o := range t.currencyOptions {
			om := map[string]any{"unit_amount": nil, "unit_amount_decimal": nil, "tax_behavior": nullable(o.taxBehavior)}
			if o.unit != "" {
				om["unit_amount_decimal"] = o.unit
				if o.unitInt {
					om["unit_amount"], _ = strconv.ParseInt(o.unit, 10, 64)
				}
			}
			if len(o.tiers) > 0 {
				om["tiers"] = tiersJSON(o.tiers)
			}
			opts[cur] = om
		}
		m["currency_options"] = opts
	}
}

// billsIn reports whether the price can bill in currency: its own or one
// of its currency_options.
func (p *price) billsIn(currency string) bool {
	if currency == p.currency {
		return true
	}
	_, ok := p.terms.currencyOptions[currency]
	return ok
}

// metered reports whether the price is metered.
func (p *price) metered() bool { return p.terms.usageType == "metered" }

// rat parses an exact decimal ("" is 0).
func rat(s string) *big.Rat {
	r := new(big.Rat)
	if s != "" {
		r.SetString(s)
	}
	return r
}

// periodAmount is what quantity units of p cost for a period in currency,
// as Stripe bills it:
//   - currency_options: a subscription in one of the price's option
//     currencies is billed the option's amounts
//     (https://docs.stripe.com/payments/checkout/present-local-currencies#multi-currency-prices);
//   - transform_quantity: the quantity is divided by divide_by and rounded
//     up or down first ("Quantity transformation",
//     https://docs.stripe.com/products-prices/pricing-models#transform-quantity);
//   - volume tiers bill every unit at the tier of the whole quantity plus
//     its flat amount; graduated tiers bill each tier's units at its
//     amount plus the flat amount of each tier used ("Tiered pricing",
//     https://docs.stripe.com/products-prices/pricing-models#tiered-pricing);
//   - the line is rounded to the nearest minor unit, a half up, after the
//     quantity is multiplied ("Decimal amounts for pricing", Rounding,
//     https://docs.stripe.com/billing/subscriptions/decimal-amounts).
func (p *price) periodAmount(quantity int64, currency string) int64 {
	unit, tiers := p.terms.unit, p.terms.tiers
	if currency != "" && currency != p.currency {
		if o, ok := p.terms.currencyOptions[currency]; ok {
			unit, tiers = o.unit, o.tiers
		}
	}
	q := quantity
	if d := p.terms.divideBy; d > 0 {
		q = quantity / d
		if p.terms.round == "up" && quantity%d != 0 {
			q++
		}
	}
	total := new(big.Rat)
	if p.terms.billingScheme != "tiered" {
		total.Mul(rat(unit), new(big.Rat).SetInt64(q))
	} else {
		prev := int64(0)
		for i, t := range tiers {
			top := t.upTo
			if top == 0 || i == len(tiers)-1 {
				top = q
				if q < prev {
					top = prev
				}
			}
			if p.terms.tiersMode == "volume" {
				if q <= top {
					total.Add(rat(t.flat), new(big.Rat).Mul(rat(t.unit), new(big.Rat).SetInt64(q)))
					break
				}
			} else if q > prev {
				n := min(q, top) - prev
				total.Add(total, new(big.Rat).Mul(rat(t.unit), new(big.Rat).SetInt64(n)))
				total.Add(total, rat(t.flat))
			}
			prev = top
		}
	}
	// round half up: floor(total + 1/2)
	total.Add(total, big.NewRat(1, 2))
	return new(big.Int).Quo(total.Num(), total.Denom()).Int64()
}

// itemAmount is a subscription item's amount for a full period in the
// subscription's currency. A metered item bills its usage (usage.go).
func (s *Server) itemAmount(sub *subscription, it *item) int64 {
	p := s.prices[it.price]
	if p == nil || p.metered() {
		return 0
	}
	return p.periodAmount(it.quantity, s.currencyOf(sub))
}

// unknownCurrency is Stripe's refusal of a price that has no amount in the
// subscription's currency.
func unknownCurrency(priceID, currency string) *apiError {
	return invalid("items", "The price specified (%s) does not support the currency %s. Add a currency option for %s to the price or use a price in %s.", priceID, currency, currency, currency)
}

var _ = fmt.Sprintf
