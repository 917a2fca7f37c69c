package stripe

import (
	"context"
	"sync/atomic"

	stripego "github.com/stripe/stripe-go/v76"
)

// Whole-list reads for the billing audit and the list-based resync.
//
// Stripe's list endpoints return at most 100 objects per call, newest
// first, and page forward with starting_after set to the last ID of the
// previous page (https://docs.stripe.com/api/pagination). Each function
// below pages 100 at a time through one whole list and hands every object to
// fn; fn returning an error stops the paging and is returned.

// ListPageSize is the largest page Stripe's list endpoints return.
const ListPageSize = 100

// Lister reads whole Stripe lists.
type Lister interface {
	// ListAllCustomers lists every customer; Stripe leaves deleted customers
	// out of the list.
	ListAllCustomers(ctx context.Context, fn func(*Customer) error) error
	// ListAllProducts lists every product, active and archived.
	ListAllProducts(ctx context.Context, fn func(*Product) error) error
	// ListAllPrices lists every price of every product, active and archived.
	ListAllPrices(ctx context.Context, fn func(*Price) error) error
	// ListAllSubscriptions lists every subscription in any status
	// (status=all, so canceled ones too) with the latest invoice and its
	// PaymentIntent expanded, as GetSubscription returns it.
	ListAllSubscriptions(ctx context.Context, fn func(*Subscription) error) error
}

var _ Lister = (*Client)(nil)

// ResyncLister reads the whole lists the resync of every kind reads its
// unchanged objects from (controllers/resync_listing.go). A kind whose
// Stripe objects are resynced by listing adds its list here.
type ResyncLister interface {
	Lister
	// ListActivePrices lists every active price (active=true): the resync
	// reads only a plan's current price, and rolled-over archived prices
	// would otherwise grow the list without end.
	ListActivePrices(ctx context.Context, fn func(*Price) error) error
	// ListAllWebhookEndpoints lists every webhook endpoint (16 at most
	// per account: one page).
	ListAllWebhookEndpoints(ctx context.Context, fn func(*WebhookEndpoint) error) error
}

var _ ResyncLister = (*Client)(nil)

// CallCounter counts the HTTP requests made to Stripe with a context from
// WithCallCounter, stripe-go's own retries included.
type CallCounter struct{ n atomic.Int64 }

// Calls is the number of requests counted so far.
func (c *CallCounter) Calls() int { return int(c.n.Load()) }

type callCounterKey struct{}

// WithCallCounter returns a context whose Stripe requests are counted.
func WithCallCounter(ctx context.Context) (context.Context, *CallCounter) {
	c := &CallCounter{}
	return context.WithValue(ctx, callCounterKey{}, c), c
}

// countCall adds one request to ctx's counter, if it has one.
func countCall(ctx context.Context) {
	if c, ok := ctx.Value(callCounterKey{}).(*CallCounter); ok {
		c.n.Add(1)
	}
}

// pageParams sets up one page: 100 objects after the cursor. Each page is
// its own call with its own deadline, so a long list is not cut short by
// the per-call timeout.
func pageParams(ctx context.Context, p *stripego.ListParams, after string) {
	p.Context = ctx
	p.Limit = stripego.Int64(ListPageSize)
	p.Single = true
	if after != "" {
		p.StartingAfter = stripego.String(after)
	}
}

// pageIter is the part of stripe-go's list iterators a page needs.
type pageIter interface {
	Next() bool
	Err() error
	Meta() *stripego.ListMeta
}

// listAll pages through a list: page reads one page after the cursor
// (within one call) and returns its objects and IDs; fn sees every object.
func listAll[T any](ctx context.Context, c *Client, op string, page func(ctx context.Context, after string) ([]T, []string, bool, error), fn func(T) error) error {
	after := ""
	for {
		var items []T
		var ids []string
		var more bool
		if err := c.call(ctx, op, func(ctx context.Context) (err error) {
			items, ids, more, err = page(ctx, after)
			return err
		}); err != nil {
			return err
		}
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if !more || len(ids) == 0 {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// collect drains one page of it.
func collect[S any, T any](it pageIter, cur func() S, conv func(S) (T, string)) ([]T, []string, bool, error) {
	var items []T
	var ids []string
	for it.Next() {
		t, id := conv(cur())
		items, ids = append(items, t), append(ids, id)
	}
	if err := it.Err(); err != nil {
		return nil, nil, false, err
	}
	more := false
	if m := it.Meta(); m != nil {
		more = m.HasMore
	}
	return items, ids, more, nil
}

// ListAllCustomers implements Lister.
func (c *Client) ListAllCustomers(ctx context.Context, fn func(*Customer) error) error {
	return listAll(ctx, c, "list customers", func(ctx context.Context, after string) ([]*Customer, []string, bool, error) {
		p := &stripego.CustomerListParams{}
		pageParams(ctx, &p.ListParams, after)
		it := c.sc().Customers.List(p)
		return collect(it, it.Customer, func(x *stripego.Customer) (*Customer, string) { return toCustomer(x), x.ID })
	}, fn)
}

// ListAllProducts implements Lister.
func (c *Client) ListAllProducts(ctx context.Context, fn func(*Product) error) error {
	return listAll(ctx, c, "list products", func(ctx context.Context, after string) ([]*Product, []string, bool, error) {
		p := &stripego.ProductListParams{}
		pageParams(ctx, &p.ListParams, after)
		it := c.sc().Products.List(p)
		return collect(it, it.Product, func(x *stripego.Product) (*Product, string) { return toProduct(x), x.ID })
	}, fn)
}

// ListAllPrices implements Lister.
func (c *Client) ListAllPrices(ctx context.Context, fn func(*Price) error) error {
	return c.listPrices(ctx, nil, fn)
}

// ListActivePrices implements ResyncLister (https://docs.stripe.com/api/prices/list#list_prices-active).
func (c *Client) ListActivePrices(ctx context.Context, fn func(*Price) error) error {
	return c.listPrices(ctx, stripego.Bool(true), fn)
}

func (c *Client) listPrices(ctx context.Context, active *bool, fn func(*Price) error) error {
	return listAll(ctx, c, "list prices", func(ctx context.Context, after string) ([]*Price, []string, bool, error) {
		p := &stripego.PriceListParams{Active: active}
		pageParams(ctx, &p.ListParams, after)
		it := c.sc().Prices.List(p)
		return collect(it, it.Price, func(x *stripego.Price) (*Price, string) { return toPrice(x), x.ID })
	}, fn)
}

// ListAllWebhookEndpoints implements ResyncLister.
func (c *Client) ListAllWebhookEndpoints(ctx context.Context, fn func(*WebhookEndpoint) error) error {
	return listAll(ctx, c, "list webhook endpoints", func(ctx context.Context, after string) ([]*WebhookEndpoint, []string, bool, error) {
		p := &stripego.WebhookEndpointListParams{}
		pageParams(ctx, &p.ListParams, after)
		it := c.sc().WebhookEndpoints.List(p)
		return collect(it, it.WebhookEndpoint, func(x *stripego.WebhookEndpoint) (*WebhookEndpoint, string) { return toWebhookEndpoint(x), x.ID })
	}, fn)
}

// listedSubscription is a subscription as a list page returns it; partial
// marks one whose embedded item list is cut short (has_more).
type listedSubscription struct {
	sub     *Subscription
	partial bool
}

// ListAllSubscriptions implements Lister. A subscription whose embedded
// item list is cut short (has_more) is read on its own, so every object
// handed to fn is complete.
func (c *Client) ListAllSubscriptions(ctx context.Context, fn func(*Subscription) error) error {
	return listAll(ctx, c, "list subscriptions", func(ctx context.Context, after string) ([]listedSubscription, []string, bool, error) {
		p := &stripego.SubscriptionListParams{Status: stripego.String("all")}
		pageParams(ctx, &p.ListParams, after)
		// Expansions on a list name the objects under data
		// (https://docs.stripe.com/expand#lists).
		for _, e := range subscriptionExpand {
			p.AddExpand("data." + e)
		}
		it := c.sc().Subscriptions.List(p)
		return collect(it, it.Subscription, func(x *stripego.Subscription) (listedSubscription, string) {
			return listedSubscription{sub: toSubscription(x), partial: x.Items != nil && x.Items.HasMore}, x.ID
		})
	}, func(ls listedSubscription) error {
		if ls.partial {
			full, err := c.GetSubscription(ctx, ls.sub.ID)
			if err != nil {
				return err
			}
			ls.sub = full
		}
		return fn(ls.sub)
	})
}
