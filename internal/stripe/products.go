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
	return callFor(ctx, c, "get product", func(ctx context.Context) (*Product, error) {
		prod, err := c.getProduct(ctx, id)
		if err != nil {
			return nil, err
		}
		return toProduct(prod), nil
	})
}

// FindProductByOwner implements Products.
func (c *Client) FindProductByOwner(ctx context.Context, owner Owner, createdAfter time.Time) (*Product, error) {
	return callFor(ctx, c, "list products", func(ctx context.Context) (*Product, error) {
		p := &stripego.ProductListParams{CreatedRange: createdSince(createdAfter)}
		listParams(ctx, &p.ListParams)
		it := c.sc().Products.List(p)
		return firstMadeBy(it, it.Product, productMetadata, owner, toProduct)
	})
}

func productMetadata(x *stripego.Product) map[string]string { return x.Metadata }

// CreateProduct implements Products.
func (c *Client) CreateProduct(ctx context.Context, owner Owner, intent string, p ProductParams) (*Product, error) {
	p.Metadata = identity.Metadata(owner, p.Metadata)
	return callFor(ctx, c, "create product", func(ctx context.Context) (*Product, error) {
		sp := productParams(p)
		setup(ctx, &sp.Params, createKey(owner, "product-create", intent))
		prod, err := c.sc().Products.New(sp)
		if err != nil {
			return nil, err
		}
		prod, err = current(prod.LastResponse, prod, func() (*stripego.Product, error) { return c.getProduct(ctx, prod.ID) })
		if err != nil {
			return nil, err
		}
		return toProduct(prod), nil
	})
}

func (c *Client) getProduct(ctx context.Context, id string) (*stripego.Product, error) {
	gp := &stripego.ProductParams{}
	setup(ctx, &gp.Params, "")
	return c.sc().Products.Get(id, gp)
}

// UpdateProduct implements Products.
func (c *Client) UpdateProduct(ctx context.Context, owner Owner, id string, p ProductParams) (*Product, error) {
	return callFor(ctx, c, "update product", func(ctx context.Context) (*Product, error) {
		sp := productParams(p)
		setup(ctx, &sp.Params, attemptKey(owner, "product-update"))
		prod, err := c.sc().Products.Update(id, sp)
		if err != nil {
			return nil, err
		}
		prod, err = current(prod.LastResponse, prod, func() (*stripego.Product, error) { return c.getProduct(ctx, id) })
		if err != nil {
			return nil, err
		}
		return toProduct(prod), nil
	})
}

// SearchProductsByIdentity implements Products: the Search API, or a list
// where Search is unavailable or fails (identity_lookup.go).
func (c *Client) SearchProductsByIdentity(ctx context.Context, owner Owner) ([]*Product, error) {
	return lookupByIdentity(ctx, c, owner, identityLookup[*Product]{what: "product", cache: &c.lookups.products,
		list: c.ListAllProducts, live: always[*Product], metadata: func(x *Product) map[string]string { return x.Metadata },
		search: func(ctx context.Context, owner Owner) ([]*Product, error) {
			return callFor(ctx, c, "search products", func(ctx context.Context) ([]*Product, error) {
				p := &stripego.ProductSearchParams{SearchParams: stripego.SearchParams{Context: ctx, Query: identityQuery(owner), Limit: stripego.Int64(100)}}
				it := c.sc().Products.Search(p)
				return all(it, it.Product, always[*stripego.Product], toProduct)
			})
		}})
}
