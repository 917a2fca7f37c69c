package stripe

import (
	"context"
	"errors"
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

func listParams(ctx context.Context, p *stripego.ListParams) {
	p.Context = ctx
	p.Limit = stripego.Int64(ListPageSize)
}

// ListAllCustomers implements Lister.
func (c *Client) ListAllCustomers(ctx context.Context, fn func(*Customer) error) error {
	var stop error
	err := c.call("list customers", func() error {
		p := &stripego.CustomerListParams{}
		listParams(ctx, &p.ListParams)
		it := c.sc().Customers.List(p)
		for it.Next() {
			if stop = fn(toCustomer(it.Customer())); stop != nil {
				return nil
			}
		}
		return it.Err()
	})
	return errors.Join(stop, err)
}

// ListAllProducts implements Lister.
func (c *Client) ListAllProducts(ctx context.Context, fn func(*Product) error) error {
	var stop error
	err := c.call("list products", func() error {
		p := &stripego.ProductListParams{}
		listParams(ctx, &p.ListParams)
		it := c.sc().Products.List(p)
		for it.Next() {
			if stop = fn(toProduct(it.Product())); stop != nil {
				return nil
			}
		}
		return it.Err()
	})
	return errors.Join(stop, err)
}

// ListAllPrices implements Lister.
func (c *Client) ListAllPrices(ctx context.Context, fn func(*Price) error) error {
	var stop error
	err := c.call("list prices", func() error {
		p := &stripego.PriceListParams{}
		listParams(ctx, &p.ListParams)
		it := c.sc().Prices.List(p)
		for it.Next() {
			if stop = fn(toPrice(it.Price())); stop != nil {
				return nil
			}
		}
		return it.Err()
	})
	return errors.Join(stop, err)
}

// ListAllSubscriptions implements Lister. A subscription whose embedded
// item list is cut short (has_more) is read on its own, so every object
// handed to fn is complete.
func (c *Client) ListAllSubscriptions(ctx context.Context, fn func(*Subscription) error) error {
	var stop error
	err := c.call("list subscriptions", func() error {
		p := &stripego.SubscriptionListParams{Status: stripego.String("all")}
		listParams(ctx, &p.ListParams)
		// Expansions on a list name the objects under data
		// (https://docs.stripe.com/expand#lists).
		for _, e := range subscriptionExpand {
			p.AddExpand("data." + e)
		}
		it := c.sc().Subscriptions.List(p)
		for it.Next() {
			s := it.Subscription()
			out := toSubscription(s)
			if s.Items != nil && s.Items.HasMore {
				gp := &stripego.SubscriptionParams{}
				setup(ctx, &gp.Params, "", subscriptionExpand...)
				full, err := c.sc().Subscriptions.Get(s.ID, gp)
				if err != nil {
					return err
				}
				out = toSubscription(full)
			}
			if stop = fn(out); stop != nil {
				return nil
			}
		}
		return it.Err()
	})
	return errors.Join(stop, err)
}
