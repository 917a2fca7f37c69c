package stripe

import (
	"context"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/stripe-operator/stripe-operator/internal/identity"
)

// subscriptionExpand is what every subscription read and write expands.
var subscriptionExpand = []string{"latest_invoice", "latest_invoice.payment_intent"}

func toSubscription(s *stripego.Subscription) *Subscription {
	out := &Subscription{
		ID: s.ID, Status: string(s.Status),
		CurrentPeriodStart: s.CurrentPeriodStart, CurrentPeriodEnd: s.CurrentPeriodEnd,
		CancelAtPeriodEnd: s.CancelAtPeriodEnd, CancelAt: s.CancelAt, CanceledAt: s.CanceledAt,
		TrialEnd: s.TrialEnd, CollectionMethod: string(s.CollectionMethod), DaysUntilDue: s.DaysUntilDue,
		Metadata: s.Metadata, Created: s.Created, Currency: string(s.Currency),
	}
	if s.Customer != nil {
		out.CustomerID = s.Customer.ID
	}
	if s.PauseCollection != nil {
		out.PauseCollection = string(s.PauseCollection.Behavior)
	}
	if s.Schedule != nil {
		out.ScheduleID = s.Schedule.ID
	}
	if s.Items != nil {
		for _, it := range s.Items.Data {
			item := SubscriptionItem{ID: it.ID, Quantity: it.Quantity}
			if it.Price != nil {
				item.Price = priceFromJSON(it.Price, nil, false)
				item.PriceID, item.UnitAmount, item.Currency = it.Price.ID, it.Price.UnitAmount, string(it.Price.Currency)
				if it.Price.Recurring != nil {
					item.Interval, item.IntervalCount = string(it.Price.Recurring.Interval), it.Price.Recurring.IntervalCount
				}
			}
			out.Items = append(out.Items, item)
		}
	}
	if s.LatestInvoice != nil && s.LatestInvoice.ID != "" {
		out.LatestInvoice = toInvoice(s.LatestInvoice)
	}
	out.Discount = toDiscount(s.Discount)
	if d := s.CancellationDetails; d != nil && (d.Reason != "" || d.Feedback != "" || d.Comment != "") {
		out.Cancellation = &CancellationDetails{Reason: string(d.Reason), Feedback: string(d.Feedback), Comment: d.Comment}
	}
	return out
}

func toInvoice(in *stripego.Invoice) *Invoice {
	out := &Invoice{
		ID: in.ID, Status: string(in.Status), Currency: string(in.Currency),
		AmountDue: in.AmountDue, AmountPaid: in.AmountPaid, Subtotal: in.Subtotal, Total: in.Total, Tax: in.Tax,
		AttemptCount: in.AttemptCount, Attempted: in.Attempted, BillingReason: string(in.BillingReason),
		HostedInvoiceURL: in.HostedInvoiceURL, NextPaymentAttempt: in.NextPaymentAttempt, Created: in.Created,
	}
	if in.Subscription != nil {
		out.SubscriptionID = in.Subscription.ID
	}
	for _, d := range in.TotalDiscountAmounts {
		out.DiscountAmount += d.Amount
	}
	if pi := in.PaymentIntent; pi != nil {
		out.PaymentIntentStatus = string(pi.Status)
		if pi.LastPaymentError != nil {
			out.PaymentError = string(pi.LastPaymentError.Code)
			if pi.LastPaymentError.DeclineCode != "" && out.PaymentError == "" {
				out.PaymentError = string(pi.LastPaymentError.DeclineCode)
			}
			if pm := pi.LastPaymentError.PaymentMethod; pm != nil {
				out.PaymentErrorMethod = pm.ID
			}
		}
	}
	if in.Lines != nil {
		for _, l := range in.Lines.Data {
			out.Lines = append(out.Lines, toInvoiceLine(l))
		}
	}
	return out
}

func toInvoiceLine(l *stripego.InvoiceLineItem) InvoiceLine {
	line := InvoiceLine{Amount: l.Amount, Proration: l.Proration, Quantity: l.Quantity}
	if l.Price != nil {
		line.PriceID = l.Price.ID
	}
	return line
}

// GetSubscription implements Subscriptions.
func (c *Client) GetSubscription(ctx context.Context, id string) (*Subscription, error) {
	var out *Subscription
	err := c.call(ctx, "get subscription", func(ctx context.Context) error {
		s, err := c.getSubscription(ctx, id)
		if err != nil {
			return err
		}
		out, err = c.toSubscriptionWithLines(ctx, s)
		return err
	})
	return out, err
}

func (c *Client) getSubscription(ctx context.Context, id string) (*stripego.Subscription, error) {
	p := &stripego.SubscriptionParams{}
	setup(ctx, &p.Params, "", subscriptionExpand...)
	return c.sc().Subscriptions.Get(id, p)
}

// subscriptionResult is what a write returned for this request, read again
// when Stripe replayed an earlier answer, with all its invoice lines.
func (c *Client) subscriptionResult(ctx context.Context, s *stripego.Subscription) (*Subscription, error) {
	s, err := current(s.LastResponse, s, func() (*stripego.Subscription, error) { return c.getSubscription(ctx, s.ID) })
	if err != nil {
		return nil, err
	}
	return c.toSubscriptionWithLines(ctx, s)
}

// toSubscriptionWithLines converts s and completes its latest invoice's
// lines: Stripe embeds at most 10 lines in an invoice and sets has_more for
// the rest (https://docs.stripe.com/api/invoices/object#invoice_object-lines).
func (c *Client) toSubscriptionWithLines(ctx context.Context, s *stripego.Subscription) (*Subscription, error) {
	out := toSubscription(s)
	out.ReadAt = answeredAt(s.LastResponse)
	if out.LatestInvoice != nil && s.LatestInvoice.Lines != nil && s.LatestInvoice.Lines.HasMore {
		lines, err := c.invoiceLines(ctx, s.LatestInvoice.ID)
		if err != nil {
			return nil, err
		}
		out.LatestInvoice.Lines = lines
	}
	return out, nil
}

// invoiceLines lists every line of an invoice, 100 a page.
func (c *Client) invoiceLines(ctx context.Context, invoiceID string) ([]InvoiceLine, error) {
	p := &stripego.InvoiceListLinesParams{Invoice: stripego.String(invoiceID)}
	p.Context = ctx
	p.Limit = stripego.Int64(100)
	it := c.sc().Invoices.ListLines(p)
	var lines []InvoiceLine
	for it.Next() {
		lines = append(lines, toInvoiceLine(it.InvoiceLineItem()))
	}
	return lines, it.Err()
}

// FindSubscriptionByOwner implements Subscriptions.
func (c *Client) FindSubscriptionByOwner(ctx context.Context, owner Owner, customerID string) (*Subscription, error) {
	out, err := callFor(ctx, c, "list subscriptions", func(ctx context.Context) (*Subscription, error) {
		p := &stripego.SubscriptionListParams{Customer: stripego.String(customerID), Status: stripego.String("all")}
		listParams(ctx, &p.ListParams)
		it := c.sc().Subscriptions.List(p)
		return firstMadeBy(it, it.Subscription, func(x *stripego.Subscription) map[string]string { return x.Metadata }, owner, toSubscription)
	})
	if err != nil || out == nil {
		return out, err
	}
	// The list does not expand the latest invoice: read it fully.
	return c.GetSubscription(ctx, out.ID)
}

// CreateSubscription implements Subscriptions.
func (c *Client) CreateSubscription(ctx context.Context, owner Owner, intent string, p SubscriptionCreateParams) (*Subscription, error) {
	p.Metadata = identity.Metadata(owner, p.Metadata)
	return callFor(ctx, c, "create subscription", func(ctx context.Context) (*Subscription, error) {
		sp := &stripego.SubscriptionParams{
			Customer:          stripego.String(p.CustomerID),
			CancelAtPeriodEnd: stripego.Bool(p.CancelAtPeriodEnd),
			TrialPeriodDays:   p.TrialPeriodDays,
			DaysUntilDue:      p.DaysUntilDue,
		}
		for _, it := range p.Items {
			ip := &stripego.SubscriptionItemsParams{Price: stripego.String(it.PriceID)}
			if it.Quantity > 0 {
				// A metered price's item has no quantity: Stripe refuses one
				// ("Quantity should not be specified where usage_type is
				// metered").
				ip.Quantity = stripego.Int64(it.Quantity)
			}
			sp.Items = append(sp.Items, ip)
		}
		if p.CollectionMethod != "" {
			sp.CollectionMethod = stripego.String(p.CollectionMethod)
		}
		if p.PaymentBehavior != "" {
			sp.PaymentBehavior = stripego.String(p.PaymentBehavior)
		}
		if p.ProrationBehavior != "" {
			sp.ProrationBehavior = stripego.String(p.ProrationBehavior)
		}
		if p.Coupon != "" {
			sp.Coupon = stripego.String(p.Coupon)
		}
		if p.PromotionCode != "" {
			sp.PromotionCode = stripego.String(p.PromotionCode)
		}
		setMetadata(&sp.Params, p.Metadata)
		setup(ctx, &sp.Params, createKey(owner, "subscription-create", intent), subscriptionExpand...)
		s, err := c.sc().Subscriptions.New(sp)
		if err != nil {
			return nil, err
		}
		return c.subscriptionResult(ctx, s)
	})
}

func subscriptionUpdateParams(p SubscriptionUpdateParams) *stripego.SubscriptionParams {
	sp := &stripego.SubscriptionParams{CancelAtPeriodEnd: p.CancelAtPeriodEnd, CollectionMethod: p.CollectionMethod, DaysUntilDue: p.DaysUntilDue,
		Coupon: p.Coupon, PromotionCode: p.PromotionCode}
	for _, it := range p.Items {
		ip := &stripego.SubscriptionItemsParams{}
		if it.ID != "" {
			ip.ID = stripego.String(it.ID)
		}
		if it.Deleted {
			ip.Deleted = stripego.Bool(true)
		} else {
			if it.PriceID != "" {
				ip.Price = stripego.String(it.PriceID)
			}
			if it.Quantity > 0 {
				ip.Quantity = stripego.Int64(it.Quantity)
			}
		}
		sp.Items = append(sp.Items, ip)
	}
	if p.ProrationBehavior != "" {
		sp.ProrationBehavior = stripego.String(p.ProrationBehavior)
	}
	if p.PaymentBehavior != "" {
		sp.PaymentBehavior = stripego.String(p.PaymentBehavior)
	}
	if p.PauseCollection != nil {
		if *p.PauseCollection == "" {
			sp.AddExtra("pause_collection", "") // an empty value resumes collection
		} else {
			sp.PauseCollection = &stripego.SubscriptionPauseCollectionParams{Behavior: p.PauseCollection}
		}
	}
	if p.ClearCancelAt {
		sp.AddExtra("cancel_at", "") // an empty value removes a scheduled cancellation
	}
	if p.CancellationComment != nil {
		sp.CancellationDetails = &stripego.SubscriptionCancellationDetailsParams{Comment: p.CancellationComment}
	}
	setMetadata(&sp.Params, p.Metadata)
	return sp
}

// UpdateSubscription implements Subscriptions.
func (c *Client) UpdateSubscription(ctx context.Context, owner Owner, id string, p SubscriptionUpdateParams) (*Subscription, error) {
	return callFor(ctx, c, "update subscription", func(ctx context.Context) (*Subscription, error) {
		sp := subscriptionUpdateParams(p)
		setup(ctx, &sp.Params, attemptKey(owner, "subscription-update"), subscriptionExpand...)
		s, err := c.sc().Subscriptions.Update(id, sp)
		if err != nil {
			return nil, err
		}
		return c.subscriptionResult(ctx, s)
	})
}

// CancelSubscription implements Subscriptions.
func (c *Client) CancelSubscription(ctx context.Context, owner Owner, id string, p SubscriptionCancelParams) (*Subscription, error) {
	return callFor(ctx, c, "cancel subscription", func(ctx context.Context) (*Subscription, error) {
		sp := &stripego.SubscriptionCancelParams{InvoiceNow: stripego.Bool(p.InvoiceNow), Prorate: stripego.Bool(p.Prorate)}
		setup(ctx, &sp.Params, attemptKey(owner, "subscription-cancel"), subscriptionExpand...)
		s, err := c.sc().Subscriptions.Cancel(id, sp)
		if err != nil {
			return nil, err
		}
		return c.subscriptionResult(ctx, s)
	})
}

// GetInvoice implements Invoices.
func (c *Client) GetInvoice(ctx context.Context, id string) (*Invoice, error) {
	var out *Invoice
	err := c.call(ctx, "get invoice", func(ctx context.Context) error {
		p := &stripego.InvoiceParams{}
		setup(ctx, &p.Params, "", "payment_intent")
		in, err := c.sc().Invoices.Get(id, p)
		if err != nil {
			return err
		}
		out = toInvoice(in)
		if in.Lines != nil && in.Lines.HasMore {
			out.Lines, err = c.invoiceLines(ctx, id)
		}
		return err
	})
	return out, err
}

// ListCustomerSubscriptions implements Subscriptions.
func (c *Client) ListCustomerSubscriptions(ctx context.Context, customerID string) ([]*Subscription, error) {
	var out []*Subscription
	err := c.call(ctx, "list subscriptions", func(ctx context.Context) error {
		p := &stripego.SubscriptionListParams{Customer: stripego.String(customerID), Status: stripego.String("all")}
		p.Context = ctx
		p.Limit = stripego.Int64(100)
		it := c.sc().Subscriptions.List(p)
		for it.Next() {
			out = append(out, toSubscription(it.Subscription()))
		}
		return it.Err()
	})
	return out, err
}
