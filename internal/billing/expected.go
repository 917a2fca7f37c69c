package billing

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// This file computes what Stripe bills for one full period of a
// subscription item, exactly: amounts are decimal strings in the currency's
// minor unit (unit_amount_decimal allows 12 decimal places) held as
// big.Rat, never float, and rounded once per invoice line as Stripe rounds
// it. Stripe's "Decimal amounts for pricing"
// (https://docs.stripe.com/billing/subscriptions/decimal-amounts,
// "Rounding"): "Rounding occurs on the line item level of your invoices
// ... rounding occurs after the quantity is multiplied by the decimal
// amount ... 0.05 * 30 = 1.5, which is then rounded up to 2 cents. If you
// have multiple line items, each will be rounded before summing up". So a
// line's exact amount is rounded to the nearest minor unit, a half up.

// Billing schemes, tiers modes, usage types and transform_quantity
// rounding, as Stripe names them
// (https://docs.stripe.com/api/prices/object).
const (
	SchemePerUnit      = "per_unit"
	SchemeTiered       = "tiered"
	TiersGraduated     = "graduated"
	TiersVolume        = "volume"
	UsageLicensed      = "licensed"
	UsageMetered       = "metered"
	TransformRoundUp   = "up"
	TransformRoundDown = "down"
)

// Tier is one tier of a tiered price. Amounts are decimal strings in the
// currency's minor unit ("" when the tier has none).
type Tier struct {
	// UpTo is the tier's last unit; 0 means inf (the last tier).
	UpTo int64
	// UnitAmount is charged per unit in the tier.
	UnitAmount string
	// FlatAmount is charged once when the tier is used.
	FlatAmount string
}

// CurrencyOption is a price's amount in another currency
// (currency_options): a unit amount for a per-unit price, tiers for a
// tiered one.
type CurrencyOption struct {
	UnitAmount string
	Tiers      []Tier
}

// PriceTerms are the terms of a Stripe price that decide what a period
// costs.
type PriceTerms struct {
	// Currency is the price's main currency.
	Currency string
	// BillingScheme is per_unit ("" too) or tiered.
	BillingScheme string
	// TiersMode is graduated or volume (tiered prices).
	TiersMode string
	// UnitAmount is the per-unit amount (unit_amount or
	// unit_amount_decimal), "" for a tiered price.
	UnitAmount string
	// Tiers are the tiers, the last one with UpTo 0 (inf).
	Tiers []Tier
	// TransformDivideBy and TransformRound are transform_quantity: the
	// quantity is divided by DivideBy and rounded up or down before it is
	// multiplied (0: no transform).
	TransformDivideBy int64
	TransformRound    string
	// UsageType is licensed ("" too) or metered.
	UsageType string
	// CurrencyOptions are the amounts in other currencies, by lowercase
	// currency code.
	CurrencyOptions map[string]CurrencyOption
}

// ItemAmount is what one item costs for a full period.
type ItemAmount struct {
	// Amount is the line amount in minor units, rounded as Stripe rounds
	// it; 0 for a metered item.
	Amount int64
	// Exact is the amount before rounding, as a decimal string.
	Exact string
	// Currency is the currency billed.
	Currency string
	// BilledQuantity is the quantity after transform_quantity.
	BilledQuantity int64
	// Metered is true for a metered price: Stripe bills the usage
	// reported during the period, which the declaration does not know.
	Metered bool
}

// ErrNoCurrencyOption is returned when a price cannot bill in a currency.
var ErrNoCurrencyOption = errors.New("the price has no amount in that currency")

// ExpectedItemAmount is what Stripe bills for one full period of an item
// of quantity on price p, in currency (the invoice's; "" means the price's
// main currency). A metered price adds nothing (Metered is set). Tiers
// follow "Tiered pricing"
// (https://docs.stripe.com/products-prices/pricing-models#tiered-pricing):
// volume bills every unit at the tier the whole quantity falls in, plus
// that tier's flat amount; graduated bills the units of each tier at that
// tier's amount, plus the flat amount of every tier reached.
// transform_quantity ("Quantity transformation",
// https://docs.stripe.com/products-prices/pricing-models#transform-quantity)
// divides the quantity and rounds it up or down before pricing.
func ExpectedItemAmount(p PriceTerms, quantity int64, currency string) (ItemAmount, error) {
	if currency == "" {
		currency = p.Currency
	}
	currency = strings.ToLower(currency)
	out := ItemAmount{Currency: currency, BilledQuantity: quantity}
	if quantity < 0 {
		return out, fmt.Errorf("quantity %d is negative", quantity)
	}
	if p.UsageType == UsageMetered {
		out.Metered, out.Exact, out.BilledQuantity = true, "0", 0
		return out, nil
	}
	unit, tiers := p.UnitAmount, p.Tiers
	if currency != strings.ToLower(p.Currency) {
		opt, ok := p.CurrencyOptions[currency]
		if !ok {
			return out, fmt.Errorf("%w: %s (main currency %s)", ErrNoCurrencyOption, currency, p.Currency)
		}
		unit, tiers = opt.UnitAmount, opt.Tiers
	}
	q := quantity
	if p.TransformDivideBy > 0 {
		q = transform(quantity, p.TransformDivideBy, p.TransformRound)
	}
	out.BilledQuantity = q
	var exact *big.Rat
	var err error
	switch p.BillingScheme {
	case "", SchemePerUnit:
		exact, err = perUnit(unit, q)
	case SchemeTiered:
		exact, err = tiered(p.TiersMode, tiers, q)
	default:
		err = fmt.Errorf("unknown billing scheme %q", p.BillingScheme)
	}
	if err != nil {
		return out, err
	}
	out.Exact = ratString(exact)
	out.Amount, err = RoundMinor(exact)
	return out, err
}

// transform applies transform_quantity: quantity / divideBy, rounded up
// or down (down unless round is "up").
func transform(quantity, divideBy int64, round string) int64 {
	q := quantity / divideBy
	if round == TransformRoundUp && quantity%divideBy != 0 {
		q++
	}
	return q
}

func perUnit(unit string, q int64) (*big.Rat, error) {
	u, err := ParseDecimal(unit)
	if err != nil {
		return nil, fmt.Errorf("unit amount: %w", err)
	}
	return u.Mul(u, new(big.Rat).SetInt64(q)), nil
}

func tiered(mode string, tiers []Tier, q int64) (*big.Rat, error) {
	if len(tiers) == 0 {
		return nil, errors.New("a tiered price needs tiers")
	}
	total := new(big.Rat)
	var lower int64 // units covered by the tiers before this one
	for i, t := range tiers {
		last := t.UpTo == 0 || i == len(tiers)-1
		if !last && t.UpTo <= lower {
			return nil, fmt.Errorf("tier %d: up_to %d does not rise above %d", i+1, t.UpTo, lower)
		}
		unit, err := ParseDecimal(t.UnitAmount)
		if err != nil {
			return nil, fmt.Errorf("tier %d unit amount: %w", i+1, err)
		}
		flat, err := ParseDecimal(t.FlatAmount)
		if err != nil {
			return nil, fmt.Errorf("tier %d flat amount: %w", i+1, err)
		}
		switch mode {
		case TiersVolume:
			if last || q <= t.UpTo {
				return total.Add(unit.Mul(unit, new(big.Rat).SetInt64(q)), flat), nil
			}
		case TiersGraduated:
			if q <= lower {
				return total, nil
			}
			n := q - lower
			if !last && q > t.UpTo {
				n = t.UpTo - lower
			}
			total.Add(total, unit.Mul(unit, new(big.Rat).SetInt64(n)))
			total.Add(total, flat)
			if last || q <= t.UpTo {
				return total, nil
			}
		default:
			return nil, fmt.Errorf("unknown tiers mode %q", mode)
		}
		lower = t.UpTo
	}
	return total, nil
}

// ParseDecimal parses a non-negative decimal string ("105.5", "0.05",
// "2000"); "" is 0.
func ParseDecimal(s string) (*big.Rat, error) {
	if s == "" {
		return new(big.Rat), nil
	}
	for i, c := range s {
		if (c < '0' || c > '9') && !(c == '.' && i > 0 && i < len(s)-1) {
			return nil, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	if strings.Count(s, ".") > 1 {
		return nil, fmt.Errorf("%q is not a decimal number", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("%q is not a decimal number", s)
	}
	return r, nil
}

// RoundMinor rounds an exact non-negative amount to the nearest minor unit,
// a half up, as Stripe rounds a line (see the file comment).
func RoundMinor(r *big.Rat) (int64, error) {
	if r.Sign() < 0 {
		return 0, errors.New("negative amount")
	}
	// floor(r + 1/2)
	half := new(big.Rat).Add(r, big.NewRat(1, 2))
	n := new(big.Int).Quo(half.Num(), half.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("amount %s overflows", r.FloatString(2))
	}
	return n.Int64(), nil
}

// ratString renders r as a decimal string without trailing zeros (r comes
// from decimal strings and integers, so it has a finite expansion).
func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	s := r.FloatString(24)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// ExpectedLine is one declared item of an invoice expectation.
type ExpectedLine struct {
	// Item is the item's position in the declaration, from 1.
	Item    int
	PriceID string
	// Quantity is the declared quantity (0 for a metered item).
	Quantity int64
	ItemAmount
}

// Adjustment is a documented difference between the items' sum and what
// the invoice is due: a discount (negative), exclusive tax (positive).
// Other features add theirs to an InvoiceExpectation.
type Adjustment struct {
	// Name says what it is ("discount SUMMER", "tax (exclusive)").
	Name   string
	Amount int64
}

// InvoiceExpectation is what a full-period invoice of the declared items
// should bill.
type InvoiceExpectation struct {
	Currency string
	Lines    []ExpectedLine
	// Adjustments are applied to the subtotal, in order.
	Adjustments []Adjustment
}

// Expect computes the expectation of one full-period invoice in currency
// for items (price terms and declared quantity each).
func Expect(currency string, items []ExpectedItem) (*InvoiceExpectation, error) {
	e := &InvoiceExpectation{Currency: strings.ToLower(currency)}
	for i, it := range items {
		a, err := ExpectedItemAmount(it.Price, it.Quantity, currency)
		if err != nil {
			return nil, fmt.Errorf("item %d (%s): %w", i+1, it.PriceID, err)
		}
		q := it.Quantity
		if a.Metered {
			q = 0
		}
		e.Lines = append(e.Lines, ExpectedLine{Item: i + 1, PriceID: it.PriceID, Quantity: q, ItemAmount: a})
		if e.Currency == "" {
			e.Currency = a.Currency
		}
	}
	return e, nil
}

// ExpectedItem is one declared item: its price's terms and quantity.
type ExpectedItem struct {
	PriceID  string
	Price    PriceTerms
	Quantity int64
}

// Subtotal is the sum of the lines that are not metered.
func (e *InvoiceExpectation) Subtotal() int64 {
	var n int64
	for _, l := range e.Lines {
		n += l.Amount
	}
	return n
}

// Total is the subtotal with the adjustments.
func (e *InvoiceExpectation) Total() int64 {
	n := e.Subtotal()
	for _, a := range e.Adjustments {
		n += a.Amount
	}
	return n
}

// Metered lists the positions of the metered items, whose usage the
// expectation leaves out.
func (e *InvoiceExpectation) Metered() []int {
	var out []int
	for _, l := range e.Lines {
		if l.Metered {
			out = append(out, l.Item)
		}
	}
	return out
}
