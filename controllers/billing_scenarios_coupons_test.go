package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Coupon and discount actions, kinds and references of the billing
// scenarios (issue 22); see testdata/billing/README.md.
func init() {
	scenarioKinds["StripeCoupon"] = scenarioKind{what: "coupon", reads: []string{"GET /v1/coupons/{id}"}}
	// ${coupon:name}: the StripeCoupon's current Stripe coupon.
	scenarioRefs["coupon"] = func(r *scenarioRun, name string) (string, error) {
		return r.statusField("StripeCoupon/"+name, "status", "couponID")
	}
	// createCoupon: {var: name, percentOff: "100"} or {var, amountOff,
	// currency}, with duration (default forever): a coupon made by hand in
	// the Dashboard (no identity); its ID is stored as ${var:name}.
	scenarioActions["createCoupon"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Var        string `json:"var"`
			PercentOff string `json:"percentOff"`
			AmountOff  int64  `json:"amountOff"`
			Currency   string `json:"currency"`
			Duration   string `json:"duration"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		if a.Duration == "" {
			a.Duration = "forever"
		}
		c, err := r.h.stripe.CreateCoupon(context.Background(), stripe.Owner{UID: "dashboard"}, "", stripe.CouponCreateParams{
			PercentOff: a.PercentOff, AmountOff: a.AmountOff, Currency: a.Currency, Duration: a.Duration})
		if err != nil {
			return err
		}
		r.vars[a.Var] = c.ID
		return nil
	}
	// dashboardApplyCoupon: {subscription: name, coupon: id}: a coupon
	// applied (or swapped in) in the Dashboard.
	scenarioActions["dashboardApplyCoupon"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Subscription string `json:"subscription"`
			Coupon       string `json:"coupon"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		subID, err := r.statusField("StripeSubscription/"+a.Subscription, "status", "subscriptionID")
		if err != nil || subID == "" {
			return fmt.Errorf("StripeSubscription %s has no Stripe subscription (%v)", a.Subscription, err)
		}
		return r.h.fake.DashboardApplyCoupon(subID, a.Coupon)
	}
	// dashboardRemoveDiscount: subscription name: its discount removed in
	// the Dashboard.
	scenarioActions["dashboardRemoveDiscount"] = func(r *scenarioRun, arg json.RawMessage) error {
		var name string
		if err := json.Unmarshal(arg, &name); err != nil {
			return err
		}
		subID, err := r.statusField("StripeSubscription/"+name, "status", "subscriptionID")
		if err != nil || subID == "" {
			return fmt.Errorf("StripeSubscription %s has no Stripe subscription (%v)", name, err)
		}
		return r.h.fake.DashboardRemoveDiscount(subID)
	}
}
