package stripe

import (
	"context"
	"errors"

	stripego "github.com/stripe/stripe-go/v76"
)

// InlinePrice is a price given inline (price_data) for a price that does
// not exist yet, such as a plan's changed price in a preview.
type InlinePrice struct {
	ProductID     string
	Currency      string
	UnitAmount    int64
	Interval      string
	IntervalCount int64
}

// UpcomingItem is one item of a proposed subscription: ID names an
// existing item (si_...), "" adds one; Deleted removes ID. Exactly one of
// PriceID and Price is set unless Deleted.
type UpcomingItem struct {
	ID       string
	PriceID  string
	Price    *InlinePrice
	Quantity int64
	Deleted  bool
}

// UpcomingParams asks Stripe for the invoice a proposed change would make
// (GET /v1/invoices/upcoming at API version 2023-10-16,
// https://docs.stripe.com/api/invoices/upcoming). With SubscriptionID it
// previews a change of that subscription; without, CustomerID and Items
// preview a new subscription's first invoice.
type UpcomingParams struct {
	CustomerID     string
	SubscriptionID string
	Items          []UpcomingItem
	// ProrationBehavior is subscription_proration_behavior ("" leaves
	// Stripe's default, create_prorations).
	ProrationBehavior string
	// ProrationDate is subscription_proration_date (Unix seconds, 0: now):
	// the time the prorations are computed at.
	ProrationDate int64
	// TrialEnd is subscription_trial_end (Unix seconds, 0: none).
	TrialEnd int64
	// CancelAtPeriodEnd is subscription_cancel_at_period_end (nil: leave).
	CancelAtPeriodEnd *bool
}

// UpcomingLine is one line of an upcoming invoice.
type UpcomingLine struct {
	Description string
	PriceID     string
	Quantity    int64
	Amount      int64
	Proration   bool
	PeriodStart int64
	PeriodEnd   int64
}

// UpcomingInvoice is the invoice Stripe would make next.
type UpcomingInvoice struct {
	Currency      string
	AmountDue     int64
	Total         int64
	Subtotal      int64
	BillingReason string
	// PeriodStart and PeriodEnd are the invoice's period; Created is when
	// Stripe would make it, NextPaymentAttempt when it would charge.
	PeriodStart        int64
	PeriodEnd          int64
	Created            int64
	NextPaymentAttempt int64
	Lines              []UpcomingLine
	// MoreLines: the invoice has more lines than the ones embedded (10).
	MoreLines bool
	// AnsweredAt is Stripe's time of the answer (its Date header, Unix
	// seconds), 0 when unknown: the time a proration date defaults to.
	AnsweredAt int64
}

// Previews is the read-only part of the Stripe API a billing preview uses.
// It holds no write: a preview never changes anything in Stripe.
type Previews interface {
	GetSubscription(ctx context.Context, id string) (*Subscription, error)
	GetPrice(ctx context.Context, id string) (*Price, error)
	GetCustomer(ctx context.Context, id string) (*Customer, error)
	// GetTestClock reads the test clock a test-mode customer is on: its
	// frozen time is Stripe's "now" for that customer.
	GetTestClock(ctx context.Context, id string) (*TestClock, error)
	// UpcomingInvoice returns the invoice Stripe would make next under p,
	// nil when there is none (Stripe's invoice_upcoming_none: the
	// subscription ends without another invoice).
	UpcomingInvoice(ctx context.Context, p UpcomingParams) (*UpcomingInvoice, error)
}

var _ Previews = (*Client)(nil)

// UpcomingInvoice implements Previews. It is a GET: no idempotency key.
func (c *Client) UpcomingInvoice(ctx context.Context, p UpcomingParams) (*UpcomingInvoice, error) {
	var out *UpcomingInvoice
	err := c.call(ctx, "upcoming invoice", func(ctx context.Context) error {
		up := &stripego.InvoiceUpcomingParams{}
		setup(ctx, &up.Params, "")
		if p.CustomerID != "" {
			up.Customer = stripego.String(p.CustomerID)
		}
		if p.SubscriptionID != "" {
			up.Subscription = stripego.String(p.SubscriptionID)
		}
		for _, it := range p.Items {
			ip := &stripego.SubscriptionItemsParams{}
			if it.ID != "" {
				ip.ID = stripego.String(it.ID)
			}
			if it.Deleted {
				ip.Deleted = stripego.Bool(true)
				up.SubscriptionItems = append(up.SubscriptionItems, ip)
				continue
			}
			switch {
			case it.Price != nil:
				ip.PriceData = &stripego.SubscriptionItemPriceDataParams{
					Currency: stripego.String(it.Price.Currency), Product: stripego.String(it.Price.ProductID),
					UnitAmount: stripego.Int64(it.Price.UnitAmount),
					Recurring: &stripego.SubscriptionItemPriceDataRecurringParams{
						Interval: stripego.String(it.Price.Interval), IntervalCount: stripego.Int64(max(it.Price.IntervalCount, 1))},
				}
			case it.PriceID != "":
				ip.Price = stripego.String(it.PriceID)
			}
			if it.Quantity > 0 {
				ip.Quantity = stripego.Int64(it.Quantity)
			}
			up.SubscriptionItems = append(up.SubscriptionItems, ip)
		}
		if p.ProrationBehavior != "" {
			up.SubscriptionProrationBehavior = stripego.String(p.ProrationBehavior)
		}
		if p.ProrationDate != 0 {
			up.SubscriptionProrationDate = stripego.Int64(p.ProrationDate)
		}
		if p.TrialEnd != 0 {
			up.SubscriptionTrialEnd = stripego.Int64(p.TrialEnd)
		}
		if p.CancelAtPeriodEnd != nil {
			up.SubscriptionCancelAtPeriodEnd = stripego.Bool(*p.CancelAtPeriodEnd)
		}
		in, err := c.sc().Invoices.Upcoming(up)
		if err != nil {
			var se *stripego.Error
			if errors.As(err, &se) && se.Code == stripego.ErrorCodeInvoiceUpcomingNone {
				return nil // no upcoming invoice: out stays nil
			}
			return err
		}
		out = toUpcoming(in)
		out.AnsweredAt = answeredAt(in.LastResponse)
		return nil
	})
	return out, err
}

func toUpcoming(in *stripego.Invoice) *UpcomingInvoice {
	out := &UpcomingInvoice{Currency: string(in.Currency), AmountDue: in.AmountDue, Total: in.Total, Subtotal: in.Subtotal,
		BillingReason: string(in.BillingReason), PeriodStart: in.PeriodStart, PeriodEnd: in.PeriodEnd, Created: in.Created,
		NextPaymentAttempt: in.NextPaymentAttempt}
	if in.Lines != nil {
		out.MoreLines = in.Lines.HasMore
		for _, l := range in.Lines.Data {
			line := UpcomingLine{Description: l.Description, Quantity: l.Quantity, Amount: l.Amount, Proration: l.Proration}
			if l.Price != nil {
				line.PriceID = l.Price.ID
			}
			if l.Period != nil {
				line.PeriodStart, line.PeriodEnd = l.Period.Start, l.Period.End
			}
			out.Lines = append(out.Lines, line)
		}
	}
	return out
}
