package stripefake

import (
	"strconv"
	"strings"
	"time"
)

// upcomingInvoice serves GET /v1/invoices/upcoming at API version
// 2023-10-16 ("Retrieve an upcoming invoice",
// https://docs.stripe.com/api/invoices/upcoming): the invoice Stripe would
// make next for a subscription, with proposed changes
// (subscription_items, subscription_proration_behavior,
// subscription_proration_date, subscription_trial_end,
// subscription_cancel_at_period_end), or the first invoice of a new
// subscription (customer and subscription_items without subscription). It
// writes nothing: the invoice is computed by the same functions as the
// invoices the fake makes (draftInvoice, firstInvoiceLines, updateEffect,
// renewalLines), on a copy of the subscription.
//
// Which invoice is "next" ("Preview proration",
// https://docs.stripe.com/billing/subscriptions/prorations#preview-proration):
// a change that invoices at once (always_invoice prorations, or an
// interval change, which starts a new period) previews that invoice;
// otherwise the renewal at the period end, with the pending and the new
// prorations. A subscription set to cancel at its period end has no
// upcoming invoice: Stripe answers invoice_upcoming_none.
//
// Items may give an inline price (subscription_items[i][price_data]); it
// lives only for the request.
func (s *Server) upcomingInvoice(r *request) (any, *apiError) {
	cleanup, aerr := s.inlinePrices(r)
	defer cleanup()
	if aerr != nil {
		return nil, aerr
	}
	proration, _ := r.str("subscription_proration_behavior")
	if proration == "" {
		proration = "create_prorations"
	}
	at, hasAt, aerr := r.int("subscription_proration_date")
	if aerr != nil {
		return nil, aerr
	}
	if !hasAt {
		at = s.now.Unix()
	}
	trialEnd, hasTrial, aerr := r.int("subscription_trial_end")
	if aerr != nil {
		return nil, aerr
	}
	if hasTrial && trialEnd <= s.now.Unix() {
		return nil, invalid("subscription_trial_end", "Invalid timestamp: must be in the future.")
	}
	sid, hasSub := r.str("subscription")
	if !hasSub {
		return s.upcomingNew(r, trialEnd)
	}
	sub, ok := s.subs[sid]
	if !ok {
		return nil, missing("subscription", sid)
	}
	if cid, ok := r.str("customer"); ok && cid != sub.customer {
		return nil, invalid("customer", "The subscription %s does not belong to customer %s.", sid, cid)
	}
	if sub.ended() {
		return nil, noUpcoming(sub.customer)
	}
	next := *sub
	next.items = nil
	for _, it := range sub.items {
		cp := *it
		next.items = append(next.items, &cp)
	}
	if err := s.parseItemsNamed(r, "subscription_items", &next, true); err != nil {
		return nil, err
	}
	if v, ok := r.bool("subscription_cancel_at_period_end"); ok {
		next.cancelAtPeriodEnd = v
	}
	eff := s.updateEffect(sub, &next, proration, at, false) // a preview never resets the anchor
	if eff.immediate != nil {
		if eff.resets {
			interval, count := s.periodOf(&next)
			next.periodStart, next.periodEnd = s.now.Unix(), addInterval(s.now, interval, count).Unix()
		}
		in := s.draftInvoice(&next, "subscription_update", eff.immediate)
		return s.upcomingJSON(in, next.periodStart, s.now.Unix()), nil
	}
	if next.cancelAtPeriodEnd || (next.cancelAt != 0 && next.cancelAt <= next.periodEnd) {
		return nil, noUpcoming(sub.customer)
	}
	if hasTrial && sub.status == "trialing" {
		next.periodEnd, next.trialEnd = trialEnd, trialEnd
	}
	// The renewal starts the next period at the end of this one (or of
	// the trial): the items as they will be, the prorations pending.
	next.prorations = eff.pending
	interval, count := s.periodOf(&next)
	in := s.draftInvoice(&next, "upcoming", s.renewalLines(&next))
	in.created = next.periodEnd
	return s.upcomingJSON(in, next.periodEnd, addInterval(time.Unix(next.periodEnd, 0), interval, count).Unix()), nil
}

// upcomingNew previews a new subscription's first invoice, as
// createSubscription would make it.
func (s *Server) upcomingNew(r *request, trialEnd int64) (any, *apiError) {
	cid, _ := r.str("customer")
	c, ok := s.customers[cid]
	if !ok || c.deleted {
		return nil, missing("customer", cid)
	}
	if len(r.indexed("subscription_items")) == 0 {
		// Without a subscription or items this is the customer's next
		// invoice of any subscription; the fake previews only proposed
		// subscriptions.
		return nil, noUpcoming(cid)
	}
	sub := &subscription{customer: cid, collectionMethod: "charge_automatically", created: s.now.Unix(), periodStart: s.now.Unix()}
	if err := s.parseItemsNamed(r, "subscription_items", sub, false); err != nil {
		return nil, err
	}
	interval, count := s.periodOf(sub)
	if trialEnd != 0 {
		sub.status, sub.trialEnd, sub.periodEnd = "trialing", trialEnd, trialEnd
	} else {
		sub.periodEnd = addInterval(s.now, interval, count).Unix()
	}
	in := s.draftInvoice(sub, "subscription_create", s.firstInvoiceLines(sub))
	return s.upcomingJSON(in, sub.periodStart, sub.periodEnd), nil
}

// upcomingJSON is an upcoming invoice: no ID (it does not exist), the
// period its lines bill, and its amounts.
func (s *Server) upcomingJSON(in *invoice, periodStart, periodEnd int64) map[string]any {
	in.id = "upcoming_" + strings.TrimPrefix(in.customer, "cus_")
	out := s.invoiceJSON(in, false)
	out["id"] = nil
	out["status"] = "draft"
	out["hosted_invoice_url"] = nil
	out["period_start"], out["period_end"] = periodStart, periodEnd
	if in.amountDue > 0 {
		out["next_payment_attempt"] = in.created
	}
	return out
}

// noUpcoming is Stripe's answer when no invoice is coming.
func noUpcoming(customer string) *apiError {
	return &apiError{status: 404, Type: "invalid_request_error", Code: "invoice_upcoming_none",
		Message: "No upcoming invoices for customer: " + customer}
}

// inlinePrices registers each subscription_items[i][price_data] as a price
// for this request and points the item at it; cleanup removes them.
func (s *Server) inlinePrices(r *request) (cleanup func(), aerr *apiError) {
	var made []string
	cleanup = func() {
		for _, id := range made {
			delete(s.prices, id)
		}
	}
	for _, i := range r.indexed("subscription_items") {
		key := "subscription_items[" + i + "][price_data]"
		cur, ok := r.str(key + "[currency]")
		if !ok {
			continue
		}
		if _, has := r.str("subscription_items[" + i + "][price]"); has {
			return cleanup, invalid(key, "You may only specify one of these parameters: price, price_data.")
		}
		product, _ := r.str(key + "[product]")
		if _, ok := s.products[product]; !ok {
			return cleanup, missing("product", product)
		}
		amount, ok, err := r.int(key + "[unit_amount]")
		if err != nil {
			return cleanup, err
		}
		if !ok || amount < 0 {
			return cleanup, invalid(key+"[unit_amount]", "Missing or invalid unit_amount.")
		}
		interval, _ := r.str(key + "[recurring][interval]")
		switch interval {
		case "day", "week", "month", "year":
		default:
			return cleanup, invalid(key+"[recurring][interval]", "Invalid recurring[interval]: must be one of day, week, month, or year")
		}
		count := int64(1)
		if c, ok, err := r.int(key + "[recurring][interval_count]"); err != nil {
			return cleanup, err
		} else if ok {
			count = c
		}
		// price_data is a per-unit, licensed price with an integer
		// unit_amount ("Create a subscription", items.price_data:
		// https://docs.stripe.com/api/subscriptions/create — currency,
		// product, recurring, unit_amount, unit_amount_decimal,
		// tax_behavior; no tiers), so its terms are those createPrice
		// gives such a price (price_terms.go).
		p := &price{id: s.newID("price"), product: product, currency: cur, unitAmount: amount, interval: interval,
			intervalCount: count, active: true, created: s.now.Unix(), metadata: map[string]string{},
			terms: priceTerms{billingScheme: "per_unit", usageType: "licensed", unit: strconv.FormatInt(amount, 10), unitInt: true}}
		s.prices[p.id] = p
		made = append(made, p.id)
		r.form.Set("subscription_items["+i+"][price]", p.id)
	}
	return cleanup, nil
}
