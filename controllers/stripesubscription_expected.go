package controllers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// The expected amount of a subscription and the check of its full-period
// invoices. The arithmetic is internal/billing's (exact decimals, rounded
// per line as Stripe rounds); this file feeds it the declared items' price
// terms and compares its answer with what Stripe billed.
//
// Other features adjust the expectation (a discount, exclusive tax) by
// appending to expectationAdjusters; the check then compares the invoice's
// amount due with the adjusted total.

// expectationAdjusters adjust an invoice expectation: inv is the invoice
// being checked, nil for status.expectedAmount. They add
// billing.Adjustments (negative for a discount, positive for tax added on
// top).
var expectationAdjusters []func(s *subscriptionScope, inv *stripe.Invoice, e *billing.InvoiceExpectation)

// itemTerms are the price terms of a declared item: its Stripe price's,
// or, when only its unit amount is known, a per-unit price.
func itemTerms(d *desiredItem) billing.PriceTerms {
	if d.Price != nil {
		return billingTerms(d.Price)
	}
	return billing.PriceTerms{Currency: d.Currency, UnitAmount: strconv.FormatInt(d.UnitAmount, 10)}
}

func expectedItems(desired []desiredItem) []billing.ExpectedItem {
	out := make([]billing.ExpectedItem, 0, len(desired))
	for i := range desired {
		d := &desired[i]
		out = append(out, billing.ExpectedItem{PriceID: d.PriceID, Price: itemTerms(d), Quantity: d.Quantity})
	}
	return out
}

// expectation is what one full period of the declared items costs in
// currency ("": the first item's price's currency), without adjustments.
func expectation(desired []desiredItem, currency string) (*billing.InvoiceExpectation, error) {
	if len(desired) == 0 {
		return nil, nil
	}
	if currency == "" {
		currency = desired[0].Currency
	}
	return billing.Expect(currency, expectedItems(desired))
}

// expectedAmount is status.expectedAmount: the full-period amount of the
// declared items in the price's currency, metered usage left out.
func expectedAmount(desired []desiredItem) *billingv1alpha1.Amount {
	e, err := expectation(desired, "")
	if err != nil || e == nil {
		return nil
	}
	return &billingv1alpha1.Amount{Amount: e.Total(), Currency: e.Currency}
}

// billingCurrency is the currency the subscription bills in as Stripe
// reports it ("" when not known yet): the subscription's, else its latest
// invoice's.
func (s *subscriptionScope) billingCurrency() string {
	switch {
	case s.sub == nil:
		return ""
	case s.sub.Currency != "":
		return s.sub.Currency
	case s.sub.LatestInvoice != nil:
		return s.sub.LatestInvoice.Currency
	}
	return ""
}

// itemPrice completes desired item i with its price's terms: the price a
// subscription embeds lacks tiers and currency_options, and a fraction of
// a decimal amount is not exact through stripe-go's float, so the price is
// read in full (once: prices are immutable) when they matter. A metered
// price makes the item's quantity 0; a declared quantity on it is refused.
func (s *subscriptionScope) itemPrice(ctx context.Context, i int, info priceInfo) error {
	d := &s.desired[i]
	p := info.price
	cur := s.billingCurrency()
	if p == nil || (!p.Complete && (p.BillingScheme == billing.SchemeTiered || (cur != "" && cur != p.Currency) ||
		(orDef(p.BillingScheme, billing.SchemePerUnit) == billing.SchemePerUnit && p.UnitAmountDecimal == ""))) {
		full, err := s.r.Stripe.GetPrice(ctx, d.PriceID)
		if err != nil {
			return err
		}
		s.r.prices.Store(d.PriceID, priceInfo{unitAmount: full.UnitAmount, currency: full.Currency, interval: full.Interval, intervalCount: full.IntervalCount, price: full})
		p = full
	}
	d.Price = p
	if p.UsageType == billing.UsageMetered {
		if d.SpecQuantity > 0 {
			return newSpecError(billingv1alpha1.ReasonInvalidSpec,
				"spec.items[%d].quantity must not be set: price %s of item %d is metered (usageType metered), so Stripe bills the usage the application reports and refuses a quantity (\"Quantity should not be specified where usage_type is metered\"). Remove quantity from the item.",
				i, d.PriceID, i+1)
		}
		d.Quantity = 0
	}
	return nil
}

// invoiceNote compares the latest invoice, when it bills a full period of
// exactly the declared items, with what they are expected to cost in the
// invoice's currency (its currency option, if the prices have one). It
// returns a drift text naming the item, the field, the declared value and
// Stripe's, and otherwise an explanatory note for differences that are not
// drift: prorations, discounts, tax, and metered usage (which the
// expected amount leaves out).
func invoiceNote(sub *stripe.Subscription, desired []desiredItem, expected *billingv1alpha1.Amount) (drift, note string) {
	return invoiceCheck(nil, sub, desired, expected)
}

func invoiceCheck(s *subscriptionScope, sub *stripe.Subscription, desired []desiredItem, expected *billingv1alpha1.Amount) (drift, note string) {
	inv := sub.LatestInvoice
	if inv == nil || expected == nil {
		return "", ""
	}
	if sub.TrialEnd != 0 && inv.Created != 0 && inv.Created < sub.TrialEnd {
		return "", "" // a trial invoice bills nothing by design
	}
	type billed struct{ quantity, amount int64 }
	var prorations int64
	hasProration := false
	lines := map[string]*billed{}
	for _, l := range inv.Lines {
		if l.Proration {
			hasProration = true
			prorations += l.Amount
			continue
		}
		b := lines[l.PriceID]
		if b == nil {
			b = &billed{}
			lines[l.PriceID] = b
		}
		b.quantity += l.Quantity
		b.amount += l.Amount
	}
	fullPeriod := inv.BillingReason == billingReasonCycle || (inv.BillingReason == billingReasonCreate && !hasProration)
	if !fullPeriod {
		if hasProration {
			return "", fmt.Sprintf("The latest invoice %s holds prorations (%s) for a mid-period change.", inv.ID, formatAmount(prorations, inv.Currency))
		}
		return "", ""
	}
	// Compare only when the invoice bills exactly the declared items; after a
	// change the next full-period invoice tells.
	if len(lines) != len(desired) {
		return "", ""
	}
	for i := range desired {
		d := &desired[i]
		b, ok := lines[d.PriceID]
		if !ok || (!isMetered(d) && b.quantity != d.Quantity) {
			return "", ""
		}
	}
	currency := inv.Currency
	if currency == "" {
		currency = expected.Currency
	}
	e, err := expectation(desired, currency)
	if errors.Is(err, billing.ErrNoCurrencyOption) {
		return fmt.Sprintf("the latest full-period invoice %s is in %s, which the declared prices do not bill in (their currency is %s and they have no %s currency option)",
			inv.ID, strings.ToUpper(currency), strings.ToUpper(expected.Currency), strings.ToUpper(currency)), ""
	}
	if err != nil || e == nil {
		return "", ""
	}
	for _, adjust := range expectationAdjusters {
		adjust(s, inv, e)
	}
	var diffs []string
	var meteredBilled int64
	for _, l := range e.Lines {
		b := lines[l.PriceID]
		if l.Metered {
			meteredBilled += b.amount
			continue
		}
		if b.amount != l.Amount {
			diffs = append(diffs, fmt.Sprintf("item %d (%s, quantity %d) amount is %s in Stripe, %s declared (%s)",
				l.Item, l.PriceID, desired[l.Item-1].Quantity, formatAmount(b.amount, currency), formatAmount(l.Amount, currency), describeTerms(itemTerms(&desired[l.Item-1]), l.ItemAmount)))
		}
	}
	if len(diffs) > 0 {
		var sum int64
		for _, b := range lines {
			sum += b.amount
		}
		return fmt.Sprintf("the latest full-period invoice %s bills %s for the declared items, %s expected: %s",
			inv.ID, formatAmount(sum-meteredBilled, currency), formatAmount(e.Subtotal(), currency), joinDifferences(diffs)), ""
	}
	var notes []string
	if m := e.Metered(); len(m) > 0 {
		notes = append(notes, fmt.Sprintf("The amount was compared without the metered usage of %s (%s billed for the usage reported), which the declaration does not know.",
			itemList(m), formatAmount(meteredBilled, currency)))
	}
	want := e.Total() + meteredBilled
	if inv.AmountDue != want || hasProration {
		var parts []string
		if hasProration {
			parts = append(parts, "prorations "+formatAmount(prorations, currency))
		}
		if inv.DiscountAmount != 0 {
			parts = append(parts, "discounts -"+formatAmount(inv.DiscountAmount, currency))
		}
		if inv.Tax != 0 {
			parts = append(parts, "tax "+formatAmount(inv.Tax, currency))
		}
		if len(parts) > 0 {
			notes = append(notes, fmt.Sprintf("The latest invoice %s is due %s instead of the expected %s because of %s; that is not drift.",
				inv.ID, formatAmount(inv.AmountDue, currency), formatAmount(want, currency), joinDifferences(parts)))
		}
	}
	return "", strings.Join(notes, " ")
}

func isMetered(d *desiredItem) bool {
	return d.Price != nil && d.Price.UsageType == billing.UsageMetered
}

func itemList(items []int) string {
	parts := make([]string, 0, len(items))
	for _, i := range items {
		parts = append(parts, strconv.Itoa(i))
	}
	if len(parts) == 1 {
		return "item " + parts[0]
	}
	return "items " + strings.Join(parts, ", ")
}

// describeTerms says how the declared amount was computed, e.g. "volume
// tiers at quantity 7" or "0.05 per unit x 30, rounded".
func describeTerms(t billing.PriceTerms, a billing.ItemAmount) string {
	var s string
	switch {
	case t.BillingScheme == billing.SchemeTiered:
		s = fmt.Sprintf("%s tiers at quantity %d", orDef(t.TiersMode, "graduated"), a.BilledQuantity)
	default:
		s = fmt.Sprintf("unit amount %s x %d", orDef(t.UnitAmount, "0"), a.BilledQuantity)
	}
	if t.TransformDivideBy > 0 {
		s += fmt.Sprintf(", packages of %d rounded %s", t.TransformDivideBy, orDef(t.TransformRound, "down"))
	}
	if a.Currency != "" && a.Currency != t.Currency {
		s += ", " + strings.ToUpper(a.Currency) + " currency option"
	}
	if a.Exact != strconv.FormatInt(a.Amount, 10) {
		s += ", exactly " + a.Exact + " before rounding"
	}
	return s
}

// expectedTotal is status.expectedAmount: one full period of the declared
// items in the currency the subscription bills in (its currency option
// when it has one), with the adjusters' adjustments, metered usage left
// out.
func (s *subscriptionScope) expectedTotal() *billingv1alpha1.Amount {
	e, err := expectation(s.desired, s.billingCurrency())
	if err != nil {
		e, err = expectation(s.desired, "")
	}
	if err != nil || e == nil {
		return nil
	}
	for _, adjust := range expectationAdjusters {
		adjust(s, nil, e)
	}
	return &billingv1alpha1.Amount{Amount: e.Total(), Currency: e.Currency}
}
