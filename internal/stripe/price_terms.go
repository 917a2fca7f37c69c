package stripe

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	stripego "github.com/stripe/stripe-go/v76"
)

// PriceTerms are a price's terms beyond currency, unit_amount and the
// interval (https://docs.stripe.com/api/prices/object). Decimal amounts are
// exact decimal strings in the currency's minor unit: stripe-go v76 holds
// them as float64, so they are sent as raw form values and read from the
// response's JSON, never through a float.
type PriceTerms struct {
	// BillingScheme is per_unit or tiered ("" when Stripe sent none:
	// per_unit).
	BillingScheme string
	// TiersMode is graduated or volume (tiered prices).
	TiersMode string
	// UnitAmountDecimal is unit_amount_decimal ("" when unset). For a
	// price made with unit_amount Stripe reports both; a price made with a
	// fraction reports unit_amount null.
	UnitAmountDecimal string
	// Tiers are the tiers, when read (expanded) or to create.
	Tiers []PriceTier
	// TransformDivideBy and TransformRound are transform_quantity (0: none).
	TransformDivideBy int64
	TransformRound    string
	// UsageType is licensed or metered; AggregateUsage is the metered
	// aggregation (sum, last_during_period, last_ever, max).
	UsageType      string
	AggregateUsage string
	// CurrencyOptions are the amounts in other currencies, by currency
	// (the main currency, which Stripe also lists, left out).
	CurrencyOptions map[string]CurrencyOption
	// TaxBehavior is inclusive, exclusive or unspecified ("" when unset).
	TaxBehavior string
}

// PriceTier is one tier. UpTo 0 is inf. Amounts: the integer, or the
// decimal string when set (one of each pair).
type PriceTier struct {
	UpTo              int64
	UnitAmount        *int64
	UnitAmountDecimal string
	FlatAmount        *int64
	FlatAmountDecimal string
}

// CurrencyOption is a price's amount in another currency.
type CurrencyOption struct {
	UnitAmount        *int64
	UnitAmountDecimal string
	Tiers             []PriceTier
	TaxBehavior       string
}

// priceExpand are the price fields Stripe includes only when expanded
// (https://docs.stripe.com/api/prices/object#price_object-tiers and
// #price_object-currency_options: "This field is not included by default.
// To include it in the response, expand the ... field.").
var priceExpand = []string{"tiers", "currency_options"}

// listPriceExpand is priceExpand in a list.
var listPriceExpand = []string{"data.tiers", "data.currency_options"}

// priceJSON is the part of a price object decoded from the raw response
// (decimals as strings).
type priceJSON struct {
	ID                string  `json:"id"`
	BillingScheme     string  `json:"billing_scheme"`
	TiersMode         *string `json:"tiers_mode"`
	UnitAmount        *int64  `json:"unit_amount"`
	UnitAmountDecimal *string `json:"unit_amount_decimal"`
	Tiers             []struct {
		UpTo              *int64  `json:"up_to"`
		UnitAmount        *int64  `json:"unit_amount"`
		UnitAmountDecimal *string `json:"unit_amount_decimal"`
		FlatAmount        *int64  `json:"flat_amount"`
		FlatAmountDecimal *string `json:"flat_amount_decimal"`
	} `json:"tiers"`
	TransformQuantity *struct {
		DivideBy int64  `json:"divide_by"`
		Round    string `json:"round"`
	} `json:"transform_quantity"`
	Recurring *struct {
		UsageType      string  `json:"usage_type"`
		AggregateUsage *string `json:"aggregate_usage"`
	} `json:"recurring"`
	CurrencyOptions map[string]struct {
		UnitAmount        *int64  `json:"unit_amount"`
		UnitAmountDecimal *string `json:"unit_amount_decimal"`
		TaxBehavior       *string `json:"tax_behavior"`
		Tiers             []struct {
			UpTo              *int64  `json:"up_to"`
			UnitAmount        *int64  `json:"unit_amount"`
			UnitAmountDecimal *string `json:"unit_amount_decimal"`
			FlatAmount        *int64  `json:"flat_amount"`
			FlatAmountDecimal *string `json:"flat_amount_decimal"`
		} `json:"tiers"`
	} `json:"currency_options"`
	TaxBehavior *string `json:"tax_behavior"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// normDecimal drops a trailing ".0..." that Stripe adds to whole decimals
// (unit_amount_decimal = 5 is reported as "5.0") and trailing zeros of a
// fraction, so that equal amounts compare equal as strings.
func normDecimal(s string) string {
	if s == "" || !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// terms converts the decoded JSON. expanded says whether tiers and
// currency_options were asked for.
func (j *priceJSON) terms(mainCurrency string) PriceTerms {
	t := PriceTerms{BillingScheme: j.BillingScheme, TiersMode: str(j.TiersMode), UnitAmountDecimal: normDecimal(str(j.UnitAmountDecimal)),
		TaxBehavior: str(j.TaxBehavior)}
	for _, x := range j.Tiers {
		tier := PriceTier{UnitAmount: x.UnitAmount, UnitAmountDecimal: normDecimal(str(x.UnitAmountDecimal)), FlatAmount: x.FlatAmount, FlatAmountDecimal: normDecimal(str(x.FlatAmountDecimal))}
		if x.UpTo != nil {
			tier.UpTo = *x.UpTo
		}
		t.Tiers = append(t.Tiers, tier)
	}
	if j.TransformQuantity != nil {
		t.TransformDivideBy, t.TransformRound = j.TransformQuantity.DivideBy, j.TransformQuantity.Round
	}
	if j.Recurring != nil {
		t.UsageType, t.AggregateUsage = j.Recurring.UsageType, str(j.Recurring.AggregateUsage)
	}
	for cur, o := range j.CurrencyOptions {
		if cur == mainCurrency {
			continue // Stripe lists the main currency among the options too
		}
		if t.CurrencyOptions == nil {
			t.CurrencyOptions = map[string]CurrencyOption{}
		}
		opt := CurrencyOption{UnitAmount: o.UnitAmount, UnitAmountDecimal: normDecimal(str(o.UnitAmountDecimal)), TaxBehavior: str(o.TaxBehavior)}
		for _, x := range o.Tiers {
			tier := PriceTier{UnitAmount: x.UnitAmount, UnitAmountDecimal: normDecimal(str(x.UnitAmountDecimal)), FlatAmount: x.FlatAmount, FlatAmountDecimal: normDecimal(str(x.FlatAmountDecimal))}
			if x.UpTo != nil {
				tier.UpTo = *x.UpTo
			}
			opt.Tiers = append(opt.Tiers, tier)
		}
		t.CurrencyOptions[cur] = opt
	}
	return t
}

// priceFromJSON converts a price with its raw JSON (the exact decimals).
// raw may be nil (then the decimals come from stripe-go's floats, which is
// exact only for whole amounts, and the price is not Complete).
func priceFromJSON(p *stripego.Price, raw []byte, expanded bool) *Price {
	out := toPrice(p)
	var j priceJSON
	if raw != nil && json.Unmarshal(raw, &j) == nil && j.ID == p.ID {
		out.PriceTerms = j.terms(out.Currency)
		out.Complete = expanded
		return out
	}
	// Without the raw JSON: the terms stripe-go holds exactly.
	out.BillingScheme, out.TiersMode, out.TaxBehavior = string(p.BillingScheme), string(p.TiersMode), string(p.TaxBehavior)
	if p.TransformQuantity != nil {
		out.TransformDivideBy, out.TransformRound = p.TransformQuantity.DivideBy, string(p.TransformQuantity.Round)
	}
	if p.Recurring != nil {
		out.UsageType, out.AggregateUsage = string(p.Recurring.UsageType), string(p.Recurring.AggregateUsage)
	}
	if p.UnitAmountDecimal == float64(p.UnitAmount) {
		out.UnitAmountDecimal = strconv.FormatInt(p.UnitAmount, 10)
	} else {
		// A fraction through a float is not exact: leave it to a read.
		out.UnitAmountDecimal = ""
	}
	return out
}

// pagePrices decodes a list page's raw JSON by price ID.
func pagePrices(raw []byte) map[string]json.RawMessage {
	var page struct {
		Data []json.RawMessage `json:"data"`
	}
	out := map[string]json.RawMessage{}
	if json.Unmarshal(raw, &page) != nil {
		return out
	}
	for _, d := range page.Data {
		var id struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(d, &id) == nil {
			out[id.ID] = d
		}
	}
	return out
}

// addTierParams adds tiers[i][...] as raw form values (the decimals exact).
func addTierParams(p *stripego.Params, prefix string, tiers []PriceTier) {
	for i, t := range tiers {
		k := prefix + "[" + strconv.Itoa(i) + "]"
		if t.UpTo == 0 {
			p.AddExtra(k+"[up_to]", "inf")
		} else {
			p.AddExtra(k+"[up_to]", strconv.FormatInt(t.UpTo, 10))
		}
		if t.UnitAmountDecimal != "" {
			p.AddExtra(k+"[unit_amount_decimal]", t.UnitAmountDecimal)
		} else if t.UnitAmount != nil {
			p.AddExtra(k+"[unit_amount]", strconv.FormatInt(*t.UnitAmount, 10))
		}
		if t.FlatAmountDecimal != "" {
			p.AddExtra(k+"[flat_amount_decimal]", t.FlatAmountDecimal)
		} else if t.FlatAmount != nil {
			p.AddExtra(k+"[flat_amount]", strconv.FormatInt(*t.FlatAmount, 10))
		}
	}
}

// priceCreateParams builds the create request: unit_amount or
// unit_amount_decimal for a per-unit price, tiers for a tiered one.
func priceCreateParams(p PriceCreateParams) *stripego.PriceParams {
	sp := &stripego.PriceParams{
		Product:  stripego.String(p.ProductID),
		Currency: stripego.String(p.Currency),
		Recurring: &stripego.PriceRecurringParams{
			Interval:      stripego.String(p.Interval),
			IntervalCount: stripego.Int64(max(1, p.IntervalCount)),
		},
	}
	switch {
	case p.BillingScheme == "tiered":
		sp.BillingScheme = stripego.String("tiered")
		sp.TiersMode = stripego.String(p.TiersMode)
		addTierParams(&sp.Params, "tiers", p.Tiers)
	case p.UnitAmountDecimal != "":
		sp.AddExtra("unit_amount_decimal", p.UnitAmountDecimal)
	default:
		sp.UnitAmount = stripego.Int64(p.UnitAmount)
	}
	if p.TransformDivideBy > 0 {
		sp.TransformQuantity = &stripego.PriceTransformQuantityParams{DivideBy: stripego.Int64(p.TransformDivideBy), Round: stripego.String(p.TransformRound)}
	}
	if p.UsageType != "" {
		sp.Recurring.UsageType = stripego.String(p.UsageType)
	}
	if p.AggregateUsage != "" {
		sp.Recurring.AggregateUsage = stripego.String(p.AggregateUsage)
	}
	if p.TaxBehavior != "" {
		sp.TaxBehavior = stripego.String(p.TaxBehavior)
	}
	curs := make([]string, 0, len(p.CurrencyOptions))
	for cur := range p.CurrencyOptions {
		curs = append(curs, cur)
	}
	sort.Strings(curs)
	for _, cur := range curs {
		o := p.CurrencyOptions[cur]
		k := "currency_options[" + cur + "]"
		switch {
		case len(o.Tiers) > 0:
			addTierParams(&sp.Params, k+"[tiers]", o.Tiers)
		case o.UnitAmountDecimal != "":
			sp.AddExtra(k+"[unit_amount_decimal]", o.UnitAmountDecimal)
		case o.UnitAmount != nil:
			sp.AddExtra(k+"[unit_amount]", strconv.FormatInt(*o.UnitAmount, 10))
		default:
			sp.AddExtra(k+"[unit_amount]", "0")
		}
		if o.TaxBehavior != "" {
			sp.AddExtra(k+"[tax_behavior]", o.TaxBehavior)
		}
	}
	return sp
}
