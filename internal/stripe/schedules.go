package stripe

import (
	"context"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/stripe-operator/stripe-operator/internal/identity"
)

// SchedulePhaseItem is one item of a schedule phase.
type SchedulePhaseItem struct {
	PriceID  string
	Quantity int64
}

// SchedulePhase is one phase of a subscription schedule: its items apply
// from StartDate to EndDate (Unix seconds; EndDate 0 with Iterations set
// means that many billing periods of its items' interval).
type SchedulePhase struct {
	StartDate  int64
	EndDate    int64
	Iterations int64
	Items      []SchedulePhaseItem
	// TrialEnd keeps a trial in the phase (Unix seconds), 0 for none.
	TrialEnd int64
	// ProrationBehavior is how the change into this phase is prorated
	// (create_prorations, none, always_invoice).
	ProrationBehavior string
}

// SubscriptionSchedule is the part of a Stripe subscription schedule the
// operator reads (https://docs.stripe.com/api/subscription_schedules/object).
type SubscriptionSchedule struct {
	ID             string
	SubscriptionID string
	// Status is not_started, active, completed, released or canceled.
	Status      string
	EndBehavior string
	Phases      []SchedulePhase
	Metadata    map[string]string
}

// ScheduleUpdateParams replaces a schedule's phases. Stripe requires the
// current phase to be sent again with its start date unchanged; past phases
// may be left out.
type ScheduleUpdateParams struct {
	Phases []SchedulePhase
	// EndBehavior is release (the subscription goes on after the last
	// phase) or cancel.
	EndBehavior string
	// ProrationBehavior applies when the update changes the current phase.
	ProrationBehavior string
	Metadata          map[string]string
}

// Schedules is the subscription schedule part of the Stripe API
// (https://docs.stripe.com/billing/subscriptions/subscription-schedules).
type Schedules interface {
	// CreateScheduleFromSubscription puts an existing subscription under a
	// new schedule whose one phase is the subscription's current items for
	// the current period (from_subscription). Stripe refuses a
	// subscription that already has a schedule.
	CreateScheduleFromSubscription(ctx context.Context, owner Owner, subscriptionID string) (*SubscriptionSchedule, error)
	GetSubscriptionSchedule(ctx context.Context, id string) (*SubscriptionSchedule, error)
	UpdateSubscriptionSchedule(ctx context.Context, owner Owner, id string, p ScheduleUpdateParams) (*SubscriptionSchedule, error)
	// ReleaseSubscriptionSchedule detaches the schedule; the subscription
	// keeps its current items and goes on.
	ReleaseSubscriptionSchedule(ctx context.Context, owner Owner, id string) (*SubscriptionSchedule, error)
}

func toSchedule(s *stripego.SubscriptionSchedule) *SubscriptionSchedule {
	out := &SubscriptionSchedule{ID: s.ID, Status: string(s.Status), EndBehavior: string(s.EndBehavior), Metadata: s.Metadata}
	if s.Subscription != nil {
		out.SubscriptionID = s.Subscription.ID
	}
	for _, ph := range s.Phases {
		p := SchedulePhase{StartDate: ph.StartDate, EndDate: ph.EndDate, TrialEnd: ph.TrialEnd, ProrationBehavior: string(ph.ProrationBehavior)}
		for _, it := range ph.Items {
			item := SchedulePhaseItem{Quantity: it.Quantity}
			if it.Price != nil {
				item.PriceID = it.Price.ID
			}
			p.Items = append(p.Items, item)
		}
		out.Phases = append(out.Phases, p)
	}
	return out
}

// scheduleResult is what a write returned, read again when Stripe replayed
// an earlier answer.
func (c *Client) scheduleResult(ctx context.Context, s *stripego.SubscriptionSchedule) (*SubscriptionSchedule, error) {
	s, err := current(s.LastResponse, s, func() (*stripego.SubscriptionSchedule, error) {
		p := &stripego.SubscriptionScheduleParams{}
		setup(ctx, &p.Params, "")
		return c.sc().SubscriptionSchedules.Get(s.ID, p)
	})
	if err != nil {
		return nil, err
	}
	return toSchedule(s), nil
}

// CreateScheduleFromSubscription implements Schedules. It is guarded by
// state (a subscription holds at most one schedule, and the caller creates
// one only when the subscription it just read has none), so each attempt
// gets a fresh key.
func (c *Client) CreateScheduleFromSubscription(ctx context.Context, owner Owner, subscriptionID string) (*SubscriptionSchedule, error) {
	return callFor(ctx, c, "create subscription schedule", func(ctx context.Context) (*SubscriptionSchedule, error) {
		p := &stripego.SubscriptionScheduleParams{FromSubscription: stripego.String(subscriptionID)}
		setup(ctx, &p.Params, attemptKey(owner, "schedule-create"))
		s, err := c.sc().SubscriptionSchedules.New(p)
		if err != nil {
			return nil, err
		}
		return c.scheduleResult(ctx, s)
	})
}

// GetSubscriptionSchedule implements Schedules.
func (c *Client) GetSubscriptionSchedule(ctx context.Context, id string) (*SubscriptionSchedule, error) {
	return callFor(ctx, c, "get subscription schedule", func(ctx context.Context) (*SubscriptionSchedule, error) {
		p := &stripego.SubscriptionScheduleParams{}
		setup(ctx, &p.Params, "")
		s, err := c.sc().SubscriptionSchedules.Get(id, p)
		if err != nil {
			return nil, err
		}
		return toSchedule(s), nil
	})
}

// UpdateSubscriptionSchedule implements Schedules.
func (c *Client) UpdateSubscriptionSchedule(ctx context.Context, owner Owner, id string, p ScheduleUpdateParams) (*SubscriptionSchedule, error) {
	return callFor(ctx, c, "update subscription schedule", func(ctx context.Context) (*SubscriptionSchedule, error) {
		sp := &stripego.SubscriptionScheduleParams{}
		if p.EndBehavior != "" {
			sp.EndBehavior = stripego.String(p.EndBehavior)
		}
		if p.ProrationBehavior != "" {
			sp.ProrationBehavior = stripego.String(p.ProrationBehavior)
		}
		for _, ph := range p.Phases {
			pp := &stripego.SubscriptionSchedulePhaseParams{}
			if ph.StartDate != 0 {
				pp.StartDate = stripego.Int64(ph.StartDate)
			}
			if ph.EndDate != 0 {
				pp.EndDate = stripego.Int64(ph.EndDate)
			}
			if ph.Iterations != 0 {
				pp.Iterations = stripego.Int64(ph.Iterations)
			}
			if ph.TrialEnd != 0 {
				pp.TrialEnd = stripego.Int64(ph.TrialEnd)
			}
			if ph.ProrationBehavior != "" {
				pp.ProrationBehavior = stripego.String(ph.ProrationBehavior)
			}
			for _, it := range ph.Items {
				ip := &stripego.SubscriptionSchedulePhaseItemParams{Price: stripego.String(it.PriceID)}
				if it.Quantity > 0 {
					// 0: a metered item, which has no quantity.
					ip.Quantity = stripego.Int64(it.Quantity)
				}
				pp.Items = append(pp.Items, ip)
			}
			sp.Phases = append(sp.Phases, pp)
		}
		setMetadata(&sp.Params, identity.Metadata(owner, p.Metadata))
		setup(ctx, &sp.Params, attemptKey(owner, "schedule-update"))
		s, err := c.sc().SubscriptionSchedules.Update(id, sp)
		if err != nil {
			return nil, err
		}
		return c.scheduleResult(ctx, s)
	})
}

// ReleaseSubscriptionSchedule implements Schedules.
func (c *Client) ReleaseSubscriptionSchedule(ctx context.Context, owner Owner, id string) (*SubscriptionSchedule, error) {
	return callFor(ctx, c, "release subscription schedule", func(ctx context.Context) (*SubscriptionSchedule, error) {
		p := &stripego.SubscriptionScheduleReleaseParams{}
		setup(ctx, &p.Params, attemptKey(owner, "schedule-release"))
		s, err := c.sc().SubscriptionSchedules.Release(id, p)
		if err != nil {
			return nil, err
		}
		return c.scheduleResult(ctx, s)
	})
}
