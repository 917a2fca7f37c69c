package stripefake

import (
	"fmt"
	"net/http"
	"strings"
)

// What the financial report reads and what changes it: invoice list
// filters, charges and refunds, writing an invoice off and voiding it.
//
// Invoice statuses follow "Invoice States"
// (https://support.stripe.com/questions/invoice-states) and the invoice
// workflow (https://docs.stripe.com/invoicing/overview#invoice-statuses):
// draft → open → paid | uncollectible | void; uncollectible → paid | void;
// paid and void are final.

// invoiceFilter reads the created, status and customer filters of
// GET /v1/invoices (https://docs.stripe.com/api/invoices/list): created is
// a Unix time or a range of created[gt], [gte], [lt], [lte]; status one of
// draft, open, paid, uncollectible, void.
func invoiceFilter(r *request) (func(*invoice) bool, *apiError) {
	inRange, err := r.createdRange()
	if err != nil {
		return nil, err
	}
	status, hasStatus := r.str("status")
	if hasStatus {
		switch status {
		case "draft", "open", "paid", "uncollectible", "void":
		default:
			return nil, invalid("status", "Invalid status: must be one of draft, open, paid, uncollectible, or void")
		}
	}
	cus, hasCustomer := r.str("customer")
	return func(in *invoice) bool {
		return inRange(in.created) && (!hasStatus || in.status == status) && (!hasCustomer || in.customer == cus)
	}, nil
}

// createdRange is a list's created filter: created=<ts> or any of
// created[gt], created[gte], created[lt], created[lte]
// (https://docs.stripe.com/api/invoices/list#list_invoices-created).
func (r *request) createdRange() (func(int64) bool, *apiError) {
	type bound struct {
		key string
		ok  func(v, b int64) bool
	}
	var checks []func(int64) bool
	for _, b := range []bound{
		{"created", func(v, b int64) bool { return v == b }},
		{"created[gt]", func(v, b int64) bool { return v > b }},
		{"created[gte]", func(v, b int64) bool { return v >= b }},
		{"created[lt]", func(v, b int64) bool { return v < b }},
		{"created[lte]", func(v, b int64) bool { return v <= b }},
	} {
		n, ok, err := r.int(b.key)
		if err != nil {
			return nil, err
		}
		if ok {
			f := b.ok
			checks = append(checks, func(v int64) bool { return f(v, n) })
		}
	}
	return func(v int64) bool {
		for _, c := range checks {
			if !c(v) {
				return false
			}
		}
		return true
	}, nil
}

// refund is a Stripe refund (https://docs.stripe.com/api/refunds/object).
type refund struct {
	id, charge, currency, status, reason string
	amount, created                      int64
	metadata                             map[string]string
}

func (rf *refund) json() map[string]any {
	return map[string]any{"id": rf.id, "object": "refund", "amount": rf.amount, "charge": rf.charge, "currency": rf.currency,
		"created": rf.created, "status": rf.status, "reason": nullable(rf.reason), "metadata": copyMeta(rf.metadata),
		"payment_intent": nil, "balance_transaction": nil}
}

// chargeByID finds a payment attempt.
func (s *Server) chargeByID(id string) *Charge {
	for i := range s.charges {
		if s.charges[i].ID == id && id != "" {
			return &s.charges[i]
		}
	}
	return nil
}

// chargeJSON is a charge (https://docs.stripe.com/api/charges/object):
// amount_refunded and refunded follow its refunds.
func (s *Server) chargeJSON(c *Charge) map[string]any {
	status, failure := "succeeded", any(nil)
	if !c.Succeeded {
		status, failure = "failed", c.FailureCode
	}
	refunded := s.refunded[c.ID]
	var inv any
	if c.Invoice != "" {
		inv = c.Invoice
	}
	return map[string]any{"id": c.ID, "object": "charge", "amount": c.Amount, "amount_captured": map[bool]int64{true: c.Amount}[c.Succeeded],
		"amount_refunded": refunded, "refunded": c.Succeeded && refunded == c.Amount, "captured": c.Succeeded, "paid": c.Succeeded,
		"status": status, "failure_code": failure, "currency": c.Currency, "customer": nullable(c.Customer), "invoice": inv,
		"payment_method": nullable(c.PaymentMethod), "created": c.At.Unix(), "livemode": false, "metadata": map[string]string{}}
}

// dispatchFinance routes the endpoints of this file; ok is false for any
// other request.
func (s *Server) dispatchFinance(r *request) (out any, err *apiError, ok bool) {
	p, n := r.path, len(r.path)
	switch {
	case p[0] == "invoices" && n == 3 && p[2] == "mark_uncollectible" && r.method == http.MethodPost:
		out, err = s.markUncollectible(r, p[1])
	case p[0] == "invoices" && n == 3 && p[2] == "void" && r.method == http.MethodPost:
		out, err = s.voidInvoice(r, p[1])
	case p[0] == "refunds" && n == 1 && r.method == http.MethodPost:
		out, err = s.createRefund(r)
	case p[0] == "refunds" && n == 1 && r.method == http.MethodGet:
		out, err = s.listRefunds(r)
	case p[0] == "refunds" && n == 2 && r.method == http.MethodGet:
		rf, found := s.refunds[p[1]]
		if !found {
			return nil, missing("refund", p[1]), true
		}
		out = s.refundJSON(rf, r.expand["charge"])
	case p[0] == "charges" && n == 2 && r.method == http.MethodGet:
		c := s.chargeByID(p[1])
		if c == nil {
			return nil, missing("charge", p[1]), true
		}
		out = s.chargeJSON(c)
	default:
		return nil, nil, false
	}
	return out, err, true
}

// markUncollectible writes an open invoice off
// (https://docs.stripe.com/api/invoices/mark_uncollectible: "useful for
// keeping track of bad debts that can be written off for accounting
// purposes"). Stripe stops retrying it, and a past_due subscription whose
// latest invoice it is becomes active again ("Voiding or marking an
// invoice uncollectible",
// https://docs.stripe.com/billing/subscriptions/overview#voiding-invoice).
func (s *Server) markUncollectible(r *request, id string) (any, *apiError) {
	in, ok := s.invoices[id]
	if !ok {
		return nil, missing("invoice", id)
	}
	if in.status != "open" {
		return nil, invalid("", "You can only mark an open invoice as uncollectible; this invoice is %s.", in.status)
	}
	in.status, in.nextPaymentAttempt = "uncollectible", 0
	s.emit(r, "invoice.marked_uncollectible", s.invoiceJSON(in, false), nil)
	s.forgive(r, in)
	return s.invoiceJSON(in, false), nil
}

// voidInvoice voids an open or uncollectible invoice
// (https://docs.stripe.com/api/invoices/void: "Similar to deletion ...
// however it only applies to finalized invoices"; void is final).
func (s *Server) voidInvoice(r *request, id string) (any, *apiError) {
	in, ok := s.invoices[id]
	if !ok {
		return nil, missing("invoice", id)
	}
	if in.status != "open" && in.status != "uncollectible" {
		return nil, invalid("", "You can only void an open or uncollectible invoice; this invoice is %s.", in.status)
	}
	in.status, in.nextPaymentAttempt = "void", 0
	s.emit(r, "invoice.voided", s.invoiceJSON(in, false), nil)
	s.forgive(r, in)
	return s.invoiceJSON(in, false), nil
}

// forgive makes a past_due subscription active when its latest invoice no
// longer asks for payment.
func (s *Server) forgive(r *request, in *invoice) {
	sub := s.subs[in.subscription]
	if sub == nil || sub.latestInvoice != in.id || sub.status != "past_due" {
		return
	}
	before := s.subJSON(sub, nil)
	sub.status = "active"
	s.emitUpdated(r, "customer.subscription.updated", before, s.subJSON(sub, nil))
}

// createRefund refunds a succeeded charge, all of what is left or amount
// (https://docs.stripe.com/api/refunds/create: charge or payment_intent,
// amount "defaults to the entire charge amount"; a charge can be refunded
// in parts until nothing is left). Card refunds in test mode succeed at once
// (https://docs.stripe.com/testing#refunds); the invoice stays paid
// (https://docs.stripe.com/invoicing/overview: paid is final), and Stripe
// sends charge.refunded.
func (s *Server) createRefund(r *request) (any, *apiError) {
	chID, hasCharge := r.str("charge")
	if pi, ok := r.str("payment_intent"); ok && !hasCharge {
		in := s.invoices["in_"+strings.TrimPrefix(pi, "pi_")]
		if in == nil || in.charge == "" {
			return nil, missing("payment_intent", pi)
		}
		chID = in.charge
	}
	c := s.chargeByID(chID)
	if c == nil {
		return nil, missing("charge", chID)
	}
	if !c.Succeeded {
		return nil, invalid("charge", "Charge %s has no funds to refund: its payment failed.", chID)
	}
	left := c.Amount - s.refunded[chID]
	if left <= 0 {
		return nil, &apiError{status: 400, Type: "invalid_request_error", Code: "charge_already_refunded", Param: "charge",
			Message: fmt.Sprintf("Charge %s has already been refunded.", chID)}
	}
	amount, hasAmount, err := r.int("amount")
	if err != nil {
		return nil, err
	}
	if !hasAmount {
		amount = left
	}
	if amount < 1 || amount > left {
		return nil, invalid("amount", "Refund amount (%d) is greater than unrefunded amount on charge (%d).", amount, left)
	}
	reason, _ := r.str("reason")
	switch reason {
	case "", "duplicate", "fraudulent", "requested_by_customer":
	default:
		return nil, invalid("reason", "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer")
	}
	md, _ := r.metadata("")
	rf := &refund{id: s.newID("re"), charge: chID, currency: c.Currency, status: "succeeded", reason: reason,
		amount: amount, created: s.now.Unix(), metadata: applyMeta(nil, md)}
	if s.refunds == nil {
		s.refunds, s.refunded = map[string]*refund{}, map[string]int64{}
	}
	s.refunds[rf.id] = rf
	s.refunded[chID] += amount
	s.track("refund", rf.id)
	s.emit(r, "charge.refunded", s.chargeJSON(c), nil)
	return s.refundJSON(rf, r.expand["charge"]), nil
}

func (s *Server) refundJSON(rf *refund, expandCharge bool) map[string]any {
	out := rf.json()
	if expandCharge {
		if c := s.chargeByID(rf.charge); c != nil {
			out["charge"] = s.chargeJSON(c)
		}
	}
	return out
}

// listRefunds lists refunds newest first, filtered by created and charge
// (https://docs.stripe.com/api/refunds/list).
func (s *Server) listRefunds(r *request) (any, *apiError) {
	inRange, err := r.createdRange()
	if err != nil {
		return nil, err
	}
	ch, hasCharge := r.str("charge")
	return s.list(r, "/v1/refunds", s.order["refund"], func(id string) (map[string]any, bool) {
		rf := s.refunds[id]
		if !inRange(rf.created) || (hasCharge && rf.charge != ch) {
			return nil, false
		}
		return s.refundJSON(rf, r.expand["charge"]), true
	})
}

// DashboardRefund refunds amount (0: all that is left) of an invoice's
// payment, as "Refund payment" in the Dashboard does, and returns the
// refund's ID.
func (s *Server) DashboardRefund(invoiceID string, amount int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.invoices[invoiceID]
	if !ok || in.status != "paid" || in.charge == "" {
		return "", fmt.Errorf("invoice %s has no payment to refund", invoiceID)
	}
	r := &request{method: http.MethodPost, path: []string{"refunds"}, form: map[string][]string{"charge": {in.charge}}, expand: map[string]bool{}}
	if amount > 0 {
		r.form["amount"] = []string{itoa(amount)}
	}
	out, aerr := s.createRefund(r)
	if aerr != nil {
		return "", aerr
	}
	return out.(map[string]any)["id"].(string), nil
}

// DashboardMarkUncollectible writes an open invoice off, as "Change invoice
// status → Uncollectible" in the Dashboard does.
func (s *Server) DashboardMarkUncollectible(invoiceID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, aerr := s.markUncollectible(nil, invoiceID); aerr != nil {
		return aerr
	}
	return nil
}

// DashboardVoidInvoice voids an open or uncollectible invoice.
func (s *Server) DashboardVoidInvoice(invoiceID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, aerr := s.voidInvoice(nil, invoiceID); aerr != nil {
		return aerr
	}
	return nil
}

// InvoiceRecord is an invoice's state for tests that recompute reports.
type InvoiceRecord struct {
	ID, Customer, Subscription, Status, Currency, BillingReason string
	AmountDue, AmountPaid, AmountRemaining                      int64
	Attempted                                                   bool
	Created                                                     int64
}

// Invoices lists every invoice in creation order.
func (s *Server) Invoices() []InvoiceRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]InvoiceRecord, 0, len(s.order["invoice"]))
	for _, id := range s.order["invoice"] {
		in := s.invoices[id]
		out = append(out, InvoiceRecord{ID: in.id, Customer: in.customer, Subscription: in.subscription, Status: in.status,
			Currency: in.currency, BillingReason: in.billingReason, AmountDue: in.amountDue, AmountPaid: in.amountPaid,
			AmountRemaining: in.amountDue - in.amountPaid, Attempted: in.attempted, Created: in.created})
	}
	return out
}

// RefundRecord is a refund's state.
type RefundRecord struct {
	ID, Charge, Customer, Currency, Status string
	Amount, Created                        int64
}

// Refunds lists every refund in creation order.
func (s *Server) Refunds() []RefundRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RefundRecord
	for _, id := range s.order["refund"] {
		rf := s.refunds[id]
		rec := RefundRecord{ID: rf.id, Charge: rf.charge, Currency: rf.currency, Status: rf.status, Amount: rf.amount, Created: rf.created}
		if c := s.chargeByID(rf.charge); c != nil {
			rec.Customer = c.Customer
		}
		out = append(out, rec)
	}
	return out
}

// SubscriptionRecord is a subscription's state with its items' prices, for
// tests that recompute MRR.
type SubscriptionRecord struct {
	ID, Customer, Status string
	Metadata             map[string]string
	Items                []ItemRecord
}

// ItemRecord is one item with its price.
type ItemRecord struct {
	Price, Currency, Interval           string
	UnitAmount, Quantity, IntervalCount int64
}

// Subscriptions lists every subscription in creation order.
func (s *Server) Subscriptions() []SubscriptionRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SubscriptionRecord
	for _, id := range s.order["subscription"] {
		sub := s.subs[id]
		rec := SubscriptionRecord{ID: sub.id, Customer: sub.customer, Status: sub.status, Metadata: copyMeta(sub.metadata)}
		for _, it := range sub.items {
			p := s.prices[it.price]
			rec.Items = append(rec.Items, ItemRecord{Price: p.id, Currency: p.currency, Interval: p.interval,
				UnitAmount: p.unitAmount, Quantity: it.quantity, IntervalCount: p.intervalCount})
		}
		out = append(out, rec)
	}
	return out
}
