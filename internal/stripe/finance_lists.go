package stripe

import (
	"context"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
)

// The financial report's lists: invoices and refunds created since a time,
// 100 a page, newest first (https://docs.stripe.com/api/invoices/list and
// https://docs.stripe.com/api/refunds/list, both with created[gte]). One
// call per page: an audit reads N invoices in ceil(N/100) calls (one when
// there are none).

// ListedInvoice is the part of an invoice the financial report reads
// (https://docs.stripe.com/api/invoices/object).
type ListedInvoice struct {
	ID             string
	CustomerID     string
	SubscriptionID string
	// Status is draft, open, paid, uncollectible or void.
	Status          string
	Currency        string
	AmountDue       int64
	AmountPaid      int64
	AmountRemaining int64
	// Attempted is true once Stripe tried to collect the payment.
	Attempted bool
	Created   int64
}

// Refund is the part of a refund the financial report reads
// (https://docs.stripe.com/api/refunds/object).
type Refund struct {
	ID string
	// ChargeID and CustomerID come from the refund's charge (expanded).
	ChargeID   string
	CustomerID string
	Currency   string
	// Status is pending, requires_action, succeeded, failed or canceled.
	Status  string
	Amount  int64
	Created int64
}

// FinanceLister reads the lists of the financial report.
type FinanceLister interface {
	// ListInvoicesSince lists every invoice created at or after since, any
	// status.
	ListInvoicesSince(ctx context.Context, since time.Time, fn func(*ListedInvoice) error) error
	// ListRefundsSince lists every refund created at or after since, with
	// its charge's customer.
	ListRefundsSince(ctx context.Context, since time.Time, fn func(*Refund) error) error
}

var _ FinanceLister = (*Client)(nil)

// ListInvoicesSince implements FinanceLister.
func (c *Client) ListInvoicesSince(ctx context.Context, since time.Time, fn func(*ListedInvoice) error) error {
	return listAll(ctx, c, "list invoices", func(ctx context.Context, after string) ([]*ListedInvoice, []string, bool, error) {
		p := &stripego.InvoiceListParams{CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
		pageParams(ctx, &p.ListParams, after)
		it := c.sc().Invoices.List(p)
		return collect(it, it.Invoice, func(x *stripego.Invoice) (*ListedInvoice, string) {
			out := &ListedInvoice{ID: x.ID, Status: string(x.Status), Currency: string(x.Currency), AmountDue: x.AmountDue,
				AmountPaid: x.AmountPaid, AmountRemaining: x.AmountRemaining, Attempted: x.Attempted, Created: x.Created}
			if x.Customer != nil {
				out.CustomerID = x.Customer.ID
			}
			if x.Subscription != nil {
				out.SubscriptionID = x.Subscription.ID
			}
			return out, x.ID
		})
	}, fn)
}

// ListRefundsSince implements FinanceLister. The charge is expanded
// (https://docs.stripe.com/expand#lists: data.charge) for its customer.
func (c *Client) ListRefundsSince(ctx context.Context, since time.Time, fn func(*Refund) error) error {
	return listAll(ctx, c, "list refunds", func(ctx context.Context, after string) ([]*Refund, []string, bool, error) {
		p := &stripego.RefundListParams{CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
		pageParams(ctx, &p.ListParams, after)
		p.AddExpand("data.charge")
		it := c.sc().Refunds.List(p)
		return collect(it, it.Refund, func(x *stripego.Refund) (*Refund, string) {
			out := &Refund{ID: x.ID, Currency: string(x.Currency), Status: string(x.Status), Amount: x.Amount, Created: x.Created}
			if ch := x.Charge; ch != nil {
				out.ChargeID = ch.ID
				if ch.Customer != nil {
					out.CustomerID = ch.Customer.ID
				}
			}
			return out, x.ID
		})
	}, fn)
}
