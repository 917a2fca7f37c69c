package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Scenario actions of the price shapes (issue 21).
func init() {
	// reportUsage: {subscription: name, item: 1, quantity: 1000, action:
	// increment|set}, usage an application reports on a metered item
	// (usage records, API 2023-10-16).
	scenarioActions["reportUsage"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Subscription string `json:"subscription"`
			Item         int    `json:"item"`
			Quantity     int64  `json:"quantity"`
			Action       string `json:"action"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		_, itemID, err := r.stripeItem(a.Subscription, a.Item)
		if err != nil {
			return err
		}
		return r.h.fake.ReportUsage(itemID, a.Quantity, a.Action)
	}
	// setCustomerCurrency: {customer: name, currency: eur}, the customer's
	// currency as its first invoice in that currency would set it.
	scenarioActions["setCustomerCurrency"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Customer string `json:"customer"`
			Currency string `json:"currency"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		id, err := r.statusField("StripeCustomer/"+a.Customer, "status", "customerID")
		if err != nil || id == "" {
			return fmt.Errorf("StripeCustomer %s has no Stripe customer yet (%v)", a.Customer, err)
		}
		return r.h.fake.SetCustomerCurrency(id, a.Currency)
	}
	// stripeCreatePrice: {var: name, price: <a StripePlan spec.price>}, a
	// product and price made outside the operator (in the Dashboard); its
	// ID is ${var:name}.
	scenarioActions["stripeCreatePrice"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Var   string                    `json:"var"`
			Price billingv1alpha1.PriceSpec `json:"price"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		ctx := context.Background()
		owner := stripe.Owner{Instance: "dashboard", Kind: "Dashboard", Namespace: r.h.ns, Name: a.Var, UID: "dashboard-" + a.Var}
		name := "Dashboard " + a.Var
		prod, err := r.h.stripe.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: &name})
		if err != nil {
			return err
		}
		spec := &a.Price
		p, err := r.h.stripe.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: spec.Currency, UnitAmount: spec.UnitAmount,
			Interval: string(spec.Interval), IntervalCount: max(1, spec.IntervalCount), PriceTerms: specPriceTerms(spec)})
		if err != nil {
			return err
		}
		r.vars[a.Var] = p.ID
		return nil
	}
}
