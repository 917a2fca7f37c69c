package controllers

// Billing-scenario actions for tax and billing dates (issue 22), added to
// the runner (billing_scenarios_test.go) from this file so that branches do
// not edit the same lines.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

func init() {
	// createTaxRate: {name: vat19, displayName: VAT, percentage: "19",
	// inclusive: false}, a tax rate made in the Dashboard; its ID is
	// ${var:NAME}.
	scenarioActions["createTaxRate"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
			Percentage  string `json:"percentage"`
			Inclusive   bool   `json:"inclusive"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		if a.DisplayName == "" {
			a.DisplayName = a.Name
		}
		r.vars[a.Name] = r.h.fake.CreateTaxRate(a.DisplayName, a.Percentage, a.Inclusive)
		return nil
	}
	// setTimeVar: {name: trialEnd, after: 5d}, ${var:NAME} set to the test
	// clock's time plus after (RFC 3339), for trialEnd or
	// billingCycleAnchor.at in manifests.
	scenarioActions["setTimeVar"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Name  string `json:"name"`
			After string `json:"after"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		d, err := parseScenarioDuration(a.After)
		if err != nil {
			return err
		}
		r.vars[a.Name] = r.h.fake.Now().Add(d).UTC().Format(time.RFC3339)
		return nil
	}
	// dashboardSetCustomerAddress: {customer: name, address: {country: DE,
	// postal_code: "10115"}}; address null removes it.
	scenarioActions["dashboardSetCustomerAddress"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Customer string            `json:"customer"`
			Address  map[string]string `json:"address"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		id, err := r.statusField("StripeCustomer/"+a.Customer, "status", "customerID")
		if err != nil || id == "" {
			return fmt.Errorf("StripeCustomer %s has no Stripe customer (%v)", a.Customer, err)
		}
		return r.h.fake.DashboardSetCustomerAddress(id, a.Address)
	}
	// dashboardSetDefaultTaxRates: {subscription: name, taxRates: [...]}.
	scenarioActions["dashboardSetDefaultTaxRates"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Subscription string   `json:"subscription"`
			TaxRates     []string `json:"taxRates"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		id, err := r.scenarioSubscriptionID(a.Subscription)
		if err != nil {
			return err
		}
		return r.h.fake.DashboardSetDefaultTaxRates(id, a.TaxRates)
	}
	// dashboardSetTrialEnd: {subscription: name, after: 15d}, the trial end
	// moved in the Dashboard to the test clock plus after.
	scenarioActions["dashboardSetTrialEnd"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Subscription string `json:"subscription"`
			After        string `json:"after"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		d, err := parseScenarioDuration(a.After)
		if err != nil {
			return err
		}
		id, err := r.scenarioSubscriptionID(a.Subscription)
		if err != nil {
			return err
		}
		return r.h.fake.DashboardSetTrialEnd(id, r.h.fake.Now().Add(d))
	}
	// dashboardCancelSubscription: name, canceled now in the Dashboard.
	scenarioActions["dashboardCancelSubscription"] = func(r *scenarioRun, arg json.RawMessage) error {
		var name string
		if err := json.Unmarshal(arg, &name); err != nil {
			return err
		}
		id, err := r.scenarioSubscriptionID(name)
		if err != nil {
			return err
		}
		return r.h.fake.DashboardCancelSubscription(id)
	}
	// advanceToPeriodEnd: {subscription: name, plus: 2h}, the test clock
	// moved to the end of the subscription's current period in Stripe, plus.
	scenarioActions["advanceToPeriodEnd"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Subscription string `json:"subscription"`
			Plus         string `json:"plus"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		plus, err := parseScenarioDuration(a.Plus)
		if err != nil {
			return err
		}
		id, err := r.scenarioSubscriptionID(a.Subscription)
		if err != nil {
			return err
		}
		sub, err := r.h.stripe.GetSubscription(context.Background(), id)
		if err != nil {
			return err
		}
		r.h.fake.AdvanceClock(time.Unix(sub.CurrentPeriodEnd, 0).Sub(r.h.fake.Now()) + plus)
		return nil
	}
	// checkAnchoredFirstPeriod: {subscription: name, dayOfMonth: 1,
	// periodAmount: 2000}: the subscription's first period ends on the day
	// at midnight UTC and its first invoice bills the prorated share of a
	// period ("Setting the subscription billing date"): periodAmount ×
	// (anchor − start) / (anchor − the same day a month earlier), rounded.
	scenarioActions["checkAnchoredFirstPeriod"] = func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Subscription string `json:"subscription"`
			DayOfMonth   int    `json:"dayOfMonth"`
			PeriodAmount int64  `json:"periodAmount"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		var obj billingv1alpha1.StripeSubscription
		if err := r.h.c.Get(context.Background(), client.ObjectKey{Namespace: r.h.ns, Name: a.Subscription}, &obj); err != nil {
			return err
		}
		st := obj.Status
		if st.CurrentPeriodStart == nil || st.CurrentPeriodEnd == nil || st.LatestInvoice == nil {
			return fmt.Errorf("StripeSubscription %s has no period or invoice in status yet", a.Subscription)
		}
		end := st.CurrentPeriodEnd.UTC()
		if end.Day() != a.DayOfMonth || end.Hour() != 0 || end.Minute() != 0 {
			return fmt.Errorf("the first period ends %s, not on day %d at midnight UTC", end.Format(time.RFC3339), a.DayOfMonth)
		}
		full := end.Unix() - end.AddDate(0, -1, 0).Unix()
		left := end.Unix() - st.CurrentPeriodStart.Unix()
		want := (2*a.PeriodAmount*left + full) / (2 * full)
		if st.LatestInvoice.AmountDue != want {
			return fmt.Errorf("the first invoice is due %d, the prorated %d expected (%d of %d seconds)", st.LatestInvoice.AmountDue, want, left, full)
		}
		return nil
	}
}

func (r *scenarioRun) scenarioSubscriptionID(name string) (string, error) {
	id, err := r.statusField("StripeSubscription/"+name, "status", "subscriptionID")
	if err != nil || id == "" {
		return "", fmt.Errorf("StripeSubscription %s has no Stripe subscription (%v)", name, err)
	}
	return id, nil
}
