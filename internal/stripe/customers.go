package stripe

import (
	"context"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/stripe-operator/stripe-operator/internal/identity"
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
	return out
}

func customerParams(p CustomerParams) *stripego.CustomerParams {
	sp := &stripego.CustomerParams{Email: p.Email, Name: p.Name, Description: p.Description}
	if p.DefaultPaymentMethod != nil {
		sp.InvoiceSettings = &stripego.CustomerInvoiceSettingsParams{DefaultPaymentMethod: p.DefaultPaymentMethod}
	}
	setMetadata(&sp.Params, p.Metadata)
	return sp
}

// GetCustomer implements Customers.
func (c *Client) GetCustomer(ctx context.Context, id string) (*Customer, error) {
	return callFor(ctx, c, "get customer", func(ctx context.Context) (*Customer, error) {
		cus, err := c.getCustomer(ctx, id)
		if err != nil {
			return nil, err
		}
		return toCustomer(cus), nil
	})
}

// FindCustomerByOwner implements Customers.
func (c *Client) FindCustomerByOwner(ctx context.Context, owner Owner, createdAfter time.Time) (*Customer, error) {
	return callFor(ctx, c, "list customers", func(ctx context.Context) (*Customer, error) {
		p := &stripego.CustomerListParams{CreatedRange: createdSince(createdAfter)}
		listParams(ctx, &p.ListParams)
		it := c.sc().Customers.List(p)
		return firstMadeBy(it, it.Customer, customerMetadata, owner, toCustomer)
	})
}

func customerMetadata(x *stripego.Customer) map[string]string { return x.Metadata }

// CreateCustomer implements Customers.
func (c *Client) CreateCustomer(ctx context.Context, owner Owner, intent string, p CustomerParams) (*Customer, error) {
	p.Metadata = identity.Metadata(owner, p.Metadata)
	return callFor(ctx, c, "create customer", func(ctx context.Context) (*Customer, error) {
		sp := customerParams(p)
		if p.TestClock != "" {
			sp.TestClock = stripego.String(p.TestClock)
		}
		setup(ctx, &sp.Params, createKey(owner, "customer-create", intent))
		cus, err := c.sc().Customers.New(sp)
		if err != nil {
			return nil, err
		}
		cus, err = current(cus.LastResponse, cus, func() (*stripego.Customer, error) { return c.getCustomer(ctx, cus.ID) })
		if err != nil {
			return nil, err
		}
		return toCustomer(cus), nil
	})
}

func (c *Client) getCustomer(ctx context.Context, id string) (*stripego.Customer, error) {
	gp := &stripego.CustomerParams{}
	setup(ctx, &gp.Params, "")
	return c.sc().Customers.Get(id, gp)
}

// UpdateCustomer implements Customers.
func (c *Client) UpdateCustomer(ctx context.Context, owner Owner, id string, p CustomerParams) (*Customer, error) {
	return callFor(ctx, c, "update customer", func(ctx context.Context) (*Customer, error) {
		sp := customerParams(p)
		setup(ctx, &sp.Params, attemptKey(owner, "customer-update"))
		cus, err := c.sc().Customers.Update(id, sp)
		if err != nil {
			return nil, err
		}
		cus, err = current(cus.LastResponse, cus, func() (*stripego.Customer, error) { return c.getCustomer(ctx, id) })
		if err != nil {
			return nil, err
		}
		return toCustomer(cus), nil
	})
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
	return lookupByIdentity(ctx, c, owner, identityLookup[*Customer]{what: "customer", cache: &c.lookups.customers,
		list: c.ListAllCustomers, live: func(x *Customer) bool { return !x.Deleted }, metadata: func(x *Customer) map[string]string { return x.Metadata },
		search: func(ctx context.Context, owner Owner) ([]*Customer, error) {
			return callFor(ctx, c, "search customers", func(ctx context.Context) ([]*Customer, error) {
				p := &stripego.CustomerSearchParams{SearchParams: stripego.SearchParams{Context: ctx, Query: identityQuery(owner), Limit: stripego.Int64(100)}}
				it := c.sc().Customers.Search(p)
				return all(it, it.Customer, func(x *stripego.Customer) bool { return !x.Deleted }, toCustomer)
			})
		}})
}
