package billing

import (
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
)

// This file computes what a coupon takes off an invoice, exactly (big.Rat,
// never float). What Stripe documents
// (https://docs.stripe.com/billing/subscriptions/coupons and the coupon
// object, https://docs.stripe.com/api/coupons/object):
//
//   - percent_off: "Percent that will be taken off the subtotal of any
//     invoices for this customer for the duration of the coupon", with "a
//     precision of two decimal places"
//     (https://docs.stripe.com/changelog/2018-07-27/coupons-use-floats-specify-percent-off);
//   - amount_off: "Amount (in the currency specified) that will be taken off
//     the subtotal of any invoices"; an invoice never goes below zero ("an
//     invoice with a subtotal of $100 will have a final total of $0 if a
//     coupon with an amount_off of 20000 is applied to it");
//   - currency_options: the amount off in other currencies;
//   - applies_to.products: only those products' lines are discounted.
//
// Stripe does not document how a percentage of an amount in minor units is
// rounded. The discount is rounded to the nearest minor unit, a half up, as
// Stripe documents for decimal line amounts ("Decimal amounts for pricing",
// https://docs.stripe.com/billing/subscriptions/decimal-amounts,
// "Rounding"); the test-mode Stripe does the same, and docs/coupons-and-discounts.md
// lists this as an assumption.

// Coupon is what a discount computation needs of a coupon.
type Coupon struct {
	// PercentOff is an exact decimal ("25", "12.5"), "" for amount off.
	PercentOff string
	// AmountOff is in Currency's minor unit.
	AmountOff       int64
	Currency        string
	CurrencyOptions map[string]int64
	// Products restricts the discount to those products' lines (nil: all).
	Products []string
}

// DiscountLine is one invoice line a discount may apply to.
type DiscountLine struct {
	Product string
	Amount  int64
}

var percentRE = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,2})?$`)

// DiscountOff is what coupon c takes off lines billed in currency, in minor
// units: at most the discountable subtotal, never negative.
func DiscountOff(lines []DiscountLine, currency string, c Coupon) (int64, error) {
	var base int64
	for _, l := range lines {
		if len(c.Products) > 0 && !slices.Contains(c.Products, l.Product) {
			continue
		}
		base += l.Amount
	}
	if base <= 0 {
		return 0, nil
	}
	if c.PercentOff != "" {
		if !percentRE.MatchString(c.PercentOff) {
			return 0, fmt.Errorf("percent off %q is not a decimal with at most two places", c.PercentOff)
		}
		pct, _ := new(big.Rat).SetString(c.PercentOff)
		if pct.Sign() <= 0 || pct.Cmp(big.NewRat(100, 1)) > 0 {
			return 0, fmt.Errorf("percent off %s is not above 0 and at most 100", c.PercentOff)
		}
		off := new(big.Rat).Mul(pct, new(big.Rat).SetInt64(base))
		off.Quo(off, big.NewRat(100, 1))
		n, err := RoundMinorHalfUp(off)
		if err != nil {
			return 0, err
		}
		return min(n, base), nil
	}
	amt := c.AmountOff
	if cur := strings.ToLower(currency); cur != strings.ToLower(c.Currency) {
		o, ok := c.CurrencyOptions[cur]
		if !ok {
			return 0, fmt.Errorf("the coupon takes an amount off in %s and has no amount for %s", c.Currency, cur)
		}
		amt = o
	}
	return min(max(amt, 0), base), nil
}

// ApplyDiscount is subtotal (one line of no particular product) less what
// coupon c takes off it.
func ApplyDiscount(subtotal int64, currency string, c Coupon) (int64, error) {
	if len(c.Products) > 0 {
		return 0, fmt.Errorf("a coupon restricted to products needs the invoice's lines (DiscountOff)")
	}
	off, err := DiscountOff([]DiscountLine{{Amount: subtotal}}, currency, c)
	return subtotal - off, err
}

// RoundMinorHalfUp rounds a non-negative exact amount to the nearest minor
// unit, a half up.
func RoundMinorHalfUp(r *big.Rat) (int64, error) {
	if r.Sign() < 0 {
		return 0, fmt.Errorf("negative amount %s", r.FloatString(2))
	}
	half := new(big.Rat).Add(r, big.NewRat(1, 2))
	n := new(big.Int).Quo(half.Num(), half.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("amount %s overflows", r.FloatString(2))
	}
	return n.Int64(), nil
}
