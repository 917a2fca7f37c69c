package stripefake

import "time"

// Subscription schedules, as far as the operator uses them: a schedule made
// from an existing subscription, its phases replaced by an update, the
// switch of items at a phase end, release. Stripe's model
// (https://docs.stripe.com/billing/subscriptions/subscription-schedules):
// "When a phase starts, Stripe updates the subscription based on the next
// phase's attributes"; a schedule made with from_subscription has one phase,
// the subscription's current items for its current period, and end_behavior
// release; after the last phase, release leaves the subscription running
// on its own (https://docs.stripe.com/api/subscription_schedules/object).

type schedulePhase struct {
	start, end int64
	items      []*item
	proration  string
}

type subSchedule struct {
	id, subscription, customer, status, endBehavior string
	phases                                          []schedulePhase
	metadata                                        map[string]string
	created, releasedAt                             int64
}

func (s *Server) scheduleJSON(sc *subSchedule) map[string]any {
	phases := []any{}
	var current any
	for _, ph := range sc.phases {
		items := []any{}
		cur := ""
		for _, it := range ph.items {
			var pj any = it.price
			if p, ok := s.prices[it.price]; ok {
				pj, cur = p.id, p.currency
			}
			items = append(items, map[string]any{"price": pj, "plan": pj, "quantity": it.quantity, "metadata": map[string]string{}})
		}
		pb := ph.proration
		if pb == "" {
			pb = "create_prorations"
		}
		phases = append(phases, map[string]any{"start_date": ph.start, "end_date": ph.end, "items": items, "currency": cur,
			"proration_behavior": pb, "metadata": map[string]string{}, "add_invoice_items": []any{}})
		if sc.status == "active" && ph.start <= s.now.Unix() && s.now.Unix() < ph.end {
			current = map[string]any{"start_date": ph.start, "end_date": ph.end}
		}
	}
	var released any
	if sc.status == "released" {
		released = sc.subscription
	}
	var sub any
	if sc.status != "released" {
		sub = sc.subscription
	}
	return map[string]any{"id": sc.id, "object": "subscription_schedule", "customer": sc.customer, "subscription": sub,
		"status": sc.status, "end_behavior": sc.endBehavior, "phases": phases, "current_phase": current,
		"metadata": copyMeta(sc.metadata), "created": sc.created, "released_at": nullableInt(sc.releasedAt),
		"released_subscription": released, "livemode": false}
}

func nullableInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// dispatchSchedules serves /v1/subscription_schedules; s.mu is held.
func (s *Server) dispatchSchedules(r *request) (any, *apiError) {
	p, n := r.path, len(r.path)
	if s.schedules == nil {
		s.schedules = map[string]*subSchedule{}
	}
	switch {
	case n == 1 && r.method == "POST":
		return s.createSchedule(r)
	case n == 2 && r.method == "GET":
		sc, ok := s.schedules[p[1]]
		if !ok {
			return nil, missing("subscription_schedule", p[1])
		}
		return s.scheduleJSON(sc), nil
	case n == 2 && r.method == "POST":
		return s.updateSchedule(r, p[1])
	case n == 3 && p[2] == "release" && r.method == "POST":
		sc, ok := s.schedules[p[1]]
		if !ok {
			return nil, missing("subscription_schedule", p[1])
		}
		if sc.status != "active" && sc.status != "not_started" {
			return nil, invalid("", "You cannot release a subscription schedule that is currently in the `%s` status. It must be in `not_started` or `active`.", sc.status)
		}
		s.releaseSchedule(r, sc)
		return s.scheduleJSON(sc), nil
	}
	return nil, invalid("", "Unrecognized request URL (%s: /v1/subscription_schedules).", r.method)
}

// createSchedule supports from_subscription only, which "cannot be combined
// with other parameters such as phases"
// (https://docs.stripe.com/api/subscription_schedules/create#create_subscription_schedule-from_subscription).
func (s *Server) createSchedule(r *request) (any, *apiError) {
	sid, ok := r.str("from_subscription")
	if !ok {
		return nil, invalid("from_subscription", "This test-mode Stripe creates subscription schedules from_subscription only.")
	}
	if len(r.indexed("phases")) > 0 {
		return nil, invalid("phases", "You cannot set `phases` if `from_subscription` is set.")
	}
	sub, ok := s.subs[sid]
	if !ok {
		return nil, missing("subscription", sid)
	}
	if sub.ended() {
		return nil, invalid("from_subscription", "You cannot migrate a subscription that is canceled.")
	}
	if sub.schedule != "" {
		return nil, invalid("from_subscription", "You cannot migrate a subscription that is already attached to a schedule: `%s`.", sub.schedule)
	}
	sc := &subSchedule{id: s.newID("sub_sched"), subscription: sub.id, customer: sub.customer, status: "active",
		endBehavior: "release", metadata: map[string]string{}, created: s.now.Unix()}
	ph := schedulePhase{start: sub.periodStart, end: sub.periodEnd}
	for _, it := range sub.items {
		cp := *it
		ph.items = append(ph.items, &cp)
	}
	sc.phases = []schedulePhase{ph}
	s.schedules[sc.id] = sc
	s.track("subscription_schedule", sc.id)
	before := s.subJSON(sub, nil)
	sub.schedule = sc.id
	s.emit(r, "subscription_schedule.created", s.scheduleJSON(sc), nil)
	s.emitUpdated(r, "customer.subscription.updated", before, s.subJSON(sub, nil))
	return s.scheduleJSON(sc), nil
}

// updateSchedule replaces the phases. The current phase must be sent again
// with its start date ("You can't change the start_date of the current
// phase"); each phase starts where the previous one ends; a phase ends at
// end_date or after iterations of its items' interval; a phase's items share
// one currency and interval ("For a particular phase, all of its plans must
// have the same interval, interval_count, and currency"), the customer's.
func (s *Server) updateSchedule(r *request, id string) (any, *apiError) {
	sc, ok := s.schedules[id]
	if !ok {
		return nil, missing("subscription_schedule", id)
	}
	if sc.status != "active" && sc.status != "not_started" {
		return nil, invalid("", "You cannot update a subscription schedule that is currently in the `%s` status.", sc.status)
	}
	if v, ok := r.str("end_behavior"); ok {
		if v != "release" && v != "cancel" {
			return nil, invalid("end_behavior", "Invalid end_behavior: %s", v)
		}
		sc.endBehavior = v
	}
	if m, ok := r.metadata(""); ok {
		sc.metadata = applyMeta(sc.metadata, m)
	}
	idx := r.indexed("phases")
	if len(idx) == 0 {
		return s.scheduleJSON(sc), nil
	}
	now := s.now.Unix()
	var cur *schedulePhase
	for i := range sc.phases {
		if sc.phases[i].start <= now && now < sc.phases[i].end {
			cur = &sc.phases[i]
		}
	}
	var phases []schedulePhase
	prevEnd := int64(0)
	for k, i := range idx {
		key := "phases[" + i + "]"
		var ph schedulePhase
		start, hasStart, err := r.int(key + "[start_date]")
		if err != nil {
			return nil, err
		}
		switch {
		case hasStart:
			ph.start = start
		case k > 0:
			ph.start = prevEnd
		default:
			return nil, invalid(key+"[start_date]", "The first phase needs a start_date.")
		}
		if k == 0 && cur != nil && ph.start != cur.start {
			return nil, invalid(key+"[start_date]", "You can not modify the start date of the current phase.")
		}
		if k > 0 && ph.start != prevEnd {
			return nil, invalid(key+"[start_date]", "The start_date of a phase must equal the end_date of the previous phase.")
		}
		ph.proration, _ = r.str(key + "[proration_behavior]")
		var first *price
		for _, j := range r.indexed(key + "[items]") {
			ik := key + "[items][" + j + "]"
			pid, _ := r.str(ik + "[price]")
			p, ok := s.prices[pid]
			if !ok {
				return nil, missing("price", pid)
			}
			q, hasQ, err := r.int(ik + "[quantity]")
			if err != nil {
				return nil, err
			}
			if !hasQ {
				q = 1
			}
			if first != nil && (p.currency != first.currency || p.interval != first.interval || p.intervalCount != first.intervalCount) {
				return nil, invalid(ik+"[price]", "For a particular phase, all of its `plans` must have the same `interval`, `interval_count`, and `currency`.")
			}
			if first == nil {
				first = p
			}
			ph.items = append(ph.items, &item{id: s.newID("si"), price: pid, quantity: q})
		}
		if first == nil {
			return nil, invalid(key+"[items]", "Missing required param: %s[items].", key)
		}
		if c := s.customers[sc.customer]; c != nil && c.currency != "" && c.currency != first.currency {
			return nil, combinedCurrencies(c.currency)
		}
		end, hasEnd, err := r.int(key + "[end_date]")
		if err != nil {
			return nil, err
		}
		iter, hasIter, err := r.int(key + "[iterations]")
		if err != nil {
			return nil, err
		}
		switch {
		case hasEnd && hasIter:
			return nil, invalid(key+"[iterations]", "You may only specify one of these parameters: end_date, iterations.")
		case hasEnd:
			ph.end = end
		case hasIter && iter > 0:
			t := timeOf(ph.start)
			ph.end = addInterval(t, first.interval, first.intervalCount*iter).Unix()
		default:
			return nil, invalid(key+"[end_date]", "Each phase needs an end_date or iterations.")
		}
		if ph.end <= ph.start {
			return nil, invalid(key+"[end_date]", "A phase's end_date must be after its start_date.")
		}
		prevEnd = ph.end
		phases = append(phases, ph)
	}
	if phases[len(phases)-1].end <= now {
		return nil, invalid("phases", "The last phase must end in the future.")
	}
	sc.phases = phases
	s.emit(r, "subscription_schedule.updated", s.scheduleJSON(sc), nil)
	return s.scheduleJSON(sc), nil
}

// releaseSchedule detaches the schedule; the subscription goes on as it is.
func (s *Server) releaseSchedule(r *request, sc *subSchedule) {
	sc.status, sc.releasedAt = "released", s.now.Unix()
	if sub := s.subs[sc.subscription]; sub != nil && sub.schedule == sc.id {
		sub.schedule = ""
	}
	s.emit(r, "subscription_schedule.released", s.scheduleJSON(sc), nil)
}

// schedulePeriodEnd runs at the end of sub's period, before its renewal:
// the phase that starts then replaces the subscription's items (keeping the
// item IDs in order), so the renewal invoices the new price and its
// interval sets the new period; when no phase follows the one that ended,
// the schedule ends by its end_behavior (release).
func (s *Server) schedulePeriodEnd(sub *subscription) (ended bool) {
	sc := s.schedules[sub.schedule]
	if sc == nil || sc.status != "active" {
		return false
	}
	at := sub.periodEnd
	for _, ph := range sc.phases {
		if ph.start == at {
			var items []*item
			for i, it := range ph.items {
				cp := *it
				if i < len(sub.items) {
					cp.id = sub.items[i].id
				}
				items = append(items, &cp)
			}
			sub.items = items
			return false
		}
	}
	if last := sc.phases[len(sc.phases)-1]; last.end <= at {
		if sc.endBehavior == "cancel" {
			sc.status = "completed"
			sub.schedule = ""
			s.endSubscription(nil, sub, false)
			return true
		}
		s.releaseSchedule(nil, sc)
	}
	return false
}

func timeOf(unix int64) time.Time { return time.Unix(unix, 0) }
