// The tax expectation adjuster: exclusive tax of the declared default tax
// rates is one adjustment of the invoice expectation
// (stripesubscription_expected.go). prices() resolves the rates
// (resolveTaxRates) before it computes status.expectedAmount; invoiceCheck
// compares the invoice's amount due with the adjusted total, and taxDrift
// (stripesubscription_tax.go) compares the invoice's tax itself.

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
	if s == nil || len(s.tax.rates) == 0 {
		return // s is nil for invoiceNote's checks without a pass
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
