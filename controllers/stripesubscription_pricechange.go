package controllers

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// What a plan's priceChangePolicy does to a subscription whose item is on
// one of the plan's earlier prices (status.previousPriceIDs):
//
//   - Keep: the item stays on its price; that is no drift.
//   - AtNextRenewal, same interval: the item moves now with
//     proration_behavior none, which bills nothing before the renewal and
//     the new price from the renewal on ("Changing prices",
//     https://docs.stripe.com/billing/subscriptions/change-price).
//   - AtNextRenewal, another interval: an update would reset the billing
//     period and invoice at once, so the item stays on its price and a
//     subscription schedule moves it when the current period ends
//     (https://docs.stripe.com/billing/subscriptions/subscription-schedules).
//   - Immediately: the item moves now with the subscription's own
//     prorationBehavior.
//   - A price in another currency than the item's is never moved to,
//     whatever the policy: a Stripe customer bills in one currency.
//
// A new subscription is always created on the plan's current price.

// priceChangePass is what the policy asks of one pass.
type priceChangePass struct {
	// moves are the items that a schedule moves at the period end.
	moves []scheduledMove
	// schedule is the subscription's schedule as read or written this
	// pass, nil when not read.
	schedule *stripe.SubscriptionSchedule
	// scheduleNeeded: the schedule is missing or does not make the moves.
	scheduleNeeded bool
	// release is a schedule this operator made for a move nobody asks for
	// any more (the policy or the reference changed).
	release string
}

// scheduledMove is one item moving at the end of the period.
type scheduledMove struct {
	item     int // index into desired
	from, to string
	plan     string
}

// applyPriceChangePolicy pins each plan item on an earlier price that the
// policy keeps there (desired becomes that price, so it is neither drift
// nor a change), and notes the moves a schedule makes.
func (s *subscriptionScope) applyPriceChangePolicy(ctx context.Context) error {
	s.priceChange = priceChangePass{}
	for i := range s.desired {
		d := &s.desired[i]
		if d.PlanName == "" || len(d.PreviousPriceIDs) == 0 {
			continue
		}
		var have *stripe.SubscriptionItem
		onCurrent := false
		for j := range s.sub.Items {
			it := &s.sub.Items[j]
			switch {
			case it.PriceID == d.PriceID:
				onCurrent = true
			case have == nil && slices.Contains(d.PreviousPriceIDs, it.PriceID):
				have = it
			}
		}
		if onCurrent || have == nil {
			continue
		}
		from, err := s.r.priceInfo(ctx, have.PriceID)
		if err != nil {
			return fmt.Errorf("reading price %s: %w", have.PriceID, err)
		}
		to, err := s.r.priceInfo(ctx, d.PriceID)
		if err != nil {
			return fmt.Errorf("reading price %s: %w", d.PriceID, err)
		}
		sameInterval := from.interval == to.interval && max(from.intervalCount, 1) == max(to.intervalCount, 1)
		switch {
		case from.currency != to.currency || d.Policy == billingv1alpha1.PriceChangePolicyKeep:
			d.PriceID = have.PriceID
		case d.Policy == billingv1alpha1.PriceChangePolicyAtNextRenewal && sameInterval:
			d.MoveWithoutProration = true
		case d.Policy == billingv1alpha1.PriceChangePolicyAtNextRenewal:
			// A subscription that ends with its period has no renewal to
			// move at.
			if !s.sub.CancelAtPeriodEnd {
				s.priceChange.moves = append(s.priceChange.moves, scheduledMove{item: i, from: have.PriceID, to: d.PriceID, plan: d.PlanName})
			}
			d.PriceID = have.PriceID
		}
	}
	return nil
}

// observeSchedule finds out whether the subscription's schedule makes the
// moves (reading it only when status does not already say so), and whether
// a schedule this operator made is no longer wanted. Both are bookkeeping
// differences: the plan changed, not Stripe.
func (s *subscriptionScope) observeSchedule(ctx context.Context) error {
	pc := &s.priceChange
	prev := s.obj.Status.ScheduledPriceChange
	pending := prev != nil && prev.ScheduleID == s.sub.ScheduleID && unixOf(prev.At) > s.sub.CurrentPeriodStart
	if len(pc.moves) == 0 {
		if pending {
			pc.release = prev.ScheduleID
			s.diff.differences = append(s.diff.differences, difference{rollover: true,
				text: fmt.Sprintf("subscription schedule %s moves prices at the period end, which no plan's priceChangePolicy asks for any more", prev.ScheduleID)})
		}
		return nil
	}
	targets := s.moveTargets()
	if pending && slices.Equal(prev.PriceIDs, targets) && unixOf(prev.At) == s.sub.CurrentPeriodEnd {
		return nil // in place, as the last read saw it
	}
	if id := s.sub.ScheduleID; id != "" {
		sc, err := s.r.Stripe.GetSubscriptionSchedule(ctx, id)
		if err != nil {
			return fmt.Errorf("reading subscription schedule %s: %w", id, err)
		}
		s.guard.observedSchedule(sc)
		pc.schedule = sc
		if !s.ownSchedule(sc) {
			// Somebody else's schedule decides what happens at the period
			// end; the items stay where they are.
			s.r.event(s.obj, true, "ScheduleNotOwned", fmt.Sprintf("Subscription schedule %s was not made by the operator; it is left alone and the items stay on their prices (priceChangePolicy AtNextRenewal).", id))
			return nil
		}
		if next := nextPhase(sc, s.sub); next != nil && slices.Equal(phasePrices(next), targets) {
			return nil
		}
	}
	pc.scheduleNeeded = true
	for _, m := range pc.moves {
		s.diff.differences = append(s.diff.differences, difference{rollover: true,
			text: fmt.Sprintf("item %d is on %s, an earlier price of StripePlan %s; it moves to %s when the period ends on %s (priceChangePolicy AtNextRenewal)",
				m.item+1, m.from, m.plan, m.to, time.Unix(s.sub.CurrentPeriodEnd, 0).UTC().Format(time.RFC3339))})
	}
	return nil
}

// moveTargets are the prices of the subscription's items after the moves,
// in the order of its items.
func (s *subscriptionScope) moveTargets() []string {
	out := make([]string, 0, len(s.sub.Items))
	for _, it := range s.sub.Items {
		p := it.PriceID
		for _, m := range s.priceChange.moves {
			if m.from == it.PriceID {
				p = m.to
			}
		}
		out = append(out, p)
	}
	return out
}

// ownSchedule tells a schedule this operator made for this resource: it
// carries the resource's identity (ownershipOf, the rule every Stripe
// object's ownership follows), or it has the one phase that from_subscription
// makes and no metadata yet (a pass that crashed between the create and the
// update of its phases).
func (s *subscriptionScope) ownSchedule(sc *stripe.SubscriptionSchedule) bool {
	if own, _ := ownershipOf(s.owner, sc.Metadata); own == ownedHere {
		return true // it carries this resource's identity (a rebuilt cluster's too)
	}
	return len(sc.Metadata) == 0 && len(sc.Phases) == 1
}

// nextPhase is the schedule's phase that starts when the current period
// ends, nil when none.
func nextPhase(sc *stripe.SubscriptionSchedule, sub *stripe.Subscription) *stripe.SchedulePhase {
	if sc == nil || (sc.Status != "active" && sc.Status != "not_started") {
		return nil
	}
	for i := range sc.Phases {
		if sc.Phases[i].StartDate == sub.CurrentPeriodEnd {
			return &sc.Phases[i]
		}
	}
	return nil
}

func phasePrices(ph *stripe.SchedulePhase) []string {
	out := make([]string, 0, len(ph.Items))
	for _, it := range ph.Items {
		out = append(out, it.PriceID)
	}
	return out
}

// paramsEmpty reports whether the diff needs no subscription update (only
// schedule bookkeeping).
func (d *subscriptionDiff) paramsEmpty() bool {
	return reflect.ValueOf(d.params).IsZero()
}

// releaseUnwantedSchedule releases a schedule of ours whose moves no policy
// asks for any more, before any other write.
func (s *subscriptionScope) releaseUnwantedSchedule(ctx context.Context) error {
	id := s.priceChange.release
	if id == "" {
		return nil
	}
	if _, err := s.writes.ReleaseSubscriptionSchedule(ctx, s.owner, id); err != nil {
		return fmt.Errorf("releasing subscription schedule %s: %w", id, err)
	}
	s.sub.ScheduleID = ""
	s.r.event(s.obj, false, "PriceChangeUnscheduled", fmt.Sprintf("Released subscription schedule %s: no plan's priceChangePolicy asks for its move at the period end any more.", id))
	return nil
}

// scheduleMoves makes the subscription's schedule move the items when the
// current period ends: the current phase as Stripe has it (start unchanged,
// end at the period end), then one period of the new prices without
// proration, then release. A crash between the create and the update
// leaves a one-phase schedule of ours, which the next pass completes.
func (s *subscriptionScope) scheduleMoves(ctx context.Context) error {
	pc := &s.priceChange
	if !pc.scheduleNeeded {
		return nil
	}
	sc := pc.schedule
	var err error
	if sc == nil || sc.ID != s.sub.ScheduleID {
		if s.sub.ScheduleID != "" {
			sc, err = s.r.Stripe.GetSubscriptionSchedule(ctx, s.sub.ScheduleID)
			s.guard.observedSchedule(sc)
		} else {
			sc, err = s.writes.CreateScheduleFromSubscription(ctx, s.owner, s.sub.ID)
		}
		if err != nil {
			return fmt.Errorf("making a subscription schedule for %s: %w", s.sub.ID, err)
		}
	}
	start := s.sub.CurrentPeriodStart
	for _, ph := range sc.Phases {
		if ph.StartDate <= s.sub.CurrentPeriodStart || (ph.StartDate < s.sub.CurrentPeriodEnd && ph.EndDate >= s.sub.CurrentPeriodEnd) {
			start = ph.StartDate
		}
	}
	targets := s.moveTargets()
	var cur, next []stripe.SchedulePhaseItem
	for i, it := range s.sub.Items {
		cur = append(cur, stripe.SchedulePhaseItem{PriceID: it.PriceID, Quantity: it.Quantity})
		next = append(next, stripe.SchedulePhaseItem{PriceID: targets[i], Quantity: it.Quantity})
	}
	none := string(billingv1alpha1.ProrationBehaviorNone)
	sc, err = s.writes.UpdateSubscriptionSchedule(ctx, s.owner, sc.ID, stripe.ScheduleUpdateParams{
		EndBehavior: "release", ProrationBehavior: none,
		Phases: []stripe.SchedulePhase{
			// A trial in the current phase is sent back as it is.
			{StartDate: start, EndDate: s.sub.CurrentPeriodEnd, Items: cur, TrialEnd: trialEnd(s.sub)},
			{Iterations: 1, ProrationBehavior: none, Items: next},
		},
	})
	if err != nil {
		return fmt.Errorf("scheduling the price change of subscription %s: %w", s.sub.ID, err)
	}
	pc.schedule = sc
	s.sub.ScheduleID = sc.ID
	log.FromContext(ctx).Info("Scheduled a plan's price change at the period end", "schedule", sc.ID, "prices", targets)
	s.r.event(s.obj, false, "PriceChangeScheduled", fmt.Sprintf("Subscription schedule %s moves the subscription to %v when the period ends on %s; nothing is billed before then.",
		sc.ID, targets, time.Unix(s.sub.CurrentPeriodEnd, 0).UTC().Format(time.RFC3339)))
	return nil
}

// reportScheduledPriceChange writes status.scheduledPriceChange (this
// reconciler is its one writer): the move the schedule makes at the period
// end, as read or written this pass; the last value while the subscription
// still has that schedule and the move is still ahead; otherwise none.
func (s *subscriptionScope) reportScheduledPriceChange() {
	st := &s.obj.Status
	prev := st.ScheduledPriceChange
	switch {
	case s.fromStatus:
	case s.sub == nil || s.ended || s.sub.ScheduleID == "":
		st.ScheduledPriceChange = nil
	case s.priceChange.schedule != nil && s.priceChange.schedule.ID == s.sub.ScheduleID:
		st.ScheduledPriceChange = nil
		if next := nextPhase(s.priceChange.schedule, s.sub); next != nil {
			prices := phasePrices(next)
			if !slices.Equal(prices, itemPriceIDs(s.sub)) {
				st.ScheduledPriceChange = &billingv1alpha1.ScheduledPriceChange{ScheduleID: s.sub.ScheduleID, PriceIDs: prices, At: unixTime(next.StartDate)}
			}
		}
	case prev != nil && prev.ScheduleID == s.sub.ScheduleID && unixOf(prev.At) > s.sub.CurrentPeriodStart:
	default:
		st.ScheduledPriceChange = nil
	}
}

func itemPriceIDs(sub *stripe.Subscription) []string {
	out := make([]string, 0, len(sub.Items))
	for _, it := range sub.Items {
		out = append(out, it.PriceID)
	}
	return out
}

// trialEnd is the end of a running trial, 0 when none.
func trialEnd(sub *stripe.Subscription) int64 {
	if sub.Status == subStatusTrialing {
		return sub.TrialEnd
	}
	return 0
}
