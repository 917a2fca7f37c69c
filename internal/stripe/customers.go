package stripe

import (
	"context"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
)

func toCustomer(c *stripego.Customer) *Customer {
	out := &Customer{ID: c.ID, Email: c.Email, Name: c.Name, Description: c.Description,
		Metadata: c.Metadata, Created: c.Created, Deleted: c.Deleted}
	if c.TestClock != nil {
		out.TestClock = c.TestClock.ID
	}
	if c.InvoiceSettings != nil && c.InvoiceSettings.DefaultPaymentMethod != nil {
		out.DefaultPaymentMethod = c.InvoiceSettings.DefaultPaymentMethod.ID
	}
	customerTaxFields(out, c)
	return out
}

func customerParams(p CustomerParams) *stripego.CustomerParams {
	sp := &stripego.CustomerParams{Email: p.Email, Name: p.Name, Description: p.Description}
	if p.DefaultPaymentMethod != nil {
		sp.InvoiceSettings = &stripego.CustomerInvoiceSettingsParams{DefaultPaymentMethod: p.DefaultPaymentMethod}
	}
	setTaxParams(sp, p)
	setMetadata(&sp.Params, p.Metadata)
	return sp
}

// GetCustomer implements Customers.
func (c *Client) GetCustomer(ctx context.Context, id string) (*Customer, error) {
	var out *Customer
	err := c.call(ctx, "get customer", func(ctx context.Context) error {
		cus, err := c.getCustomer(ctx, id)
		if err != nil {
			return err
		}
		out = toCustomer(cus)
		return nil
	})
	return out, err
}

// FindCustomerByOwner implements Customers.
func (c *Client) FindCustomerByOwner(ctx context.Context, owner Owner, createdAfter time.Time) (*Customer, error) {
	var out *Customer
	err := c.call(ctx, "list customers", func(ctx context.Context) error {
		p := &stripego.CustomerListParams{}
		p.Context = ctx
		p.Limit = stripego.Int64(100)
		if !createdAfter.IsZero() {
			p.CreatedRange = &stripego.RangeQueryParams{GreaterThanOrEqual: createdAfter.Unix()}
		}
		it := c.sc().Customers.List(p)
		for it.Next() {
			if cus := it.Customer(); cus.Metadata[mdUID] == owner.UID {
				out = toCustomer(cus)
				return nil
			}
		}
		return it.Err()
	})
	return out, err
}

// CreateCustomer implements Customers.
func (c *Client) CreateCustomer(ctx context.Context, owner Owner, intent string, p CustomerParams) (*Customer, error) {
	p.Metadata = withOwner(owner, p.Metadata)
	var out *Customer
	err := c.call(ctx, "create customer", func(ctx context.Context) error {
		sp := customerParams(p)
		if p.TestClock != "" {
			sp.TestClock = stripego.String(p.TestClock)
		}
		setup(ctx, &sp.Params, createKey(owner, "customer-create", intent), customerExpand...)
		cus, err := c.sc().Customers.New(sp)
		if err != nil {
			return err
		}
		cus, err = current(cus.LastResponse, cus, func() (*stripego.Customer, error) { return c.getCustomer(ctx, cus.ID) })
		if err != nil {
			return err
		}
		out = toCustomer(cus)
		return nil
	})
	return out, err
}

func (c *Client) getCustomer(ctx context.Context, id string) (*stripego.Customer, error) {
	gp := &stripego.CustomerParams{}
	setup(ctx, &gp.Params, "", customerExpand...)
	return c.sc().Customers.Get(id, gp)
}

// UpdateCustomer implements Customers.
func (c *Client) UpdateCustomer(ctx context.Context, owner Owner, id string, p CustomerParams) (*Customer, error) {
	var out *Customer
	err := c.call(ctx, "update customer", func(ctx context.Context) error {
		sp := customerParams(p)
		setup(ctx, &sp.Params, attemptKey(owner, "customer-update"), customerExpand...)
		cus, err := c.sc().Customers.Update(id, sp)
		if err != nil {
			return err
		}
		cus, err = current(cus.LastResponse, cus, func() (*stripego.Customer, error) { return c.getCustomer(ctx, id) })
		if err != nil {
			return err
		}
		out = toCustomer(cus)
		return nil
	})
	return out, err
}

// DeleteCustomer implements Customers.
func (c *Client) DeleteCustomer(ctx context.Context, owner Owner, id string) error {
	return c.call(ctx, "delete customer", func(ctx context.Context) error {
		p := &stripego.CustomerParams{}
		setup(ctx, &p.Params, attemptKey(owner, "customer-delete"))
		_, err := c.sc().Customers.Del(id, p)
		return err
	})
}

// AttachPaymentMethod implements Customers.
func (c *Client) AttachPaymentMethod(ctx context.Context, owner Owner, paymentMethodID, customerID string) (string, error) {
	var out string
	err := c.call(ctx, "attach payment method", func(ctx context.Context) error {
		p := &stripego.PaymentMethodAttachParams{Customer: stripego.String(customerID)}
		setup(ctx, &p.Params, attemptKey(owner, "pm-attach"))
		pm, err := c.sc().PaymentMethods.Attach(paymentMethodID, p)
		if err != nil {
			return err
		}
		out = pm.ID
		return nil
	})
	return out, err
}

// SearchCustomersByIdentity implements Customers: the Search API, or a
// list where Search is unavailable or fails (identity_lookup.go).
func (c *Client) SearchCustomersByIdentity(ctx context.Context, owner Owner) ([]*Customer, error) {
	if c.lookups.useSearch() {
		out, err := c.searchCustomersByIdentity(ctx, owner)
		if err == nil || !c.lookups.searchFailed(err) {
			return out, err
		}
		c.log.V(1).Info("Search failed; looking the customer up in a list", "error", err.Error())
	}
	return c.customersByIdentityFromList(ctx, owner)
}

func (c *Client) searchCustomersByIdentity(ctx context.Context, owner Owner) ([]*Customer, error) {
	var out []*Customer
	err := c.call(ctx, "search customers", func(ctx context.Context) error {
		p := &stripego.CustomerSearchParams{SearchParams: stripego.SearchParams{Context: ctx, Query: identityQuery(owner), Limit: stripego.Int64(100)}}
		it := c.sc().Customers.Search(p)
		for it.Next() {
			if cus := it.Customer(); !cus.Deleted {
				out = append(out, toCustomer(cus))
			}
		}
		return it.Err()
	})
	return out, err
}
