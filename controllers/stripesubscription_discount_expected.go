package controllers

import (
	"context"
	"fmt"

	"github.com/stripe-operator/stripe-operator/internal/billing"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// The declared discount in the expected amount (the expectation adjusters
// of stripesubscription_expected.go): while Stripe holds the declared
// discount, status.expectedAmount is what the next full period costs with
// it, and a full-period invoice made while it was in effect is expected to
// take it off (billing.DiscountOff on the expectation's lines).
func init() {
	expectationAdjusters = append(expectationAdjusters, func(s *subscriptionScope, inv *stripe.Invoice, e *billing.InvoiceExpectation) {
		if s == nil {
			return
		}
		if off, name, ok := s.declaredDiscountOff(context.Background(), inv, e); ok && off != 0 {
			e.Adjustments = append(e.Adjustments, billing.Adjustment{Name: name, Amount: -off})
		}
	})
}

// declaredDiscountOff is what the declared discount takes off the
// expectation e of invoice inv (nil: the next invoice). ok is false when
// the declared discount does not apply to it (none declared, Stripe does
// not hold it, or inv was made outside its start and end).
func (s *subscriptionScope) declaredDiscountOff(ctx context.Context, inv *stripe.Invoice, e *billing.InvoiceExpectation) (int64, string, bool) {
	if s.sub == nil || s.ended || !s.discount.declared {
		return 0, "", false
	}
	have := s.sub.Discount
	if have == nil || have.Coupon == nil {
		return 0, "", false
	}
	if ok, err := s.matchesDeclared(ctx, have); err != nil || !ok {
		return 0, "", false
	}
	if inv != nil && (inv.Created < have.Start || (have.End != 0 && inv.Created >= have.End)) {
		return 0, "", false
	}
	c := have.Coupon
	var lines []billing.DiscountLine
	for _, l := range e.Lines {
		line := billing.DiscountLine{Amount: l.Amount}
		if len(c.AppliesToProducts) > 0 {
			prod, err := s.r.productOf(ctx, l.PriceID)
			if err != nil {
				return 0, "", false
			}
			line.Product = prod
		}
		lines = append(lines, line)
	}
	off, err := billing.DiscountOff(lines, e.Currency, billing.Coupon{PercentOff: c.PercentOff, AmountOff: c.AmountOff,
		Currency: c.Currency, CurrencyOptions: c.CurrencyOptions, Products: c.AppliesToProducts})
	if err != nil {
		return 0, "", false
	}
	return off, fmt.Sprintf("discount %s", s.discount.what), true
}
