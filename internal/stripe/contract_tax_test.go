package stripe_test

import (
	"context"
	"testing"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// The tax and billing-date request shapes (issue 22), through the real
// client to stripe-mock and to the fake, as contract_test.go does.

type taxContractState struct {
	customer, product, price, sub, taxID, taxRate string
}

var taxContractSteps = []struct {
	name string
	run  func(ctx context.Context, c *stripe.Client, st *taxContractState) error
}{
	{"create customer with address, shipping and tax_exempt", func(ctx context.Context, c *stripe.Client, st *taxContractState) error {
		cus, err := c.CreateCustomer(ctx, owner, stripe.NewIntent(), stripe.CustomerParams{Email: str("a@example.com"),
			Address:   &stripe.Address{Line1: "Beispielstrasse 1", City: "Berlin", PostalCode: "10115", Country: "DE"},
			Shipping:  &stripe.Shipping{Name: "Globex", Phone: "+49301234567", Address: stripe.Address{City: "Berlin", PostalCode: "10115", Country: "DE"}},
			TaxExempt: str("reverse")})
		if err == nil {
			st.customer = cus.ID
		}
		return err
	}},
	{"update customer: clear shipping, tax_exempt none", func(ctx context.Context, c *stripe.Client, st *taxContractState) error {
		_, err := c.UpdateCustomer(ctx, owner, st.customer, stripe.CustomerParams{ClearShipping: true, TaxExempt: str("none")})
		return err
	}},
	{"create and delete a tax ID", func(ctx context.Context, c *stripe.Client, st *taxContractState) error {
		t, err := c.CreateTaxID(ctx, owner, st.customer, stripe.TaxID{Type: "eu_vat", Value: "DE123456789"})
		if err != nil {
			return err
		}
		st.taxID = t.ID
		return c.DeleteTaxID(ctx, owner, st.customer, t.ID)
	}},
	{"get tax rate", func(ctx context.Context, c *stripe.Client, st *taxContractState) error {
		_, err := c.GetTaxRate(ctx, st.taxRate)
		return err
	}},
	{"create product and price", func(ctx context.Context, c *stripe.Client, st *taxContractState) error {
		p, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("Pro")})
		if err != nil {
			return err
		}
		st.product = p.ID
		pr, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: p.ID, Currency: "eur", UnitAmount: 2000, Interval: "month", IntervalCount: 1})
		if err == nil {
			st.price = pr.ID
		}
		return err
	}},
	{"create subscription with automatic tax and a day-of-month anchor", func(ctx context.Context, c *stripe.Client, st *taxContractState) error {
		s, err := c.CreateSubscription(ctx, owner, stripe.NewIntent(), stripe.SubscriptionCreateParams{CustomerID: st.customer,
			Items: []stripe.SubscriptionItemParams{{PriceID: st.price, Quantity: 1}}, AutomaticTax: true, AnchorDayOfMonth: 1,
			ProrationBehavior: "create_prorations", PaymentBehavior: "allow_incomplete"})
		if err == nil {
			st.sub = s.ID
		}
		return err
	}},
	{"create subscription with tax rates, trial_end and a timestamp anchor", func(ctx context.Context, c *stripe.Client, st *taxContractState) error {
		trialEnd := time.Now().Add(10 * 24 * time.Hour).Unix()
		_, err := c.CreateSubscription(ctx, stripe.Owner{Namespace: "ns", Name: "other", UID: "uid-tax-2"}, stripe.NewIntent(), stripe.SubscriptionCreateParams{
			CustomerID: st.customer, Items: []stripe.SubscriptionItemParams{{PriceID: st.price, Quantity: 1}},
			DefaultTaxRates: []string{st.taxRate}, TrialEnd: trialEnd, BillingCycleAnchor: trialEnd + 24*3600})
		return err
	}},
	{"update subscription: automatic tax off, tax rates, trial_end", func(ctx context.Context, c *stripe.Client, st *taxContractState) error {
		off := false
		rates := []string{st.taxRate}
		te := time.Now().Add(5 * 24 * time.Hour).Unix()
		if _, err := c.UpdateSubscription(ctx, owner, st.sub, stripe.SubscriptionUpdateParams{AutomaticTax: &off, ProrationBehavior: "none"}); err != nil {
			return err
		}
		if _, err := c.UpdateSubscription(ctx, owner, st.sub, stripe.SubscriptionUpdateParams{DefaultTaxRates: &rates}); err != nil {
			return err
		}
		none := []string{}
		if _, err := c.UpdateSubscription(ctx, owner, st.sub, stripe.SubscriptionUpdateParams{DefaultTaxRates: &none}); err != nil {
			return err
		}
		_, err := c.UpdateSubscription(ctx, owner, st.sub, stripe.SubscriptionUpdateParams{TrialEnd: &te, ProrationBehavior: "create_prorations"})
		return err
	}},
	{"reset the billing anchor to now", func(ctx context.Context, c *stripe.Client, st *taxContractState) error {
		_, err := c.UpdateSubscription(ctx, owner, st.sub, stripe.SubscriptionUpdateParams{ResetAnchorNow: true, ProrationBehavior: "create_prorations", PaymentBehavior: "allow_incomplete"})
		return err
	}},
}

func runTaxContract(t *testing.T, baseURL, taxRate string, skip map[string]bool) {
	c, err := stripe.New(stripe.Config{APIKey: testKey, BaseURL: baseURL, RateLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	st := &taxContractState{taxRate: taxRate}
	for _, step := range taxContractSteps {
		if skip[step.name] {
			continue
		}
		if err := step.run(context.Background(), c, st); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
}

func TestTaxContractStripeMock(t *testing.T) {
	runTaxContract(t, startStripeMock(t), "txr_1MzS4RLkdIwHu7ixwvpZVAN4", nil)
}

func TestTaxContractFake(t *testing.T) {
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	// The fake models no trial_end-then-anchor-reset on a trialing
	// subscription (billing_cycle_anchor=now while trialing): the reset runs
	// on stripe-mock only; its behaviour is tested on an active
	// subscription in the controllers' tests.
	runTaxContract(t, fake.URL(), fake.CreateTaxRate("VAT", "19", false), map[string]bool{"reset the billing anchor to now": true})
}
