package stripefake

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	// retryEvery and maxAttempts model Smart Retries: a failed renewal is
	// retried every 3 days, 4 attempts in all, then the subscription becomes
	// unpaid.
	retryEvery  = 3 * 24 * time.Hour
	maxAttempts = 4
	// incompleteExpiry is how long an incomplete subscription waits for its
	// first payment.
	incompleteExpiry = 23 * time.Hour
)

type item struct {
	id       string
	price    string
	quantity int64
	// usage are the usage records of a metered item not yet billed
	// (usage.go).
	usage []usageRecord
}

type subscription struct {
	indexedAt            int64 // last write, for the Search API's delay
	id, customer, status string
	// currency is the currency the subscription bills in: the customer's
	// when one of the prices has it as a currency option, else the
	// prices' own.
	currency                       string
	items                          []*item
	periodStart, periodEnd         int64
	cancelAtPeriodEnd              bool
	cancelAt, canceledAt, trialEnd int64
	pause                          string
	collectionMethod               string
	daysUntilDue                   int64
	metadata                       map[string]string
	created                        int64
	latestInvoice                  string
	prorations                     []line
	// schedule is the subscription schedule managing it, "" when none.
	schedule string
	// trialWillEndSent records that customer.subscription.trial_will_end
	// went out for the current trial.
	trialWillEndSent bool
	// cancellation is cancellation_details (dunning.go).
	cancellation cancellationDetails
	// discount is the applied coupon (coupons.go), nil when none.
	discount *discount
	// pending holds the items of a pending update (payment_behavior
	// pending_if_incomplete whose payment failed) until its invoice is
	// paid; nil when none.
	pending []*item
	// tax is automatic_tax, default_tax_rates and the billing anchor
	// (tax.go).
	tax subscriptionTax
}

func (s *subscription) ended() bool {
	return s.status == "canceled" || s.status == "incomplete_expired"
}

type line struct {
	amount    int64
	proration bool
	price     string
	quantity  int64
	desc      string
}

type invoice struct {
	id, subscription, customer, status, currency, billingReason string
	lines                                                       []line
	amountDue, amountPaid, attemptCount, nextPaymentAttempt     int64
	attempted                                                   bool
	created                                                     int64
	piStatus, piError, piDecline                                string
	// piPM is the PaymentMethod the last failed attempt charged.
	piPM        string
	subMetadata map[string]string
	// finalizeAt is when a renewal invoice kept as a draft is finalized
	// (and attempted); 0 when it is not waiting.
	finalizeAt int64
	// tax is the invoice's tax (tax.go).
	tax invoiceTax
	// discountAmount is what the subscription's discount took off
	// (discountID), coupons.go.
	discountAmount int64
	discountID     string
	// charge is the latest charge (ch_...) of a payment attempt, "" when
	// none (finance.go).
	charge string
}

func (s *Server) itemJSON(sub *subscription, it *item) map[string]any {
	var pj any
	if p, ok := s.prices[it.price]; ok {
		pj = p.json()
	}
	m := map[string]any{"id": it.id, "object": "subscription_item", "price": pj, "quantity": it.quantity,
		"subscription": sub.id, "created": sub.created, "metadata": map[string]string{}}
	if p, ok := s.prices[it.price]; ok && p.metered() {
		// A metered item has no quantity
		// (https://docs.stripe.com/api/subscription_items/object#subscription_item_object-quantity:
		// "The quantity of the plan to which the customer should be
		// subscribed", absent for usage_type=metered).
		delete(m, "quantity")
	}
	return m
}

func (s *Server) subJSON(sub *subscription, expand map[string]bool) map[string]any {
	items := []any{}
	for _, it := range sub.items {
		items = append(items, s.itemJSON(sub, it))
	}
	var pause any
	if sub.pause != "" {
		pause = map[string]any{"behavior": sub.pause, "resumes_at": nil}
	}
	var latest any
	if sub.latestInvoice != "" {
		latest = sub.latestInvoice
		if expand["latest_invoice"] {
			latest = s.invoiceJSON(s.invoices[sub.latestInvoice], expand["latest_invoice.payment_intent"])
		}
	}
	zeroNil := func(v int64) any {
		if v == 0 {
			return nil
		}
		return v
	}
	var due any
	if sub.collectionMethod == "send_invoice" {
		due = sub.daysUntilDue
	}
	m := map[string]any{
		"id": sub.id, "object": "subscription", "customer": sub.customer, "status": sub.status, "currency": s.currencyOf(sub),
		"items":                map[string]any{"object": "list", "data": items, "has_more": false, "url": "/v1/subscription_items?subscription=" + sub.id},
		"current_period_start": sub.periodStart, "current_period_end": sub.periodEnd,
		"cancel_at_period_end": sub.cancelAtPeriodEnd, "cancel_at": zeroNil(sub.cancelAt), "canceled_at": zeroNil(sub.canceledAt),
		"trial_end": zeroNil(sub.trialEnd), "pause_collection": pause, "collection_method": sub.collectionMethod,
		"days_until_due": due, "metadata": copyMeta(sub.metadata), "created": sub.created, "start_date": sub.created,
		"latest_invoice": latest, "livemode": false, "schedule": nullable(sub.schedule),
		"cancellation_details": sub.cancellation.json(), "pending_update": s.pendingJSON(sub),
		"discount": s.discountJSON(sub),
	}
	sub.tax.json(s, m)
	return m
}

// pendingJSON is the subscription's pending_update
// (https://docs.stripe.com/billing/subscriptions/pending-updates-reference),
// nil when none.
func (s *Server) pendingJSON(sub *subscription) any {
	if sub.pending == nil {
		return nil
	}
	items := []any{}
	for _, it := range sub.pending {
		items = append(items, s.itemJSON(sub, it))
	}
	return map[string]any{"subscription_items": items, "expires_at": sub.periodEnd, "trial_end": nil, "billing_cycle_anchor": nil}
}

func (s *Server) invoiceJSON(in *invoice, expandPI bool) map[string]any {
	if in == nil {
		return nil
	}
	lines := []any{}
	subtotal := int64(0)
	for i, l := range in.lines {
		subtotal += l.amount
		if i < embeddedLines {
			lines = append(lines, s.lineJSON(in, i))
		}
	}
	piID := "pi_" + strings.TrimPrefix(in.id, "in_")
	var pi any
	if in.piStatus != "" {
		pi = piID
		if expandPI {
			var lastErr any
			if in.piError != "" {
				lastErr = map[string]any{"type": "card_error", "code": in.piError, "decline_code": nullable(in.piDecline),
					"message": "Your card was declined."}
				if p := s.paymentMethods[in.piPM]; p != nil {
					// last_payment_error.payment_method names the card that failed
					// (https://docs.stripe.com/api/payment_intents/object#payment_intent_object-last_payment_error-payment_method).
					lastErr.(map[string]any)["payment_method"] = p.json()
				}
			}
			pi = map[string]any{"id": piID, "object": "payment_intent", "status": in.piStatus, "amount": in.amountDue,
				"currency": in.currency, "last_payment_error": lastErr, "invoice": in.id, "livemode": false}
		}
	}
	var next any
	if in.nextPaymentAttempt != 0 {
		next = in.nextPaymentAttempt
	}
	var hosted any
	if in.status != "draft" {
		hosted = "https://invoice.stripe.test/i/" + in.id
	}
	m := map[string]any{
		"id": in.id, "object": "invoice", "subscription": nullable(in.subscription), "customer": in.customer,
		"status": in.status, "currency": in.currency, "amount_due": in.amountDue, "amount_paid": in.amountPaid,
		"amount_remaining": in.amountDue - in.amountPaid, "subtotal": subtotal, "total": subtotal - in.discountAmount, "tax": nil,
		"total_discount_amounts": discountAmounts(in), "attempt_count": in.attemptCount, "attempted": in.attempted,
		"next_payment_attempt": next, "billing_reason": in.billingReason, "hosted_invoice_url": hosted,
		"created": in.created, "payment_intent": pi, "livemode": false, "paid": in.status == "paid",
		"lines":                map[string]any{"object": "list", "data": lines, "has_more": len(in.lines) > embeddedLines, "url": "/v1/invoices/" + in.id + "/lines"},
		"subscription_details": map[string]any{"metadata": copyMeta(in.subMetadata)},
		"charge":               nullable(in.charge),
	}
	in.taxJSON(m, subtotal)
	return m
}

func addInterval(t time.Time, interval string, count int64) time.Time {
	n := int(count)
	switch interval {
	case "day":
		return t.AddDate(0, 0, n)
	case "week":
		return t.AddDate(0, 0, 7*n)
	case "year":
		return t.AddDate(n, 0, 0)
	default:
		return t.AddDate(0, n, 0)
	}
}

// periodOf returns the subscription's billing interval (its first price's).
func (s *Server) periodOf(sub *subscription) (string, int64) {
	for _, it := range sub.items {
		if p, ok := s.prices[it.price]; ok {
			return p.interval, p.intervalCount
		}
	}
	return "month", 1
}

func (s *Server) parseItems(r *request, sub *subscription, update bool) *apiError {
	return s.parseItemsNamed(r, "items", sub, update)
}

// parseItemsNamed applies the items given as name[i][...] (items on a
// create or update, subscription_items on an upcoming-invoice preview).
func (s *Server) parseItemsNamed(r *request, name string, sub *subscription, update bool) *apiError {
	idx := r.indexed(name)
	if !update && len(idx) == 0 {
		return invalid(name, "Missing required param: %s.", name)
	}
	for _, i := range idx {
		key := name + "[" + i + "]"
		id, hasID := r.str(key + "[id]")
		priceID, hasPrice := r.str(key + "[price]")
		qty, hasQty, err := r.int(key + "[quantity]")
		if err != nil {
			return err
		}
		if hasQty && qty < 0 {
			return invalid(key+"[quantity]", "Invalid quantity")
		}
		deleted, _ := r.bool(key + "[deleted]")
		var newPrice *price
		if hasPrice {
			p, ok := s.prices[priceID]
			if !ok {
				return missing("price", priceID)
			}
			if !p.active {
				return invalid(key+"[price]", "The price specified is inactive. This field only accepts active prices.")
			}
			newPrice = p
		}
		if hasID {
			var found *item
			for _, it := range sub.items {
				if it.id == id {
					found = it
				}
			}
			if found == nil {
				return invalid(key+"[id]", "Invalid subscription_item id: %s", id)
			}
			if deleted {
				kept := sub.items[:0]
				for _, it := range sub.items {
					if it != found {
						kept = append(kept, it)
					}
				}
				sub.items = kept
				continue
			}
			target := s.prices[found.price]
			if hasPrice {
				target = newPrice
			}
			if target != nil && target.metered() && hasQty {
				return meteredQuantity(key)
			}
			if hasPrice {
				wasMetered := s.prices[found.price] != nil && s.prices[found.price].metered()
				found.price = priceID
				switch {
				case newPrice.metered():
					found.quantity = 0
				case wasMetered && !hasQty:
					found.quantity = 1
				}
			}
			if hasQty {
				found.quantity = qty
			}
			continue
		}
		if !hasPrice {
			return invalid(key+"[price]", "Missing required param: %s[price].", key)
		}
		switch {
		case newPrice.metered() && hasQty:
			return meteredQuantity(key)
		case newPrice.metered():
			qty = 0
		case !hasQty:
			qty = 1
		}
		sub.items = append(sub.items, &item{id: s.newID("si"), price: priceID, quantity: qty})
	}
	seen := map[string]bool{}
	for _, it := range sub.items {
		if seen[it.price] {
			return invalid("items", "Cannot add multiple subscription items with the same price.")
		}
		seen[it.price] = true
	}
	if len(sub.items) == 0 {
		return invalid("items", "A subscription must have at least one item.")
	}
	if len(sub.items) > 20 {
		return invalid("items", "A subscription can have at most 20 items.")
	}
	return s.checkItemTerms(sub)
}

// checkItemTerms refuses what a classic subscription cannot hold: items
// billed in different currencies or at different intervals (Stripe's
// answer: "Currency and interval fields must match across all plans on this
// subscription. Found mismatch in interval field.", as reported in
// https://github.com/stripe/stripe-node/issues/682; mixed intervals need
// the newer billing mode, "Use mixed interval subscriptions"), and a
// currency other than the customer's: a customer's currency is set by its
// first subscription or invoice and cannot change
// (https://support.stripe.com/questions/setting-a-customers-default-currency).
//
// A price with currency_options bills in the option of the customer's
// currency ("Multi-currency prices": a customer's subscription is billed
// in the customer's currency when the price supports it,
// https://docs.stripe.com/products-prices/pricing-models#multicurrency),
// so the currency to match is the subscription's (the customer's when
// every price supports it, else the first price's own).
func (s *Server) checkItemTerms(sub *subscription) *apiError {
	if len(sub.items) == 0 {
		return nil
	}
	first := s.prices[sub.items[0].price]
	all := func(cur string) bool {
		for _, it := range sub.items {
			if !s.prices[it.price].billsIn(cur) {
				return false
			}
		}
		return true
	}
	for _, it := range sub.items {
		p := s.prices[it.price]
		if p.interval != first.interval || p.intervalCount != first.intervalCount {
			return invalid("items", "Currency and interval fields must match across all plans on this subscription. Found mismatch in interval field.")
		}
	}
	c := s.customers[sub.customer]
	switch {
	case c != nil && c.currency != "" && all(c.currency):
		sub.currency = c.currency
	case !all(first.currency):
		return invalid("items", "Currency and interval fields must match across all plans on this subscription. Found mismatch in currency field.")
	case c != nil && c.currency != "":
		return combinedCurrencies(c.currency)
	default:
		sub.currency = first.currency
	}
	return nil
}

// meteredQuantity is Stripe's refusal of a quantity on a metered item.
func meteredQuantity(key string) *apiError {
	return invalid(key+"[quantity]", "Quantity should not be specified where usage_type is `metered`. Remove quantity from `%s` to continue.", key)
}

// combinedCurrencies is Stripe's refusal of an object in a currency other
// than the customer's.
func combinedCurrencies(have string) *apiError {
	return invalid("currency", "You cannot combine currencies on a single customer. This customer has an active subscription, subscription schedule, discount, quote, or invoice item with currency %s.", have)
}

// periodLines are the lines of a period's invoice: licensed items for the
// period ahead, metered items for the usage of the period that ended
// (billed in arrears, usage.go).
func (s *Server) periodLines(sub *subscription) []line {
	var out []line
	for _, it := range sub.items {
		p := s.prices[it.price]
		if p.metered() {
			usage := s.billUsage(sub, it)
			out = append(out, line{amount: p.periodAmount(usage, s.currencyOf(sub)), price: it.price, quantity: usage, desc: "usage"})
			continue
		}
		out = append(out, line{amount: s.itemAmount(sub, it), price: it.price, quantity: it.quantity, desc: "subscription"})
	}
	return out
}

func (s *Server) currencyOf(sub *subscription) string {
	if sub.currency != "" {
		return sub.currency
	}
	for _, it := range sub.items {
		return s.prices[it.price].currency
	}
	return "usd"
}

func (s *Server) createSubscription(r *request) (any, *apiError) {
	cid, _ := r.str("customer")
	c, ok := s.customers[cid]
	if !ok || c.deleted {
		return nil, missing("customer", cid)
	}
	sub := &subscription{id: s.newID("sub"), customer: cid, collectionMethod: "charge_automatically", created: s.now.Unix()}
	sub.indexedAt = s.now.Unix()
	if err := s.parseItems(r, sub, false); err != nil {
		return nil, err
	}
	if v, ok := r.str("collection_method"); ok {
		sub.collectionMethod = v
	}
	if d, ok, err := r.int("days_until_due"); err != nil {
		return nil, err
	} else if ok {
		sub.daysUntilDue = d
	}
	if sub.collectionMethod == "send_invoice" && sub.daysUntilDue == 0 {
		if _, ok := r.str("days_until_due"); !ok {
			return nil, invalid("days_until_due", "days_until_due is required when collection_method is send_invoice.")
		}
	}
	sub.cancelAtPeriodEnd, _ = r.bool("cancel_at_period_end")
	m, _ := r.metadata("")
	sub.metadata = applyMeta(nil, m)
	behavior, _ := r.str("payment_behavior")
	if behavior == "" {
		behavior = "allow_incomplete"
	}
	interval, count := s.periodOf(sub)
	trialDays, hasTrial, err := r.int("trial_period_days")
	if err != nil {
		return nil, err
	}
	if err := s.parseSubscriptionTax(r, &sub.tax, cid); err != nil {
		return nil, err
	}
	if hasTrial && r.has("trial_end") {
		return nil, invalid("trial_end", "You may only specify one of trial_end and trial_period_days.")
	}
	sub.periodStart = s.now.Unix()
	end, trialByEnd, partial, aerr := s.firstPeriodEnd(r, sub, interval, count)
	if aerr != nil {
		return nil, aerr
	}
	sub.periodEnd = end
	if trialByEnd {
		sub.status = "trialing"
		sub.trialEnd = end
	}
	if hasTrial && trialDays > 0 {
		sub.status = "trialing"
		sub.trialEnd = s.now.AddDate(0, 0, int(trialDays)).Unix()
		sub.periodEnd = sub.trialEnd
		if sub.tax.anchored && sub.tax.anchor < sub.trialEnd {
			return nil, invalid("billing_cycle_anchor", "billing_cycle_anchor cannot be before trial_end.")
		}
		if !sub.tax.anchored {
			sub.tax.anchor = sub.trialEnd // a trial moves the anchor to its end
		}
	}
	if sub.cancelAtPeriodEnd {
		sub.cancelAt = sub.periodEnd
	}
	firstAmount := int64(0)
	if sub.status != "trialing" {
		firstAmount = sumLines(s.periodLines(sub))
	}
	if err := s.applyDiscountParams(r, sub, firstAmount); err != nil {
		return nil, err
	}
	s.subs[sub.id] = sub
	if c := s.customers[cid]; c.currency == "" {
		c.currency = s.currencyOf(sub) // the customer's currency from now on
	}
	var lines []line
	if partial && sub.status != "trialing" {
		// A billing cycle anchor: the first, partial period up to it.
		none := false
		if pb, _ := r.str("proration_behavior"); pb == "none" {
			none = true
		}
		lines = s.partialPeriodLines(sub, interval, count, none)
	} else {
		lines = s.firstInvoiceLines(sub)
	}
	in := s.newInvoice(r, sub, "subscription_create", lines)
	if in.status == "open" && in.amountDue == 0 {
		// "If the amount due for the invoice is less than Stripe's minimum
		// allowed charge per currency, the invoice is automatically marked
		// paid" (https://docs.stripe.com/api/invoices/object#invoice_object-amount_due):
		// a trial's first invoice, a free plan's.
		s.pay(r, in, false)
	}
	if sub.status != "trialing" {
		switch {
		case in.amountDue == 0 || sub.collectionMethod == "send_invoice":
			sub.status = "active"
		case behavior == "default_incomplete":
			sub.status = "incomplete"
			in.piStatus = "requires_payment_method"
		default:
			if s.pay(r, in, false) {
				sub.status = "active"
			} else if behavior == "error_if_incomplete" {
				// Stripe rolls the whole create back.
				delete(s.subs, sub.id)
				delete(s.invoices, in.id)
				s.untrack("invoice", in.id)
				return nil, &apiError{status: 402, Type: "card_error", Code: in.piError, DeclineCode: in.piDecline, Message: "Your card was declined."}
			} else {
				sub.status = "incomplete"
			}
		}
	}
	s.track("subscription", sub.id)
	s.emit(r, "customer.subscription.created", s.subJSON(sub, nil), nil)
	return s.subJSON(sub, r.expand), nil
}

// newInvoice creates, finalizes and records an invoice (not yet paid).
func (s *Server) newInvoice(r *request, sub *subscription, reason string, lines []line) *invoice {
	in := s.draftInvoice(sub, reason, lines)
	in.id = s.newID("in")
	s.invoices[in.id] = in
	s.track("invoice", in.id)
	sub.latestInvoice = in.id
	s.emit(r, "invoice.created", s.invoiceJSON(in, false), nil)
	if sub.pause != "" && reason == "subscription_cycle" {
		switch sub.pause {
		case "void":
			in.status = "void"
			s.emit(r, "invoice.voided", s.invoiceJSON(in, false), nil)
		case "mark_uncollectible":
			in.status = "uncollectible"
			s.emit(r, "invoice.marked_uncollectible", s.invoiceJSON(in, false), nil)
		}
		return in
	}
	if reason == "subscription_cycle" {
		// A renewal invoice stays a draft for about an hour before Stripe
		// finalizes and attempts it ("How subscriptions work": Stripe
		// finalizes the invoice about an hour after creating it;
		// https://docs.stripe.com/billing/subscriptions/overview#subscription-events).
		// Stripe also waits for the webhook endpoints to acknowledge
		// invoice.created, up to 72 hours; the fake does not.
		in.finalizeAt = s.now.Add(renewalDraftDelay).Unix()
		return in
	}
	s.finalizeInvoice(r, in)
	return in
}

// draftInvoice computes an invoice of sub with these lines: its amounts,
// nothing recorded. Every invoice the fake makes and every upcoming-invoice
// preview (upcoming.go) is computed here.
func (s *Server) draftInvoice(sub *subscription, reason string, lines []line) *invoice {
	in := &invoice{subscription: sub.id, customer: sub.customer, status: "draft",
		currency: s.currencyOf(sub), billingReason: reason, lines: lines, created: s.now.Unix(), subMetadata: copyMeta(sub.metadata)}
	for _, l := range lines {
		in.amountDue += l.amount
	}
	// main's (wt-coupons) discount on the invoice, kept here so the upcoming
	// invoice (upcoming.go) discounts as the invoice it previews does.
	in.discountAmount, in.discountID = s.invoiceDiscount(sub, lines, in.currency)
	in.amountDue -= in.discountAmount
	if in.amountDue < 0 {
		in.amountDue = 0 // credit goes to the customer balance
	}
	s.computeTax(in, sub)
	return in
}

// firstInvoiceLines are the lines of a new subscription's first invoice:
// its first period, or zero-amount trial lines.
func (s *Server) firstInvoiceLines(sub *subscription) []line {
	if sub.status != "trialing" {
		return s.periodLines(sub)
	}
	var lines []line
	for _, l := range s.periodLines(sub) {
		l.amount = 0
		l.desc = "trial"
		lines = append(lines, l)
	}
	return lines
}

// renewalLines are the lines of the invoice that starts sub's next period:
// the period's items and the prorations pending since the last invoice.
func (s *Server) renewalLines(sub *subscription) []line {
	return append(s.periodLines(sub), sub.prorations...)
}

// renewalDraftDelay is how long a renewal invoice stays a draft.
const renewalDraftDelay = time.Hour

// finalizeInvoice moves a draft invoice to open.
func (s *Server) finalizeInvoice(r *request, in *invoice) {
	in.status, in.finalizeAt = "open", 0
	if in.amountDue > 0 {
		in.piStatus = "requires_payment_method"
	}
	s.emit(r, "invoice.finalized", s.invoiceJSON(in, false), nil)
}

// pay attempts the invoice with the customer's default PaymentMethod and
// reports success. retry marks an automatic retry.
func (s *Server) pay(r *request, in *invoice, retry bool) bool {
	if in.status != "open" {
		return in.status == "paid"
	}
	if in.amountDue == 0 {
		in.status, in.piStatus = "paid", ""
		s.emit(r, "invoice.paid", s.invoiceJSON(in, false), nil)
		s.emit(r, "invoice.payment_succeeded", s.invoiceJSON(in, false), nil)
		return true
	}
	in.attempted = true
	in.attemptCount++
	pm, code, decline := s.chargeOutcome(in.customer)
	in.charge = s.newID("ch")
	s.charges = append(s.charges, Charge{ID: in.charge, Amount: in.amountDue, Currency: in.currency, Customer: in.customer, Subscription: in.subscription, Invoice: in.id, PaymentMethod: pm,
		BillingReason: in.billingReason, Automatic: retry, Succeeded: code == "", FailureCode: code, At: s.now})
	in.piPM = pm
	switch code {
	case "payment_method_missing", "card_declined":
		in.piStatus, in.piError, in.piDecline = "requires_payment_method", code, decline
	case "authentication_required":
		in.piStatus, in.piError, in.piDecline = "requires_action", code, decline
	default:
		in.status, in.amountPaid, in.piStatus, in.piError, in.piDecline, in.nextPaymentAttempt = "paid", in.amountDue, "succeeded", "", "", 0
		s.emit(r, "invoice.paid", s.invoiceJSON(in, true), nil)
		s.emit(r, "invoice.payment_succeeded", s.invoiceJSON(in, true), nil)
		return true
	}
	if in.billingReason != "subscription_create" && in.attemptCount < maxAttempts {
		in.nextPaymentAttempt = s.now.Add(retryEvery).Unix()
	} else {
		in.nextPaymentAttempt = 0
	}
	if in.piStatus == "requires_action" {
		s.emit(r, "invoice.payment_action_required", s.invoiceJSON(in, true), nil)
	}
	s.emit(r, "invoice.payment_failed", s.invoiceJSON(in, true), nil)
	return false
}

func (s *Server) getSubscription(r *request, id string) (any, *apiError) {
	sub, ok := s.subs[id]
	if !ok {
		return nil, missing("subscription", id)
	}
	return s.subJSON(sub, r.expand), nil
}

func (s *Server) listSubscriptions(r *request) (any, *apiError) {
	cid, hasCustomer := r.str("customer")
	status, _ := r.str("status")
	return s.list(r, "/v1/subscriptions", s.order["subscription"], func(id string) (map[string]any, bool) {
		sub := s.subs[id]
		if sub == nil || (hasCustomer && sub.customer != cid) {
			return nil, false
		}
		if status == "" && sub.status == "canceled" {
			return nil, false
		}
		if status != "" && status != "all" && status != sub.status {
			return nil, false
		}
		return s.subJSON(sub, r.expand), true
	})
}

func (s *Server) updateSubscription(r *request, id string) (any, *apiError) {
	sub, ok := s.subs[id]
	if !ok {
		return nil, missing("subscription", id)
	}
	if sub.ended() {
		return nil, invalid("", "A canceled subscription can only update its cancellation_details and metadata.")
	}
	before := s.subJSON(sub, nil)
	next := *sub
	next.metadata = copyMeta(sub.metadata)
	next.items = nil
	for _, it := range sub.items {
		cp := *it
		next.items = append(next.items, &cp)
	}
	if err := s.parseItems(r, &next, true); err != nil {
		return nil, err
	}
	if err := s.applyDiscountParams(r, &next, sumLines(s.periodLines(&next))); err != nil {
		return nil, err
	}
	if v, ok := r.bool("cancel_at_period_end"); ok {
		next.cancelAtPeriodEnd = v
		next.cancelAt = 0
		if v {
			next.cancelAt = next.periodEnd
		}
	}
	// cancel_at: a timestamp schedules the cancellation, "" removes it
	// (https://docs.stripe.com/api/subscriptions/update#update_subscription-cancel_at).
	if v, ok := r.str("cancel_at"); ok {
		if v == "" {
			next.cancelAt, next.cancelAtPeriodEnd = 0, false
		} else if t, err := strconv.ParseInt(v, 10, 64); err != nil || t <= s.now.Unix() {
			return nil, invalid("cancel_at", "Invalid cancel_at: must be a Unix timestamp in the future.")
		} else {
			next.cancelAt, next.cancelAtPeriodEnd = t, false
		}
	}
	if v, ok := r.str("pause_collection"); ok && v == "" {
		next.pause = ""
	}
	if v, ok := r.str("pause_collection[behavior]"); ok {
		switch v {
		case "keep_as_draft", "mark_uncollectible", "void":
			next.pause = v
		default:
			return nil, invalid("pause_collection[behavior]", "Invalid pause_collection[behavior]: %s", v)
		}
	}
	if v, ok := r.str("collection_method"); ok {
		next.collectionMethod = v
	}
	if d, ok, err := r.int("days_until_due"); err != nil {
		return nil, err
	} else if ok {
		next.daysUntilDue = d
	}
	if m, ok := r.metadata(""); ok {
		next.metadata = applyMeta(next.metadata, m)
	}
	if err := s.parseSubscriptionTax(r, &next.tax, sub.customer); err != nil {
		return nil, err
	}
	if err := s.updateBillingDates(r, sub, &next); err != nil {
		return nil, err
	}
	next.indexedAt = s.now.Unix()
	proration, _ := r.str("proration_behavior")
	if proration == "" {
		proration = "create_prorations"
	}
	// proration_date computes the prorations as though the update were
	// made then
	// (https://docs.stripe.com/api/subscriptions/update#update_subscription-proration_date).
	at, hasAt, aerr := r.int("proration_date")
	if aerr != nil {
		return nil, aerr
	}
	if !hasAt {
		at = s.now.Unix()
	}
	// cancellation_details: scheduling a cancellation records it as
	// requested (with the request's comment and feedback); removing the
	// schedule clears it
	// (https://docs.stripe.com/api/subscriptions/object#subscription_object-cancellation_details).
	switch {
	case next.cancelAtPeriodEnd || next.cancelAt != 0:
		if (!sub.cancelAtPeriodEnd && sub.cancelAt == 0) || r.has("cancellation_details[comment]") || r.has("cancellation_details[feedback]") {
			next.cancellation = requestedCancellation(r, sub.cancellation)
		}
	default:
		next.cancellation = cancellationDetails{}
	}
	behavior, _ := r.str("payment_behavior")
	if behavior == "" {
		behavior = "allow_incomplete"
	}
	// An interval change resets the period and invoices at once (see
	// periodResets), as does billing_cycle_anchor=now (anchorResets).
	eff := s.updateEffect(sub, &next, proration, at, s.anchorResets(r, sub))
	charges := eff.immediate != nil && next.collectionMethod == "charge_automatically"
	// payment_behavior applies to updates that invoice and charge at once
	// (https://docs.stripe.com/api/subscriptions/update#update_subscription-payment_behavior,
	// "Pending updates" https://docs.stripe.com/billing/subscriptions/pending-updates):
	//   - allow_incomplete (default): the update is applied; if the payment
	//     fails the subscription becomes past_due;
	//   - default_incomplete: applied; the invoice's payment is not attempted
	//     (it awaits confirmation) and the subscription becomes past_due;
	//   - error_if_incomplete: if the payment fails Stripe answers 402 and
	//     applies nothing;
	//   - pending_if_incomplete: if the payment fails the changes wait in
	//     pending_update and the subscription keeps its items; they apply
	//     when the invoice is paid.
	if charges && (behavior == "error_if_incomplete" || behavior == "pending_if_incomplete") {
		owed := eff.immediate
		if amount := sumLines(owed); amount > 0 {
			if pm, code, decline := s.chargeOutcome(sub.customer); code != "" {
				if behavior == "error_if_incomplete" {
					s.charges = append(s.charges, Charge{Customer: sub.customer, Subscription: sub.id, PaymentMethod: pm,
						BillingReason: "subscription_update", Succeeded: false, At: s.now})
					return nil, &apiError{status: 402, Type: "card_error", Code: code, DeclineCode: decline, Message: "Your card was declined."}
				}
				// pending_if_incomplete: the invoice is made and attempted
				// on the unchanged subscription.
				in := s.newInvoice(r, sub, "subscription_update", owed)
				sub.prorations = nil
				sub.pending = next.items
				s.pay(r, in, false)
				s.emitUpdated(r, "customer.subscription.updated", before, s.subJSON(sub, nil))
				return s.subJSON(sub, r.expand), nil
			}
		}
	}
	*sub = next
	sub.pending = nil
	var in *invoice // an invoice this update makes at once
	switch {
	case eff.resets:
		in = s.resetPeriod(r, sub, eff.immediate)
	case eff.immediate != nil:
		in = s.newInvoice(r, sub, "subscription_update", eff.immediate)
		sub.prorations = nil
	default:
		sub.prorations = eff.pending
	}
	// Its payment follows payment_behavior, whichever change made it.
	if in != nil {
		switch {
		case !charges || in.status != "open" || in.amountDue == 0:
		case behavior == "default_incomplete":
			sub.status = "past_due"
		case !s.pay(r, in, false):
			sub.status = "past_due"
		}
	}
	s.emitUpdated(r, "customer.subscription.updated", before, s.subJSON(sub, nil))
	return s.subJSON(sub, r.expand), nil
}

func sumLines(lines []line) int64 {
	var n int64
	for _, l := range lines {
		n += l.amount
	}
	return n
}

// effect is what an update of a subscription bills.
type effect struct {
	// resets: the update starts a new period now (periodResets).
	resets bool
	// immediate are the lines of the invoice the update makes at once, nil
	// when it makes none.
	immediate []line
	// pending are the prorations left for the next invoice when none is
	// made at once.
	pending []line
}

// updateEffect computes what updating sub to next bills, with prorations
// computed at the time at ("Prorations",
// https://docs.stripe.com/billing/subscriptions/prorations): an interval
// change starts the new period at once and invoices it with the credit for
// the unused time (unless proration_behavior is none); always_invoice
// invoices the prorations at once; create_prorations leaves them for the
// next invoice; none drops them. A trialing subscription is not prorated.
// The update itself and the upcoming-invoice preview both call it.
func (s *Server) updateEffect(sub, next *subscription, proration string, at int64, anchorNow bool) effect {
	e := effect{pending: sub.prorations}
	prorations := s.prorationLines(sub, next, at)
	e.resets = s.periodResets(sub, next) || anchorNow
	switch {
	case e.resets:
		var unused []line
		if proration != "none" {
			unused = s.unusedTime(sub, at)
		}
		// The new period, less the unused time, is what is owed now.
		e.immediate = append(append(s.periodLines(next), unused...), sub.prorations...)
		e.pending = nil
	case len(prorations) == 0 || sub.status == "trialing":
	case proration == "always_invoice":
		e.immediate = append(append([]line(nil), sub.prorations...), prorations...)
		e.pending = nil
	case proration == "create_prorations":
		e.pending = append(append([]line(nil), sub.prorations...), prorations...)
	}
	return e
}

// prorationLines credits the unused time of the old items and charges the
// new ones for the rest of the period, as of at.
func (s *Server) prorationLines(old, next *subscription, at int64) []line {
	total := old.periodEnd - old.periodStart
	left := old.periodEnd - at
	if total <= 0 || left <= 0 {
		return nil
	}
	key := func(it *item) string { return it.price + "/" + itoa(it.quantity) }
	oldSet, newSet := map[string]*item{}, map[string]*item{}
	// A metered item is billed its usage in arrears: nothing to prorate.
	for _, it := range old.items {
		if p := s.prices[it.price]; p != nil && !p.metered() {
			oldSet[key(it)] = it
		}
	}
	for _, it := range next.items {
		if p := s.prices[it.price]; p != nil && !p.metered() {
			newSet[key(it)] = it
		}
	}
	var out []line
	for k, it := range oldSet {
		if _, same := newSet[k]; !same {
			amt := -s.itemAmount(old, it) * left / total
			out = append(out, line{amount: amt, proration: true, price: it.price, quantity: it.quantity, desc: "Unused time"})
		}
	}
	for k, it := range newSet {
		if _, same := oldSet[k]; !same {
			amt := s.itemAmount(next, it) * left / total
			out = append(out, line{amount: amt, proration: true, price: it.price, quantity: it.quantity, desc: "Remaining time"})
		}
	}
	return out
}

func (s *Server) cancelSubscription(r *request, id string) (any, *apiError) {
	sub, ok := s.subs[id]
	if !ok {
		return nil, missing("subscription", id)
	}
	if sub.ended() {
		return nil, &apiError{status: 404, Type: "invalid_request_error", Code: "resource_missing",
			Message: "No such subscription: '" + id + "'; it is already canceled."}
	}
	sub.cancellation = requestedCancellation(r, cancellationDetails{})
	invoiceNow, _ := r.bool("invoice_now")
	prorate, _ := r.bool("prorate")
	if prorate {
		left := sub.periodEnd - s.now.Unix()
		if total := sub.periodEnd - sub.periodStart; total > 0 && left > 0 && sub.status != "trialing" {
			for _, it := range sub.items {
				sub.prorations = append(sub.prorations, line{amount: -s.itemAmount(sub, it) * left / total,
					proration: true, price: it.price, quantity: it.quantity, desc: "Unused time"})
			}
		}
	}
	if invoiceNow && len(sub.prorations) > 0 {
		in := s.newInvoice(r, sub, "subscription_cycle", sub.prorations)
		in.billingReason = "manual"
		sub.prorations = nil
		s.pay(r, in, false)
	}
	s.endSubscription(r, sub, false)
	return s.subJSON(sub, r.expand), nil
}

func (s *Server) endSubscription(r *request, sub *subscription, expired bool) {
	sub.canceledAt = s.now.Unix()
	if expired {
		sub.status = "incomplete_expired"
	} else {
		sub.status = "canceled"
	}
	if in := s.invoices[sub.latestInvoice]; in != nil && in.status == "open" && expired {
		in.status, in.nextPaymentAttempt = "void", 0
		s.emit(r, "invoice.voided", s.invoiceJSON(in, false), nil)
	}
	s.emit(r, "customer.subscription.deleted", s.subJSON(sub, nil), nil)
}

func (s *Server) getInvoice(r *request, id string) (any, *apiError) {
	in, ok := s.invoices[id]
	if !ok {
		return nil, missing("invoice", id)
	}
	return s.invoiceJSON(in, r.expand["payment_intent"]), nil
}

func (s *Server) listInvoices(r *request) (any, *apiError) {
	sid, hasSub := r.str("subscription")
	// created, status and customer filters: finance.go.
	keep, err := invoiceFilter(r)
	if err != nil {
		return nil, err
	}
	return s.list(r, "/v1/invoices", s.order["invoice"], func(id string) (map[string]any, bool) {
		in := s.invoices[id]
		if (hasSub && in.subscription != sid) || !keep(in) {
			return nil, false
		}
		return s.invoiceJSON(in, false), true
	})
}

// embeddedLines is how many lines an invoice object embeds; the rest are
// read from /v1/invoices/{id}/lines
// (https://docs.stripe.com/api/invoices/object#invoice_object-lines: "a
// list of up to 10 invoice items ... if there are more, has_more is set").
const embeddedLines = 10

func (s *Server) lineJSON(in *invoice, i int) map[string]any {
	l := in.lines[i]
	var pj any
	if p, ok := s.prices[l.price]; ok {
		pj = p.json()
	}
	return map[string]any{"id": fmt.Sprintf("il_%s_%d", strings.TrimPrefix(in.id, "in_"), i), "object": "line_item",
		"amount": l.amount, "proration": l.proration, "price": pj, "quantity": l.quantity, "description": l.desc,
		"currency": in.currency, "type": "subscription"}
}

// listInvoiceLines pages through an invoice's lines in order
// (https://docs.stripe.com/api/invoices/invoice_lines).
func (s *Server) listInvoiceLines(r *request, id string) (any, *apiError) {
	in, ok := s.invoices[id]
	if !ok {
		return nil, missing("invoice", id)
	}
	limit, err := r.limit()
	if err != nil {
		return nil, err
	}
	after, _ := r.str("starting_after")
	start := 0
	if after != "" {
		start = -1
		for i := range in.lines {
			if s.lineJSON(in, i)["id"] == after {
				start = i + 1
			}
		}
		if start < 0 {
			return nil, invalid("starting_after", "No such line item: '%s'", after)
		}
	}
	data := []map[string]any{}
	for i := start; i < len(in.lines) && int64(len(data)) < limit; i++ {
		data = append(data, s.lineJSON(in, i))
	}
	hasMore := start+len(data) < len(in.lines)
	return map[string]any{"object": "list", "url": "/v1/invoices/" + id + "/lines", "has_more": hasMore, "data": data}, nil
}

// periodResets reports whether an update moves an active subscription to
// another billing interval. Stripe then starts the first full period of the
// new price at once and invoices it immediately, crediting the unused time
// of the old price unless proration_behavior is none ("Changing prices",
// https://docs.stripe.com/billing/subscriptions/change-price, and "How does
// Stripe handle subscription plan changes in the middle of a billing
// period?", https://support.stripe.com/questions/handling-subscription-changes:
// "if the new plan has a different billing frequency ... the first full
// period of the new plan begins immediately ... and the customer is
// charged"). A trialing subscription keeps its trial here.
func (s *Server) periodResets(old, next *subscription) bool {
	if old.status == "trialing" || len(next.items) == 0 {
		return false
	}
	i1, c1 := s.periodOf(old)
	i2, c2 := s.periodOf(next)
	return i1 != i2 || c1 != c2
}

// unusedTime credits the unused rest of the current period of sub's
// items, as of at.
func (s *Server) unusedTime(sub *subscription, at int64) []line {
	total := sub.periodEnd - sub.periodStart
	left := sub.periodEnd - at
	if total <= 0 || left <= 0 {
		return nil
	}
	var out []line
	for _, it := range sub.items {
		out = append(out, line{amount: -s.itemAmount(sub, it) * left / total, proration: true,
			price: it.price, quantity: it.quantity, desc: "Unused time"})
	}
	return out
}

// resetPeriod starts sub's first period of its new interval now (the
// billing cycle anchor moves to now) and invoices it at once with lines
// (updateEffect: the new period, the credits and any pending prorations).
// It returns the invoice; the caller pays it as payment_behavior says.
func (s *Server) resetPeriod(r *request, sub *subscription, lines []line) *invoice {
	interval, count := s.periodOf(sub)
	sub.periodStart = s.now.Unix()
	sub.periodEnd = addInterval(s.now, interval, count).Unix()
	// The anchor moves to now.
	sub.tax.anchor, sub.tax.anchored, sub.tax.anchorDay = s.now.Unix(), false, 0
	if sub.cancelAtPeriodEnd {
		sub.cancelAt = sub.periodEnd
	}
	sub.prorations = nil
	return s.newInvoice(r, sub, "subscription_update", lines)
}

// discountAmounts is the invoice's total_discount_amounts.
func discountAmounts(in *invoice) []any {
	if in.discountAmount == 0 {
		return []any{}
	}
	return []any{map[string]any{"amount": in.discountAmount, "discount": in.discountID}}
}
