package stripefake

import (
	"strconv"
	"time"
)

// trialWillEndNotice is how long before a trial ends Stripe sends
// customer.subscription.trial_will_end.
const trialWillEndNotice = 3 * 24 * time.Hour

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// AdvanceClock moves the test clock forward by d, running everything due on
// the way in time order, as Stripe's test clocks do: trial ends, period
// renewals (invoice, payment, past_due), payment retries (then the
// account's dunning setting: cancel, unpaid or past_due),
// cancel_at_period_end, and the expiry of incomplete subscriptions.
func (s *Server) AdvanceClock(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(d)
}

// advanceLocked is AdvanceClock with s.mu held.
func (s *Server) advanceLocked(d time.Duration) {
	target := s.now.Add(d).Unix()
	for {
		at, run := s.nextDue(target)
		if run == nil {
			break
		}
		if at > s.now.Unix() {
			s.now = time.Unix(at, 0)
		}
		run()
	}
	s.now = time.Unix(target, 0)
}

// nextDue finds the earliest action due at or before target.
func (s *Server) nextDue(target int64) (int64, func()) {
	best := int64(-1)
	var run func()
	consider := func(at int64, f func()) {
		if at != 0 && at <= target && (best < 0 || at < best) {
			best, run = at, f
		}
	}
	for _, id := range s.order["subscription"] {
		sub := s.subs[id]
		if sub == nil || sub.ended() {
			continue
		}
		switch sub.status {
		case "incomplete":
			consider(sub.created+int64(incompleteExpiry/time.Second), func() { s.endSubscription(nil, sub, true) })
		case "trialing", "active", "past_due", "unpaid":
			consider(sub.periodEnd, func() { s.renew(sub) })
		}
		if sub.cancelAt != 0 && !sub.cancelAtPeriodEnd && sub.cancelAt < sub.periodEnd {
			// A cancel_at inside the period ends the subscription then.
			consider(sub.cancelAt, func() { s.endSubscription(nil, sub, false) })
		}
		if sub.status == "trialing" && !sub.trialWillEndSent && sub.trialEnd != 0 {
			// Stripe announces the end of a trial three days before it
			// (for a trial shorter than that, on the next clock advance).
			consider(max(sub.trialEnd-int64(trialWillEndNotice/time.Second), sub.created), func() {
				sub.trialWillEndSent = true
				s.emit(nil, "customer.subscription.trial_will_end", s.subJSON(sub, nil), nil)
			})
		}
	}
	for _, id := range s.order["invoice"] {
		in := s.invoices[id]
		if in.status == "draft" && in.finalizeAt != 0 {
			consider(in.finalizeAt, func() { s.finalizeRenewal(in) })
			continue
		}
		if sub := s.subs[in.subscription]; sub != nil && sub.status == "unpaid" {
			// Stripe stops attempting an unpaid subscription's invoices
			// ("How subscriptions work", subscription statuses: unpaid
			// "invoices continue to be generated, but payments aren't
			// attempted").
			continue
		}
		if in.status == "open" && in.nextPaymentAttempt != 0 {
			consider(in.nextPaymentAttempt, func() { s.retry(in) })
		}
	}
	return best, run
}

// renew ends the current period of sub: cancel at period end, or start the
// next period with an invoice and a payment.
func (s *Server) renew(sub *subscription) {
	before := s.subJSON(sub, nil)
	if sub.cancelAtPeriodEnd {
		s.endSubscription(nil, sub, false)
		return
	}
	if sub.schedule != "" && s.schedulePeriodEnd(sub) {
		return
	}
	interval, count := s.periodOf(sub)
	start := time.Unix(sub.periodEnd, 0)
	wasTrial := sub.status == "trialing"
	sub.periodStart = sub.periodEnd
	sub.periodEnd = addInterval(start, interval, count).Unix()
	if sub.tax.anchored {
		sub.periodEnd = anchoredPeriodEnd(sub.tax.anchor, sub.periodStart, interval, count)
	}
	if wasTrial {
		sub.status = "active"
	}
	lines := s.renewalLines(sub)
	sub.prorations = nil
	in := s.newInvoice(nil, sub, "subscription_cycle", lines)
	s.emitUpdated(nil, "customer.subscription.updated", before, s.subJSON(sub, nil))
	if in.status == "open" {
		s.collectRenewal(sub, in)
	}
}

// finalizeRenewal finalizes a renewal invoice at the end of its draft hour
// and collects it.
func (s *Server) finalizeRenewal(in *invoice) {
	if in.locationMissing() {
		// Stripe cannot finalize an invoice with automatic tax whose
		// customer it cannot locate: invoice.finalization_failed with
		// last_finalization_error.code customer_tax_location_invalid; the
		// invoice stays a draft ("Collect customer addresses", Invoice
		// finalization errors).
		in.finalizeAt = 0
		s.emit(nil, "invoice.finalization_failed", s.invoiceJSON(in, false), nil)
		return
	}
	s.finalizeInvoice(nil, in)
	if sub := s.subs[in.subscription]; sub != nil && !sub.ended() {
		s.collectRenewal(sub, in)
	}
}

// collectRenewal attempts an open renewal invoice.
func (s *Server) collectRenewal(sub *subscription, in *invoice) {
	before := s.subJSON(sub, nil)
	switch {
	case sub.status == "unpaid":
		// An unpaid subscription keeps generating invoices, which Stripe
		// does not attempt (see nextDue).
		return
	case sub.collectionMethod == "charge_automatically" && in.status == "open":
		if s.pay(nil, in, false) {
			sub.status = "active"
		} else {
			sub.status = "past_due"
		}
	default:
		return
	}
	s.emitUpdated(nil, "customer.subscription.updated", before, s.subJSON(sub, nil))
}

// retry is an automatic payment retry of an open invoice.
func (s *Server) retry(in *invoice) {
	sub := s.subs[in.subscription]
	var before map[string]any
	if sub != nil {
		before = s.subJSON(sub, nil)
	}
	paid := s.pay(nil, in, true)
	if sub == nil || sub.ended() || sub.latestInvoice != in.id {
		return
	}
	switch {
	case paid:
		sub.status = "active"
		if sub.pending != nil {
			// The pending update's invoice is paid: its changes apply
			// (https://docs.stripe.com/billing/subscriptions/pending-updates-reference).
			sub.items, sub.pending = sub.pending, nil
		}
	case in.nextPaymentAttempt == 0:
		// The last retry failed: the account's dunning setting decides.
		s.retriesExhausted(sub)
		if sub.ended() {
			return // endSubscription sent customer.subscription.deleted
		}
	}
	s.emitUpdated(nil, "customer.subscription.updated", before, s.subJSON(sub, nil))
}
