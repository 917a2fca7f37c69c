package billing

import (
	"fmt"
	"math/big"
)

// Tax in the expected amount of a subscription.
//
// A subscription's default tax rates (https://docs.stripe.com/api/tax_rates)
// apply to every line of its invoices. Stripe computes tax per line item and
// per rate and rounds each amount to the currency's minor unit ("Tax
// rates", https://docs.stripe.com/billing/taxes/tax-rates; line-item
// rounding is the account default). An exclusive rate adds
// amount × percentage / 100 on top of the line; an inclusive rate is already
// part of the line's amount, amount − amount / (1 + percentage / 100), and
// adds nothing ("Tax behavior",
// https://docs.stripe.com/tax/products-prices-tax-codes-tax-behavior).
// Amounts are integers in minor units and percentages exact decimal
// strings: no float is involved. Halves round away from zero.
//
// Automatic tax (Stripe Tax) is Stripe's calculation from the customer's
// location: the declaration does not fix it, so it is not part of the
// expected amount.

// TaxRate is a tax rate as the declaration applies it.
type TaxRate struct {
	ID string
	// Percentage is an exact decimal such as "19" or "8.875".
	Percentage string
	Inclusive  bool
}

// Tax splits the tax of an amount into the part added on top (Exclusive)
// and the part already included (Inclusive).
type Tax struct {
	Exclusive int64
	Inclusive int64
}

// LineTax is the tax of one invoice line under rates.
func LineTax(amount int64, rates []TaxRate) (Tax, error) {
	var t Tax
	for _, r := range rates {
		p, ok := new(big.Rat).SetString(r.Percentage)
		if !ok || p.Sign() < 0 {
			return Tax{}, fmt.Errorf("tax rate %s has percentage %q, not a decimal number", r.ID, r.Percentage)
		}
		p.Quo(p, big.NewRat(100, 1))
		a := new(big.Rat).SetInt64(amount)
		if r.Inclusive {
			net := new(big.Rat).Quo(a, new(big.Rat).Add(big.NewRat(1, 1), p))
			t.Inclusive += roundHalfAway(new(big.Rat).Sub(a, net))
		} else {
			t.Exclusive += roundHalfAway(a.Mul(a, p))
		}
	}
	return t, nil
}

// PeriodTax sums the tax of each line of a full period.
func PeriodTax(lines []int64, rates []TaxRate) (Tax, error) {
	var t Tax
	for _, l := range lines {
		lt, err := LineTax(l, rates)
		if err != nil {
			return Tax{}, err
		}
		t.Exclusive += lt.Exclusive
		t.Inclusive += lt.Inclusive
	}
	return t, nil
}

func roundHalfAway(q *big.Rat) int64 {
	neg := q.Sign() < 0
	abs := new(big.Rat).Abs(q)
	abs.Add(abs, big.NewRat(1, 2))
	n := new(big.Int).Quo(abs.Num(), abs.Denom()).Int64()
	if neg {
		return -n
	}
	return n
}
