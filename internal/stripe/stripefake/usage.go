package stripefake

import (
	"fmt"
	"strconv"
)

// Usage records (API 2023-10-16, "Usage-based billing: record usage",
// https://docs.stripe.com/api/usage_records/create): the application
// reports usage on a metered subscription item with
// POST /v1/subscription_items/{id}/usage_records (quantity, timestamp,
// action increment or set); the period's usage is aggregated as the
// price's aggregate_usage says (sum, last_during_period, last_ever, max)
// and billed in arrears on the invoice that ends the period
// (https://docs.stripe.com/products-prices/pricing-models#usage-based-pricing).
// From API version 2025-03-31.basil on, Stripe removed usage records and
// metered prices need a billing meter; this fake speaks 2023-10-16.

type usageRecord struct {
	id        string
	quantity  int64
	timestamp int64
}

// createUsageRecord serves POST /v1/subscription_items/{id}/usage_records.
func (s *Server) createUsageRecord(r *request, itemID string) (any, *apiError) {
	sub, it := s.findItem(itemID)
	if it == nil {
		return nil, missing("subscription_item", itemID)
	}
	if p := s.prices[it.price]; p == nil || !p.metered() {
		return nil, invalid("subscription_item", "Usage records can only be created for subscription items on a price with usage_type=metered.")
	}
	if sub.ended() {
		return nil, invalid("subscription_item", "Usage cannot be reported on a canceled subscription.")
	}
	q, ok, err := r.int("quantity")
	if err != nil {
		return nil, err
	}
	if !ok || q < 0 {
		return nil, invalid("quantity", "Missing required param: quantity.")
	}
	ts := s.now.Unix()
	if v, ok := r.str("timestamp"); ok && v != "now" {
		n, e := strconv.ParseInt(v, 10, 64)
		if e != nil {
			return nil, invalid("timestamp", "Invalid timestamp: %s", v)
		}
		ts = n
	}
	action, _ := r.str("action")
	rec := s.recordUsage(it, q, ts, action)
	return map[string]any{"id": rec.id, "object": "usage_record", "livemode": false, "quantity": rec.quantity,
		"subscription_item": itemID, "timestamp": rec.timestamp}, nil
}

// recordUsage adds a record: increment (the default) adds one; set
// replaces the usage at the same timestamp.
func (s *Server) recordUsage(it *item, q, ts int64, action string) usageRecord {
	rec := usageRecord{id: s.newID("mbur"), quantity: q, timestamp: ts}
	if action == "set" {
		kept := it.usage[:0]
		for _, u := range it.usage {
			if u.timestamp != ts {
				kept = append(kept, u)
			}
		}
		it.usage = kept
	}
	it.usage = append(it.usage, rec)
	return rec
}

func (s *Server) findItem(itemID string) (*subscription, *item) {
	for _, id := range s.order["subscription"] {
		sub := s.subs[id]
		if sub == nil {
			continue
		}
		for _, it := range sub.items {
			if it.id == itemID {
				return sub, it
			}
		}
	}
	return nil, nil
}

// billUsage aggregates the item's usage reported before the current period
// started (the period being billed) and removes it; last_ever keeps the
// last record for the periods after.
func (s *Server) billUsage(sub *subscription, it *item) int64 {
	p := s.prices[it.price]
	var billed, kept []usageRecord
	for _, u := range it.usage {
		if u.timestamp < sub.periodStart {
			billed = append(billed, u)
		} else {
			kept = append(kept, u)
		}
	}
	var n int64
	var last usageRecord
	for i, u := range billed {
		switch p.terms.aggregateUsage {
		case "max":
			n = max(n, u.quantity)
		case "last_during_period", "last_ever":
			if i == 0 || u.timestamp >= last.timestamp {
				last = u
				n = u.quantity
			}
		default: // sum
			n += u.quantity
		}
	}
	if p.terms.aggregateUsage == "last_ever" && len(billed) > 0 {
		last.timestamp = sub.periodStart
		kept = append([]usageRecord{last}, kept...)
	}
	it.usage = kept
	return n
}

// ReportUsage reports usage on a metered subscription item as an
// application does through the API (action increment or set), at the
// test clock's time.
func (s *Server) ReportUsage(itemID string, quantity int64, action string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, it := s.findItem(itemID)
	if it == nil {
		return fmt.Errorf("no subscription item %s", itemID)
	}
	if p := s.prices[it.price]; p == nil || !p.metered() {
		return fmt.Errorf("item %s is not on a metered price", itemID)
	}
	s.recordUsage(it, quantity, s.now.Unix(), action)
	return nil
}

// SetCustomerCurrency gives a customer its currency as its first invoice
// in that currency would (a customer's currency is set by its first
// invoice or subscription and cannot change,
// https://support.stripe.com/questions/setting-a-customers-default-currency).
func (s *Server) SetCustomerCurrency(customerID, currency string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[customerID]
	if !ok || c.deleted {
		return fmt.Errorf("no such customer %s", customerID)
	}
	if c.currency != "" && c.currency != currency {
		return fmt.Errorf("customer %s already bills in %s", customerID, c.currency)
	}
	c.currency = currency
	return nil
}
