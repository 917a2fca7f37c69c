package stripefake

import (
	"fmt"
	"time"
)

// The Dashboard* helpers change Stripe behind the operator's back, as a
// person in the Stripe Dashboard would, and emit the events Stripe would.

func (s *Server) dashboardSub(id string) (*subscription, error) {
	sub, ok := s.subs[id]
	if !ok {
		return nil, fmt.Errorf("no such subscription %s", id)
	}
	return sub, nil
}

// DashboardSetItemQuantity changes one item's quantity without proration.
func (s *Server) DashboardSetItemQuantity(subID, itemID string, qty int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.dashboardSub(subID)
	if err != nil {
		return err
	}
	before := s.subJSON(sub, nil)
	for _, it := range sub.items {
		if it.id == itemID {
			it.quantity = qty
			s.emitUpdated(nil, "customer.subscription.updated", before, s.subJSON(sub, nil))
			return nil
		}
	}
	return fmt.Errorf("no item %s on %s", itemID, subID)
}

// DashboardSetCancelAtPeriodEnd flips cancel_at_period_end.
func (s *Server) DashboardSetCancelAtPeriodEnd(subID string, v bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.dashboardSub(subID)
	if err != nil {
		return err
	}
	before := s.subJSON(sub, nil)
	sub.cancelAtPeriodEnd, sub.cancelAt = v, 0
	sub.cancellation = cancellationDetails{}
	if v {
		sub.cancelAt = sub.periodEnd
		sub.cancellation = requestedCancellation(nil, cancellationDetails{})
	}
	s.emitUpdated(nil, "customer.subscription.updated", before, s.subJSON(sub, nil))
	return nil
}

// DashboardCancelSubscription cancels a subscription now.
func (s *Server) DashboardCancelSubscription(subID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.dashboardSub(subID)
	if err != nil {
		return err
	}
	if !sub.ended() {
		sub.cancellation = requestedCancellation(nil, sub.cancellation)
		s.endSubscription(nil, sub, false)
	}
	return nil
}

// DashboardUpdateCustomer sets email, name or description.
func (s *Server) DashboardUpdateCustomer(id string, fields map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok || c.deleted {
		return fmt.Errorf("no such customer %s", id)
	}
	before := c.json()
	for k, v := range fields {
		switch k {
		case "email":
			c.email = v
		case "name":
			c.name = v
		case "description":
			c.description = v
		default:
			return fmt.Errorf("unsupported customer field %q", k)
		}
	}
	s.emitUpdated(nil, "customer.updated", before, c.json())
	return nil
}

// DashboardUpdateProduct sets name or description.
func (s *Server) DashboardUpdateProduct(id string, fields map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[id]
	if !ok {
		return fmt.Errorf("no such product %s", id)
	}
	before := p.json()
	for k, v := range fields {
		switch k {
		case "name":
			p.name = v
		case "description":
			p.description = v
		default:
			return fmt.Errorf("unsupported product field %q", k)
		}
	}
	s.emitUpdated(nil, "product.updated", before, p.json())
	return nil
}

// DashboardSetDefaultPaymentMethod attaches pm (a test token makes a new
// PaymentMethod, as in Stripe) and makes it the customer's default; open
// invoices of the customer's subscriptions are retried at the next clock
// advance (as Stripe retries on a new default card). It returns the
// attached PaymentMethod's ID.
func (s *Server) DashboardSetDefaultPaymentMethod(customerID, pm string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[customerID]
	if !ok || c.deleted {
		return "", fmt.Errorf("no such customer %s", customerID)
	}
	before := c.json()
	p, aerr := s.attachPaymentMethod(c, pm)
	if aerr != nil {
		return "", fmt.Errorf("attaching %s: %s", pm, aerr.Message)
	}
	c.defaultPM = p.id
	s.emitUpdated(nil, "customer.updated", before, c.json())
	for _, in := range s.invoices {
		if sub := s.subs[in.subscription]; sub != nil && (sub.status == "unpaid" || sub.ended()) {
			continue // Stripe no longer attempts these (see nextDue)
		}
		if in.customer == customerID && in.status == "open" && in.attempted && in.nextPaymentAttempt == 0 {
			in.nextPaymentAttempt = s.now.Unix() + 60
		}
	}
	return p.id, nil
}

// DashboardSetCancelAt schedules the subscription's cancellation at t (zero
// removes it), as the Dashboard's "Cancel on a custom date" does.
func (s *Server) DashboardSetCancelAt(subID string, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.dashboardSub(subID)
	if err != nil {
		return err
	}
	before := s.subJSON(sub, nil)
	sub.cancelAt, sub.cancelAtPeriodEnd = 0, false
	sub.cancellation = cancellationDetails{}
	if !t.IsZero() {
		sub.cancelAt = t.Unix()
		sub.cancellation = requestedCancellation(nil, cancellationDetails{})
	}
	s.emitUpdated(nil, "customer.subscription.updated", before, s.subJSON(sub, nil))
	return nil
}

// SubscriptionSnapshot is a subscription's state for assertions.
type SubscriptionSnapshot struct {
	ID                string
	Customer          string
	Status            string
	Items             []ItemSnapshot
	CancelAtPeriodEnd bool
	CancelAt          int64
	// CancellationReason is cancellation_details.reason.
	CancellationReason string
	PauseCollection    string
	Metadata           map[string]string
	LatestInvoice      InvoiceSnapshot
	Invoices           []InvoiceSnapshot
}

// ItemSnapshot is one subscription item.
type ItemSnapshot struct {
	ID       string
	Price    string
	Quantity int64
}

// InvoiceSnapshot is one invoice.
type InvoiceSnapshot struct {
	ID            string
	Status        string
	AmountDue     int64
	BillingReason string
	Prorations    int
	AttemptCount  int64
	// ExclusiveTax and InclusiveTax are the invoice's tax; AutomaticTax
	// its automatic_tax.status ("" when off).
	ExclusiveTax, InclusiveTax int64
	AutomaticTax               string
}

func (s *Server) invoiceSnap(in *invoice) InvoiceSnapshot {
	if in == nil {
		return InvoiceSnapshot{}
	}
	snap := InvoiceSnapshot{ID: in.id, Status: in.status, AmountDue: in.amountDue, BillingReason: in.billingReason, AttemptCount: in.attemptCount,
		ExclusiveTax: in.tax.exclusive, InclusiveTax: in.tax.inclusive, AutomaticTax: in.tax.status}
	for _, l := range in.lines {
		if l.proration {
			snap.Prorations++
		}
	}
	return snap
}

// Subscription returns a snapshot of a subscription and its invoices.
func (s *Server) Subscription(id string) (SubscriptionSnapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[id]
	if !ok {
		return SubscriptionSnapshot{}, false
	}
	snap := SubscriptionSnapshot{ID: sub.id, Customer: sub.customer, Status: sub.status, CancelAtPeriodEnd: sub.cancelAtPeriodEnd, CancelAt: sub.cancelAt,
		CancellationReason: sub.cancellation.reason,
		PauseCollection:    sub.pause, Metadata: copyMeta(sub.metadata), LatestInvoice: s.invoiceSnap(s.invoices[sub.latestInvoice])}
	for _, it := range sub.items {
		snap.Items = append(snap.Items, ItemSnapshot{ID: it.id, Price: it.price, Quantity: it.quantity})
	}
	for _, iid := range s.order["invoice"] {
		if in := s.invoices[iid]; in.subscription == id {
			snap.Invoices = append(snap.Invoices, s.invoiceSnap(in))
		}
	}
	return snap, true
}

// SubscriptionIDs lists every subscription ID in creation order.
func (s *Server) SubscriptionIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order["subscription"]...)
}
