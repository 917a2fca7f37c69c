package controllers

// Tax and billing dates (issue 22), driven one pass at a time against
// envtest and the test-mode Stripe (see stripesubscription_reconcile_test.go
// for the harness).

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

func TestSubscriptionTaxRatesExclusiveAndInclusive(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	vat := e.m.fake.CreateTaxRate("VAT", "19", false)
	incl := e.m.fake.CreateTaxRate("TVA", "20", true)

	// Exclusive: 2 × 10.00 + 19 % = 23.80 expected and billed.
	e.newSub("excl", func(o *billingv1alpha1.StripeSubscription) {
		o.Spec.DefaultTaxRates = []billingv1alpha1.TaxRateID{billingv1alpha1.TaxRateID(vat)}
	})
	e.mustReconcile("excl")
	obj := e.fetch("excl")
	g.Expect(obj.Status.ExpectedAmount).To(Equal(&billingv1alpha1.Amount{Amount: 2380, Currency: "usd"}))
	g.Expect(obj.Status.Tax).NotTo(BeNil())
	g.Expect(obj.Status.Tax.Exclusive).To(Equal(int64(380)))
	subID := obj.Status.SubscriptionID
	g.Expect(e.m.get(subID).LatestInvoice.AmountDue).To(Equal(int64(2380)))
	g.Expect(e.m.get(subID).LatestInvoice.ExclusiveTax).To(Equal(int64(380)))
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Reason).To(Equal(billingv1alpha1.ReasonInSync))

	// Removed in the Dashboard: drift naming the rates, corrected.
	g.Expect(e.m.fake.DashboardSetDefaultTaxRates(subID, nil)).To(Succeed())
	e.mustReconcile("excl")
	obj = e.fetch("excl")
	drift := cond(obj, billingv1alpha1.ConditionBillingDrift)
	g.Expect(drift.Reason).To(Equal(billingv1alpha1.ReasonDriftCorrected))
	g.Expect(drift.Message).To(ContainSubstring("default_tax_rates are none in Stripe, [" + vat + "] declared"))

	// Inclusive: 20.00 holds 3.33 of tax; the expected amount is unchanged.
	e.newSub("incl", func(o *billingv1alpha1.StripeSubscription) {
		o.Spec.DefaultTaxRates = []billingv1alpha1.TaxRateID{billingv1alpha1.TaxRateID(incl)}
	})
	e.mustReconcile("incl")
	obj = e.fetch("incl")
	g.Expect(obj.Status.ExpectedAmount.Amount).To(Equal(int64(2000)))
	g.Expect(obj.Status.Tax.Inclusive).To(Equal(int64(333)))
	g.Expect(obj.Status.Tax.Exclusive).To(BeZero())
	g.Expect(e.m.get(obj.Status.SubscriptionID).LatestInvoice.AmountDue).To(Equal(int64(2000)))
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Reason).To(Equal(billingv1alpha1.ReasonInSync))

	// A trial's invoice taxes nothing by design: not drift.
	e.newSub("trial", func(o *billingv1alpha1.StripeSubscription) {
		o.Spec.DefaultTaxRates = []billingv1alpha1.TaxRateID{billingv1alpha1.TaxRateID(vat)}
		days := int64(7)
		o.Spec.TrialPeriodDays = &days
	})
	e.mustReconcile("trial")
	obj = e.fetch("trial")
	g.Expect(obj.Status.StripeStatus).To(Equal("trialing"))
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Reason).To(Equal(billingv1alpha1.ReasonInSync))

	// Observe mode: a Dashboard swap to another rate is reported with both
	// lists, never written.
	e.newSub("watch", func(o *billingv1alpha1.StripeSubscription) {
		o.Spec.DefaultTaxRates = []billingv1alpha1.TaxRateID{billingv1alpha1.TaxRateID(vat)}
	})
	e.mustReconcile("watch")
	watchID := e.fetch("watch").Status.SubscriptionID
	e.updateSpec("watch", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.ManagementPolicy = billingv1alpha1.ManagementPolicyObserve
		s.SubscriptionID = watchID
	})
	e.mustReconcile("watch")
	g.Expect(e.m.fake.DashboardSetDefaultTaxRates(watchID, []string{incl})).To(Succeed())
	writes := e.m.writes()
	e.mustReconcile("watch")
	g.Expect(e.m.writes()).To(Equal(writes))
	drift = cond(e.fetch("watch"), billingv1alpha1.ConditionBillingDrift)
	g.Expect(drift.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(drift.Message).To(ContainSubstring("default_tax_rates are [" + incl + "] in Stripe, [" + vat + "] declared"))
}

func TestSubscriptionAutomaticTaxNeedsACustomerLocation(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("auto", func(o *billingv1alpha1.StripeSubscription) {
		o.Spec.AutomaticTax = &billingv1alpha1.AutomaticTax{Enabled: true}
	})

	// No location: nothing is created, the condition says why.
	_, _ = e.reconcile("auto")
	obj := e.fetch("auto")
	g.Expect(e.m.creates()).To(BeZero())
	stalled := cond(obj, billingv1alpha1.ConditionStalled)
	g.Expect(stalled).NotTo(BeNil())
	g.Expect(stalled.Reason).To(Equal(billingv1alpha1.ReasonTaxLocationRequired))
	g.Expect(stalled.Message).To(And(ContainSubstring("unrecognized_location"), ContainSubstring(e.m.customerID)))

	// With an address in Germany: created with Stripe Tax, 19 % added.
	g.Expect(e.m.fake.DashboardSetCustomerAddress(e.m.customerID, map[string]string{"country": "DE", "postal_code": "10115"})).To(Succeed())
	e.mustReconcile("auto")
	obj = e.fetch("auto")
	g.Expect(e.m.creates()).To(Equal(1))
	subID := obj.Status.SubscriptionID
	inv := e.m.get(subID).LatestInvoice
	g.Expect(inv.AutomaticTax).To(Equal("complete"))
	g.Expect(inv.ExclusiveTax).To(Equal(int64(380)))
	g.Expect(obj.Status.Tax.AutomaticTaxStatus).To(Equal("complete"))
	g.Expect(obj.Status.ExpectedAmount.Amount).To(Equal(int64(2000)), "Stripe Tax is not part of the expected amount")
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled)).To(BeNil())
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Message).To(ContainSubstring("tax 3.80 USD"))

	// Automatic tax switched off in Stripe: corrected.
	// (The address goes next: the following invoice cannot be taxed.)
	g.Expect(e.m.fake.DashboardSetCustomerAddress(e.m.customerID, nil)).To(Succeed())
	e.mustReconcile("auto")
	obj = e.fetch("auto")
	stalled = cond(obj, billingv1alpha1.ConditionStalled)
	g.Expect(stalled).NotTo(BeNil())
	g.Expect(stalled.Reason).To(Equal(billingv1alpha1.ReasonTaxLocationRequired))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Reason).To(Equal(billingv1alpha1.ReasonTaxLocationRequired))

	e.m.fake.AdvanceClock(32 * 24 * time.Hour)
	e.mustReconcile("auto")
	obj = e.fetch("auto")
	g.Expect(obj.Status.Tax.AutomaticTaxStatus).To(Equal("requires_location_inputs"))
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled).Message).To(ContainSubstring("requires_location_inputs"))
}

func TestSubscriptionBillingAnchorAndTrialEnd(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("first", func(o *billingv1alpha1.StripeSubscription) {
		day := int64(1)
		o.Spec.BillingCycleAnchor = &billingv1alpha1.BillingCycleAnchor{DayOfMonth: &day}
	})
	e.mustReconcile("first")
	obj := e.fetch("first")
	subID := obj.Status.SubscriptionID
	end := obj.Status.CurrentPeriodEnd.UTC()
	g.Expect(end.Day()).To(Equal(1))
	g.Expect(end.Hour()).To(BeZero())
	g.Expect(obj.Status.BillingDates).NotTo(BeNil())
	g.Expect(obj.Status.BillingDates.BillingCycleAnchor.Unix()).To(Equal(end.Unix()))
	g.Expect(obj.Status.BillingDates.AnchorDeclaration).To(Equal("dayOfMonth=1"))
	inv := e.m.get(subID).LatestInvoice
	g.Expect(inv.Prorations).To(Equal(1), "the first period up to the anchor is prorated")
	g.Expect(inv.AmountDue).To(BeNumerically("<=", 2000))
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Reason).To(Equal(billingv1alpha1.ReasonInSync))

	// A changed anchor cannot be applied: refused, nothing written.
	updates := e.m.updates()
	e.updateSpec("first", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		day := int64(15)
		s.BillingCycleAnchor.DayOfMonth = &day
	})
	e.mustReconcile("first")
	obj = e.fetch("first")
	g.Expect(e.m.updates()).To(Equal(updates))
	stalled := cond(obj, billingv1alpha1.ConditionStalled)
	g.Expect(stalled).NotTo(BeNil())
	g.Expect(stalled.Reason).To(Equal(billingv1alpha1.ReasonBillingAnchorImmutable))
	g.Expect(stalled.Message).To(And(ContainSubstring("dayOfMonth=15"), ContainSubstring("dayOfMonth=1"), ContainSubstring("resetToNowGeneration")))

	// Declared reset to now: one update with billing_cycle_anchor=now.
	obj = e.fetch("first")
	e.updateSpec("first", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		gen := obj.Generation + 1
		s.BillingCycleAnchor.ResetToNowGeneration = &gen
	})
	e.mustReconcile("first")
	obj = e.fetch("first")
	g.Expect(e.m.updates()).To(Equal(updates + 1))
	g.Expect(obj.Status.BillingDates.BillingCycleAnchor.Unix()).To(Equal(e.m.fake.Now().Unix()))
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled)).To(BeNil())
	e.mustReconcile("first")
	g.Expect(e.m.updates()).To(Equal(updates+1), "a reset is made once")

	// A reset whose answer is lost (Stripe made it, then answered 500) is
	// not made again: it was recorded as made before the request.
	obj = e.fetch("first")
	e.updateSpec("first", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		gen := obj.Generation + 1
		s.BillingCycleAnchor.ResetToNowGeneration = &gen
	})
	remove := e.m.fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/subscriptions/" + subID, Status: 500, Count: 1, AfterExecute: true})
	_, _ = e.reconcile("first")
	remove()
	resetInvoice := e.m.get(subID).LatestInvoice.ID
	g.Expect(resetInvoice).NotTo(BeEmpty())
	e.mustReconcile("first")
	e.mustReconcile("first")
	g.Expect(e.m.get(subID).LatestInvoice.ID).To(Equal(resetInvoice), "a reset whose answer was lost was made again")

	// trialEnd: created trialing until then; a Dashboard extension is
	// drift and moved back.
	trialEnd := metav1.NewTime(e.m.fake.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Second))
	e.newSub("trial", func(o *billingv1alpha1.StripeSubscription) { o.Spec.TrialEnd = &trialEnd })
	e.mustReconcile("trial")
	obj = e.fetch("trial")
	g.Expect(obj.Status.StripeStatus).To(Equal("trialing"))
	g.Expect(obj.Status.TrialEnd.Unix()).To(Equal(trialEnd.Unix()))
	trialID := obj.Status.SubscriptionID
	g.Expect(e.m.fake.DashboardSetTrialEnd(trialID, trialEnd.Add(5*24*time.Hour))).To(Succeed())
	e.mustReconcile("trial")
	obj = e.fetch("trial")
	g.Expect(obj.Status.TrialEnd.Unix()).To(Equal(trialEnd.Unix()))
	drift := cond(obj, billingv1alpha1.ConditionBillingDrift)
	g.Expect(drift.Reason).To(Equal(billingv1alpha1.ReasonDriftCorrected))
	g.Expect(drift.Message).To(ContainSubstring("trial_end is " + trialEnd.Add(5*24*time.Hour).UTC().Format(time.RFC3339) + " in Stripe"))
}

func TestSubscriptionTrialEndsIntoDeclineThenRecovers(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	trialEnd := metav1.NewTime(e.m.fake.Now().Add(5 * 24 * time.Hour).UTC().Truncate(time.Second))
	e.newSub("t", func(o *billingv1alpha1.StripeSubscription) { o.Spec.TrialEnd = &trialEnd })
	e.mustReconcile("t")
	g.Expect(e.fetch("t").Status.StripeStatus).To(Equal("trialing"))
	g.Expect(e.m.fake.Charges()).To(BeEmpty(), "a trial charges nothing")

	_, err := e.m.fake.DashboardSetDefaultPaymentMethod(e.m.customerID, "pm_card_chargeCustomerFail")
	g.Expect(err).NotTo(HaveOccurred())
	e.m.fake.AdvanceClock(6 * 24 * time.Hour)
	e.mustReconcile("t")
	obj := e.fetch("t")
	g.Expect(obj.Status.StripeStatus).To(Equal("past_due"))
	g.Expect(cond(obj, billingv1alpha1.ConditionPaymentFailed).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Status).To(Equal(metav1.ConditionFalse), "a decline is not drift")

	_, err = e.m.fake.DashboardSetDefaultPaymentMethod(e.m.customerID, "pm_card_visa")
	g.Expect(err).NotTo(HaveOccurred())
	e.m.fake.AdvanceClock(4 * 24 * time.Hour)
	e.mustReconcile("t")
	obj = e.fetch("t")
	g.Expect(obj.Status.StripeStatus).To(Equal("active"))
	g.Expect(cond(obj, billingv1alpha1.ConditionPaymentFailed).Status).To(Equal(metav1.ConditionFalse))
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Status).To(Equal(metav1.ConditionFalse))
}

func TestCustomerTaxDetailsFromSecret(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	ctx := e.ctx
	r := &StripeCustomerReconciler{Client: testClient(), Stripe: e.m.api, ResyncPeriod: time.Hour, SecretReader: testClient()}
	reconcile := func() {
		t.Helper()
		_, _ = r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: e.ns, Name: "globex"}})
	}
	fetch := func() *billingv1alpha1.StripeCustomer {
		c := &billingv1alpha1.StripeCustomer{}
		g.Expect(testClient().Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "globex"}, c)).To(Succeed())
		return c
	}
	cus := &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "globex"},
		Spec: billingv1alpha1.StripeCustomerSpec{Email: "billing@globex.example", TaxExempt: billingv1alpha1.TaxExemptReverse,
			TaxDetailsFrom: &billingv1alpha1.TaxDetailsFrom{SecretRef: billingv1alpha1.LocalObjectReference{Name: "globex-tax"}}}}
	g.Expect(testClient().Create(ctx, cus)).To(Succeed())

	// The Secret is missing: stalled, nothing created.
	reconcile()
	stalled := findCondition(fetch().Status.Conditions, billingv1alpha1.ConditionStalled)
	g.Expect(stalled).NotTo(BeNil())
	g.Expect(stalled.Reason).To(Equal(billingv1alpha1.ReasonTaxDetailsInvalid))
	g.Expect(stalled.Message).To(ContainSubstring(`Secret "globex-tax"`))

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "globex-tax"}, StringData: map[string]string{
		"address": "line1: Beispielstrasse 1\ncity: Berlin\npostalCode: \"10115\"\ncountry: DE\n",
		"taxIDs":  "- type: eu_vat\n  value: DE123456789\n",
	}}
	g.Expect(testClient().Create(ctx, secret)).To(Succeed())
	reconcile()
	reconcile()
	obj := fetch()
	g.Expect(obj.Status.CustomerID).NotTo(BeEmpty())
	got, err := e.m.api.GetCustomer(ctx, obj.Status.CustomerID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Address).NotTo(BeNil())
	g.Expect(got.Address.Country).To(Equal("DE"))
	g.Expect(got.Address.City).To(Equal("Berlin"))
	g.Expect(got.TaxExempt).To(Equal("reverse"))
	g.Expect(got.AutomaticTax).To(Equal("supported"))
	g.Expect(got.TaxIDs).To(HaveLen(1))
	g.Expect(got.TaxIDs[0].Value).To(Equal("DE123456789"))
	g.Expect(obj.Status.Tax).NotTo(BeNil())
	g.Expect(obj.Status.Tax.AutomaticTax).To(Equal("supported"))
	g.Expect(obj.Status.Tax.Source).To(Equal("Secret/globex-tax"))
	g.Expect(obj.Status.Tax.TaxIDs).To(HaveLen(1))
	g.Expect(findCondition(obj.Status.Conditions, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	firstTaxID := got.TaxIDs[0].ID
	// Status and conditions never hold the personal data.
	raw, _ := json.Marshal(obj.Status)
	for _, secretValue := range []string{"DE123456789", "Berlin", "Beispielstrasse", "10115"} {
		g.Expect(strings.Contains(string(raw), secretValue)).To(BeFalse(), "status holds %q", secretValue)
	}

	// A changed VAT ID: the immutable tax ID is deleted and created again.
	g.Expect(testClient().Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "globex-tax"}, secret)).To(Succeed())
	secret.Data["taxIDs"] = []byte("- type: eu_vat\n  value: DE999999999\n")
	g.Expect(testClient().Update(ctx, secret)).To(Succeed())
	reconcile()
	got, err = e.m.api.GetCustomer(ctx, obj.Status.CustomerID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.TaxIDs).To(HaveLen(1))
	g.Expect(got.TaxIDs[0].Value).To(Equal("DE999999999"))
	g.Expect(got.TaxIDs[0].ID).NotTo(Equal(firstTaxID))

	// A field declared in both places is refused, naming both.
	g.Expect(testClient().Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "globex"}, obj)).To(Succeed())
	obj.Spec.Address = &billingv1alpha1.Address{Country: "FR"}
	g.Expect(testClient().Update(ctx, obj)).To(Succeed())
	reconcile()
	stalled = findCondition(fetch().Status.Conditions, billingv1alpha1.ConditionStalled)
	g.Expect(stalled).NotTo(BeNil())
	g.Expect(stalled.Message).To(And(ContainSubstring("spec.address"), ContainSubstring(`key "address"`)))
	// A document that does not parse is reported without its text.
	obj = fetch()
	obj.Spec.Address = nil
	g.Expect(testClient().Update(ctx, obj)).To(Succeed())
	g.Expect(testClient().Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "globex-tax"}, secret)).To(Succeed())
	secret.Data["address"] = []byte("country: [Berlin-secret-street")
	g.Expect(testClient().Update(ctx, secret)).To(Succeed())
	reconcile()
	stalled = findCondition(fetch().Status.Conditions, billingv1alpha1.ConditionStalled)
	g.Expect(stalled).NotTo(BeNil())
	g.Expect(stalled.Message).To(ContainSubstring(`Key "address" of Secret "globex-tax"`))
	g.Expect(stalled.Message).NotTo(ContainSubstring("Berlin"))
}
