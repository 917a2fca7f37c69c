package stripe

import (
	"context"
	"strconv"

	stripego "github.com/stripe/stripe-go/v76"
)

// Address is a postal address (https://docs.stripe.com/api/customers/object#customer_object-address).
type Address struct {
	Line1, Line2, City, State, PostalCode, Country string
}

// Shipping is a customer's shipping details.
type Shipping struct {
	Name, Phone string
	Address     Address
}

// TaxID is a customer tax ID (txi_...).
type TaxID struct {
	ID, Type, Value string
	// Verification is verification.status ("" when Stripe sent none).
	Verification string
}

// TaxRate is a Stripe tax rate. Percentage is the exact decimal Stripe
// sent (such as "19" or "8.875"), never a float in this package's callers.
type TaxRate struct {
	ID         string
	Percentage string
	Inclusive  bool
	Active     bool
}

func toAddress(a *stripego.Address) *Address {
	if a == nil || (*a == stripego.Address{}) {
		return nil
	}
	return &Address{Line1: a.Line1, Line2: a.Line2, City: a.City, State: a.State, PostalCode: a.PostalCode, Country: a.Country}
}

func addressParams(a Address) *stripego.AddressParams {
	str := func(v string) *string { return stripego.String(v) }
	return &stripego.AddressParams{Line1: str(a.Line1), Line2: str(a.Line2), City: str(a.City), State: str(a.State),
		PostalCode: str(a.PostalCode), Country: str(a.Country)}
}

// setTaxParams adds address, shipping and tax_exempt to a customer write.
func setTaxParams(sp *stripego.CustomerParams, p CustomerParams) {
	switch {
	case p.ClearAddress:
		sp.AddExtra("address", "") // an empty value removes the address
	case p.Address != nil:
		sp.Address = addressParams(*p.Address)
	}
	switch {
	case p.ClearShipping:
		sp.AddExtra("shipping", "")
	case p.Shipping != nil:
		sp.Shipping = &stripego.CustomerShippingParams{Name: stripego.String(p.Shipping.Name), Address: addressParams(p.Shipping.Address)}
		if p.Shipping.Phone != "" {
			sp.Shipping.Phone = stripego.String(p.Shipping.Phone)
		}
	}
	sp.TaxExempt = p.TaxExempt
}

// customerTaxFields copies the tax part of a Stripe customer.
func customerTaxFields(out *Customer, c *stripego.Customer) {
	out.Address = toAddress(c.Address)
	if s := c.Shipping; s != nil {
		sh := &Shipping{Name: s.Name, Phone: s.Phone}
		if a := toAddress(s.Address); a != nil {
			sh.Address = *a
		}
		out.Shipping = sh
	}
	out.TaxExempt = string(c.TaxExempt)
	if c.Tax != nil {
		out.AutomaticTax = string(c.Tax.AutomaticTax)
	}
	out.TaxDetailsRead = c.Tax != nil && c.TaxIDs != nil
	if c.TaxIDs != nil {
		for _, t := range c.TaxIDs.Data {
			out.TaxIDs = append(out.TaxIDs, toTaxID(t))
		}
	}
}

func toTaxID(t *stripego.TaxID) TaxID {
	out := TaxID{ID: t.ID, Type: string(t.Type), Value: t.Value}
	if t.Verification != nil {
		out.Verification = string(t.Verification.Status)
	}
	return out
}

// customerExpand is what every customer read and write expands: the tax
// location status and the tax IDs, which Stripe includes only on request
// (https://docs.stripe.com/api/customers/object#customer_object-tax).
var customerExpand = []string{"tax", "tax_ids"}

// CreateTaxID implements Customers.
func (c *Client) CreateTaxID(ctx context.Context, owner Owner, customerID string, t TaxID) (*TaxID, error) {
	var out *TaxID
	key := attemptKey(owner, "taxid-create") // one key for the retries of this call
	err := c.call(ctx, "create tax ID", func(ctx context.Context) error {
		p := &stripego.TaxIDParams{Customer: stripego.String(customerID), Type: stripego.String(t.Type), Value: stripego.String(t.Value)}
		setup(ctx, &p.Params, key)
		created, err := c.sc().TaxIDs.New(p)
		if err != nil {
			return err
		}
		v := toTaxID(created)
		out = &v
		return nil
	})
	return out, err
}

// DeleteTaxID implements Customers.
func (c *Client) DeleteTaxID(ctx context.Context, owner Owner, customerID, id string) error {
	return c.call(ctx, "delete tax ID", func(ctx context.Context) error {
		p := &stripego.TaxIDParams{Customer: stripego.String(customerID)}
		setup(ctx, &p.Params, attemptKey(owner, "taxid-delete"))
		_, err := c.sc().TaxIDs.Del(id, p)
		return err
	})
}

// GetTaxRate implements TaxRates.
func (c *Client) GetTaxRate(ctx context.Context, id string) (*TaxRate, error) {
	var out *TaxRate
	err := c.call(ctx, "get tax rate", func(ctx context.Context) error {
		p := &stripego.TaxRateParams{}
		setup(ctx, &p.Params, "")
		r, err := c.sc().TaxRates.Get(id, p)
		if err != nil {
			return err
		}
		v := toTaxRate(r)
		out = &v
		return nil
	})
	return out, err
}

// toTaxRate keeps the percentage as the shortest decimal that reads back
// as Stripe's number: Stripe sends it as a JSON number with at most four
// decimals (https://docs.stripe.com/api/tax_rates/object#tax_rate_object-percentage),
// which this formatting reproduces exactly.
func toTaxRate(r *stripego.TaxRate) TaxRate {
	return TaxRate{ID: r.ID, Percentage: strconv.FormatFloat(r.Percentage, 'f', -1, 64), Inclusive: r.Inclusive, Active: r.Active}
}

// subscriptionTaxFields copies the tax and billing-date part of a Stripe
// subscription.
func subscriptionTaxFields(out *Subscription, s *stripego.Subscription) {
	if s.AutomaticTax != nil {
		out.AutomaticTax = s.AutomaticTax.Enabled
	}
	for _, r := range s.DefaultTaxRates {
		if r != nil {
			out.DefaultTaxRates = append(out.DefaultTaxRates, toTaxRate(r))
		}
	}
	out.BillingCycleAnchor = s.BillingCycleAnchor
}

// setSubscriptionCreateTax adds tax and billing dates to a create.
func setSubscriptionCreateTax(sp *stripego.SubscriptionParams, p SubscriptionCreateParams) {
	if p.AutomaticTax {
		sp.AutomaticTax = &stripego.SubscriptionAutomaticTaxParams{Enabled: stripego.Bool(true)}
	}
	for _, r := range p.DefaultTaxRates {
		sp.DefaultTaxRates = append(sp.DefaultTaxRates, stripego.String(r))
	}
	if p.TrialEnd != 0 {
		sp.TrialEnd = stripego.Int64(p.TrialEnd)
	}
	switch {
	case p.AnchorDayOfMonth != 0:
		// billing_cycle_anchor_config (stripe-go 76.12.0, "Add support for
		// BillingCycleAnchorConfig on SubscriptionParams"): the anchor is
		// the next occurrence of the day at midnight UTC.
		sp.BillingCycleAnchorConfig = &stripego.SubscriptionBillingCycleAnchorConfigParams{DayOfMonth: stripego.Int64(p.AnchorDayOfMonth)}
	case p.BillingCycleAnchor != 0:
		sp.BillingCycleAnchor = stripego.Int64(p.BillingCycleAnchor)
	}
}

// setSubscriptionUpdateTax adds tax and billing dates to an update.
func setSubscriptionUpdateTax(sp *stripego.SubscriptionParams, p SubscriptionUpdateParams) {
	if p.AutomaticTax != nil {
		sp.AutomaticTax = &stripego.SubscriptionAutomaticTaxParams{Enabled: p.AutomaticTax}
	}
	if p.DefaultTaxRates != nil {
		if len(*p.DefaultTaxRates) == 0 {
			sp.AddExtra("default_tax_rates", "") // an empty value removes them
		}
		for _, r := range *p.DefaultTaxRates {
			sp.DefaultTaxRates = append(sp.DefaultTaxRates, stripego.String(r))
		}
	}
	if p.TrialEnd != nil {
		sp.TrialEnd = p.TrialEnd
	}
	if p.ResetAnchorNow {
		sp.AddExtra("billing_cycle_anchor", "now")
	}
}

// invoiceTaxFields copies the tax part of a Stripe invoice.
func invoiceTaxFields(out *Invoice, in *stripego.Invoice) {
	if in.AutomaticTax != nil {
		out.AutomaticTaxEnabled = in.AutomaticTax.Enabled
		if in.AutomaticTax.Enabled {
			out.AutomaticTaxStatus = string(in.AutomaticTax.Status)
		}
	}
	for _, t := range in.TotalTaxAmounts {
		if t.Inclusive {
			out.InclusiveTax += t.Amount
		} else {
			out.ExclusiveTax += t.Amount
		}
	}
}
