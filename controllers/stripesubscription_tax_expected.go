//go:build billingscenarios

// Build tag: this file needs the expectation adjusters of branch wt-prices
// (controllers/stripesubscription_expected.go). When both are merged:
//   1. delete the first line (the build tag) of this file;
//   2. in prices() (stripesubscription_external.go) resolve the rates before
//      the expectation and drop expectedTax:
//        if err := s.resolveTaxRates(ctx); err != nil { return err }
//        s.expected = s.expectedTotal()
//        return nil
//   3. drop invoiceNote's exclusiveTax argument (invoiceCheck compares the
//      adjusted expectation); taxDrift keeps comparing the invoice's tax.

package controllers

import (
	"strings"

	"github.com/stripe-operator/stripe-operator/internal/billing"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

func init() {
	expectationAdjusters = append(expectationAdjusters, taxAdjustment)
}

// taxAdjustment adds the exclusive tax of the declared default tax rates
// to an invoice expectation: per line item and per rate, rounded as Stripe
// rounds (internal/billing/tax.go). Inclusive tax is part of the lines and
// adds nothing; metered usage, which the declaration does not know, is
// left out as its amount is. For status.expectedAmount (inv nil) it also
// records the tax in status.tax.
func taxAdjustment(s *subscriptionScope, inv *stripe.Invoice, e *billing.InvoiceExpectation) {
	if len(s.tax.rates) == 0 {
		return
	}
	lines := make([]int64, 0, len(e.Lines))
	for _, l := range e.Lines {
		if !l.Metered {
			lines = append(lines, l.Amount)
		}
	}
	t, err := s.linesTax(lines)
	if err != nil {
		return
	}
	if inv == nil {
		s.tax.tax = t
	}
	if t.Exclusive != 0 {
		e.Adjustments = append(e.Adjustments, billing.Adjustment{Name: "tax (exclusive) " + strings.Join(declaredTaxRates(&s.obj.Spec), ", "), Amount: t.Exclusive})
	}
}
