package stripe

import (
	"context"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/stripe-operator/stripe-operator/internal/identity"
)

func toProduct(p *stripego.Product) *Product {
	return &Product{ID: p.ID, Name: p.Name, Description: p.Description, Active: p.Active, Metadata: p.Metadata, Created: p.Created}
}

func productParams(p ProductParams) *stripego.ProductParams {
	sp := &stripego.ProductParams{Name: p.Name, Description: p.Description, Active: p.Active}
	setMetadata(&sp.Params, p.Metadata)
	return sp
}

// GetProduct implements Products.
func (c *Client) GetProduct(ctx context.Context, id string) (*Product, error) {
	var out *Product
	err := c.call(ctx, "get product", func(ctx context.Context) error {
		prod, err := c.getProduct(ctx, id)
		if err != nil {
			return err
		}
		out = toProduct(prod)
		return nil
	})
	return out, err
}

// FindProductByOwner implements Products.
func (c *Client) FindProductByOwner(ctx context.Context, owner Owner, createdAfter time.Time) (*Product, error) {
	var out *Product
	err := c.call(ctx, "list products", func(ctx context.Context) error {
		p := &stripego.ProductListParams{}
		p.Context = ctx
		p.Limit = stripego.Int64(100)
		if !createdAfter.IsZero() {
			p.CreatedRange = &stripego.RangeQueryParams{GreaterThanOrEqual: createdAfter.Unix()}
		}
		it := c.sc().Products.List(p)
		for it.Next() {
			if prod := it.Product(); identity.SameUID(owner, prod.Metadata) {
				out = toProduct(prod)
				return nil
			}
		}
		return it.Err()
	})
	return out, err
}

// CreateProduct implements Products.
func (c *Client) CreateProduct(ctx context.Context, owner Owner, intent string, p ProductParams) (*Product, error) {
	p.Metadata = identity.Metadata(owner, p.Metadata)
	var out *Product
	err := c.call(ctx, "create product", func(ctx context.Context) error {
		sp := productParams(p)
		setup(ctx, &sp.Params, createKey(owner, "product-create", intent))
		prod, err := c.sc().Products.New(sp)
		if err != nil {
			return err
		}
		prod, err = current(prod.LastResponse, prod, func() (*stripego.Product, error) { return c.getProduct(ctx, prod.ID) })
		if err != nil {
			return err
		}
		out = toProduct(prod)
		return nil
	})
	return out, err
}

func (c *Client) getProduct(ctx context.Context, id string) (*stripego.Product, error) {
	gp := &stripego.ProductParams{}
	setup(ctx, &gp.Params, "")
	return c.sc().Products.Get(id, gp)
}

// UpdateProduct implements Products.
func (c *Client) UpdateProduct(ctx context.Context, owner Owner, id string, p ProductParams) (*Product, error) {
	var out *Product
	err := c.call(ctx, "update product", func(ctx context.Context) error {
		sp := productParams(p)
		setup(ctx, &sp.Params, attemptKey(owner, "product-update"))
		prod, err := c.sc().Products.Update(id, sp)
		if err != nil {
			return err
		}
		prod, err = current(prod.LastResponse, prod, func() (*stripego.Product, error) { return c.getProduct(ctx, id) })
		if err != nil {
			return err
		}
		out = toProduct(prod)
		return nil
	})
	return out, err
}

// SearchProductsByIdentity implements Products: the Search API, or a list
// where Search is unavailable or fails (identity_lookup.go).
func (c *Client) SearchProductsByIdentity(ctx context.Context, owner Owner) ([]*Product, error) {
	if c.lookups.useSearch() {
		out, err := c.searchProductsByIdentity(ctx, owner)
		if err == nil || !c.lookups.searchFailed(err) {
			return out, err
		}
		c.log.V(1).Info("Search failed; looking the product up in a list", "error", err.Error())
	}
	return c.productsByIdentityFromList(ctx, owner)
}

func (c *Client) searchProductsByIdentity(ctx context.Context, owner Owner) ([]*Product, error) {
	var out []*Product
	err := c.call(ctx, "search products", func(ctx context.Context) error {
		p := &stripego.ProductSearchParams{SearchParams: stripego.SearchParams{Context: ctx, Query: identityQuery(owner), Limit: stripego.Int64(100)}}
		it := c.sc().Products.Search(p)
		for it.Next() {
			out = append(out, toProduct(it.Product()))
		}
		return it.Err()
	})
	return out, err
}
