package stripe

import (
	"context"
	"encoding/json"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/stripe-operator/stripe-operator/internal/identity"
)

func toPrice(p *stripego.Price) *Price {
	out := &Price{ID: p.ID, Currency: string(p.Currency), UnitAmount: p.UnitAmount, LookupKey: p.LookupKey,
		Active: p.Active, Metadata: p.Metadata, Created: p.Created}
	if p.Product != nil {
		out.ProductID = p.Product.ID
	}
	if p.Recurring != nil {
		out.Interval = string(p.Recurring.Interval)
		out.IntervalCount = p.Recurring.IntervalCount
	}
	return out
}

// GetPrice implements Prices.
func (c *Client) GetPrice(ctx context.Context, id string) (*Price, error) {
	return callFor(ctx, c, "get price", func(ctx context.Context) (*Price, error) {
		pr, err := c.getPrice(ctx, id)
		if err != nil {
			return nil, err
		}
		return priceFromJSON(pr, rawOf(pr.LastResponse), true), nil
	})
}

// rawOf is a response's body, nil when there is none.
func rawOf(r *stripego.APIResponse) []byte {
	if r == nil {
		return nil
	}
	return r.RawJSON
}

// listedPrices collects a price list with each price's exact terms from
// its page's JSON.
func listedPrices(it interface {
	Next() bool
	Price() *stripego.Price
	PriceList() *stripego.PriceList
	Err() error
}) ([]*Price, error) {
	var out []*Price
	var page *stripego.PriceList
	var raws map[string]json.RawMessage
	for it.Next() {
		if l := it.PriceList(); l != page {
			page, raws = l, pagePrices(rawOf(l.LastResponse))
		}
		pr := it.Price()
		out = append(out, priceFromJSON(pr, raws[pr.ID], true))
	}
	return out, it.Err()
}

// ListPrices implements Prices.
func (c *Client) ListPrices(ctx context.Context, productID string, activeOnly bool) ([]*Price, error) {
	var out []*Price
	err := c.call(ctx, "list prices", func(ctx context.Context) error {
		p := &stripego.PriceListParams{Product: stripego.String(productID)}
		p.Context = ctx
		p.Limit = stripego.Int64(100)
		if activeOnly {
			p.Active = stripego.Bool(true)
		}
		for _, e := range listPriceExpand {
			p.AddExpand(e)
		}
		var err error
		out, err = listedPrices(c.sc().Prices.List(p))
		return err
	})
	return out, err
}

// PriceByLookupKey implements Prices: the price, active or archived, that
// holds lookup key key (nil when none). Stripe's price list filters by
// lookup_keys (https://docs.stripe.com/api/prices/list#list_prices-lookup_keys),
// and a lookup key is held by at most one price of an account.
func (c *Client) PriceByLookupKey(ctx context.Context, key string) (*Price, error) {
	var out *Price
	err := c.call(ctx, "list prices by lookup key", func(ctx context.Context) error {
		p := &stripego.PriceListParams{LookupKeys: stripego.StringSlice([]string{key})}
		p.Context = ctx
		p.Limit = stripego.Int64(1)
		for _, e := range listPriceExpand {
			p.AddExpand(e)
		}
		found, err := listedPrices(c.sc().Prices.List(p))
		if len(found) > 0 {
			out = found[0]
		}
		return err
	})
	return out, err
}

// CreatePrice implements Prices. A price create is guarded by the caller's
// strongly consistent ListPrices right before it, so each attempt gets a
// fresh key.
func (c *Client) CreatePrice(ctx context.Context, owner Owner, p PriceCreateParams) (*Price, error) {
	p.Metadata = identity.Metadata(owner, p.Metadata)
	return callFor(ctx, c, "create price", func(ctx context.Context) (*Price, error) {
		sp := priceCreateParams(p)
		if p.LookupKey != "" {
			sp.LookupKey = stripego.String(p.LookupKey)
			if p.TransferLookupKey {
				sp.TransferLookupKey = stripego.Bool(true)
			}
		}
		setMetadata(&sp.Params, p.Metadata)
		setup(ctx, &sp.Params, attemptKey(owner, "price-create"), priceExpand...)
		pr, err := c.sc().Prices.New(sp)
		if err != nil {
			return nil, err
		}
		pr, err = current(pr.LastResponse, pr, func() (*stripego.Price, error) { return c.getPrice(ctx, pr.ID) })
		if err != nil {
			return nil, err
		}
		return priceFromJSON(pr, rawOf(pr.LastResponse), true), nil
	})
}

func (c *Client) getPrice(ctx context.Context, id string) (*stripego.Price, error) {
	gp := &stripego.PriceParams{}
	setup(ctx, &gp.Params, "", priceExpand...)
	return c.sc().Prices.Get(id, gp)
}

// UpdatePrice implements Prices.
func (c *Client) UpdatePrice(ctx context.Context, owner Owner, id string, p PriceUpdateParams) (*Price, error) {
	return callFor(ctx, c, "update price", func(ctx context.Context) (*Price, error) {
		sp := &stripego.PriceParams{Active: p.Active, LookupKey: p.LookupKey}
		if p.TransferLookupKey {
			sp.TransferLookupKey = stripego.Bool(true)
		}
		setMetadata(&sp.Params, p.Metadata)
		setup(ctx, &sp.Params, attemptKey(owner, "price-update"), priceExpand...)
		pr, err := c.sc().Prices.Update(id, sp)
		if err != nil {
			return nil, err
		}
		pr, err = current(pr.LastResponse, pr, func() (*stripego.Price, error) { return c.getPrice(ctx, id) })
		if err != nil {
			return nil, err
		}
		return priceFromJSON(pr, rawOf(pr.LastResponse), true), nil
	})
}
