package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Tax and billing dates of a StripeSubscription (issue 22):
//
//   - spec.defaultTaxRates: their exclusive tax is part of the expected
//     amount (internal/billing/tax.go); inclusive tax changes nothing.
//   - spec.automaticTax: Stripe Tax calculates the tax from the customer's
//     location. A subscription is never created with automatic tax for a
//     customer Stripe Tax cannot locate (customer.tax.automatic_tax
//     unrecognized_location), and one whose latest invoice reports
//     automatic_tax.status requires_location_inputs is Stalled with
//     TaxLocationRequired: no silent untaxed invoice. At API version
//     2023-10-16 the status is on the invoice
//     (https://docs.stripe.com/api/invoices/object#invoice_object-automatic_tax-status);
//     the subscription's automatic_tax has only enabled (and liability).
//   - spec.trialEnd and spec.billingCycleAnchor are applied at creation.
//     Drift compares Stripe's trial_end and billing_cycle_anchor with the
//     values the operator set (status.billingDates). A changed trialEnd is
//     applied with trial_end while it is in the future; Stripe cannot move
//     an anchor to a chosen date, so a changed billingCycleAnchor is
//     refused (BillingAnchorImmutable) unless resetToNowGeneration asks for
//     billing_cycle_anchor=now.

// taxRateCache holds tax rates by ID: their percentage and inclusiveness
// never change (https://docs.stripe.com/api/tax_rates/update lists neither).
var taxRateCache sync.Map

// taxState is this pass's tax and billing-date findings.
type taxState struct {
	tax billing.Tax
	// uncorrectable are differences Update cannot remove; they are
	// reported as drift.
	uncorrectable []string
	// customerTax is the customer's tax.automatic_tax, read this pass when
	// automatic tax is declared ("" when not read).
	customerTax string
	// rates are the declared default tax rates, resolved.
	rates []billing.TaxRate
}

func (s *subscriptionScope) taxState() *taxState { return &s.tax }

func automaticTaxDeclared(spec *billingv1alpha1.StripeSubscriptionSpec) bool {
	return spec.AutomaticTax != nil && spec.AutomaticTax.Enabled
}

// resolveTaxRates reads the declared default tax rates (cached: their
// percentage and inclusiveness never change) into s.tax.rates, for the
// expectation adjuster taxAdjustment (stripesubscription_tax_expected.go).
// The one call site is prices(), before the expectation is computed. A
// rate whose percentage is not a decimal number is refused here, as the
// adjuster cannot return an error.
func (s *subscriptionScope) resolveTaxRates(ctx context.Context) error {
	s.tax.rates = nil
	s.tax.tax = billing.Tax{}
	for _, id := range s.obj.Spec.DefaultTaxRates {
		r, err := s.taxRate(ctx, string(id))
		if err != nil {
			return err
		}
		s.tax.rates = append(s.tax.rates, billing.TaxRate{ID: r.ID, Percentage: r.Percentage, Inclusive: r.Inclusive})
	}
	_, err := s.linesTax([]int64{0})
	return err
}

// linesTax is the tax of the default tax rates on a full period's line
// amounts.
func (s *subscriptionScope) linesTax(lines []int64) (billing.Tax, error) {
	t, err := billing.PeriodTax(lines, s.tax.rates)
	if err != nil {
		return billing.Tax{}, newSpecError(billingv1alpha1.ReasonInvalidSpec, "spec.defaultTaxRates: %s", err.Error())
	}
	return t, nil
}

func (s *subscriptionScope) taxRate(ctx context.Context, id string) (*stripe.TaxRate, error) {
	if v, ok := taxRateCache.Load(id); ok {
		return v.(*stripe.TaxRate), nil
	}
	r, err := s.r.Stripe.GetTaxRate(ctx, id)
	if stripe.IsNotFound(err) {
		return nil, newSpecError(billingv1alpha1.ReasonNotFound, "Tax rate %s named by spec.defaultTaxRates does not exist in Stripe.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading tax rate %s: %w", id, err)
	}
	taxRateCache.Store(id, r)
	return r, nil
}

// checkTaxLocation reads the customer's tax location when automatic tax is
// declared and the StripeCustomer's status does not report it (or before
// a create, which always asks Stripe). Before the subscription exists, a customer Stripe Tax cannot
// locate stops the create (Stalled, TaxLocationRequired): Stripe would
// refuse it with customer_tax_location_invalid, and creating it without
// automatic tax would bill untaxed.
func (s *subscriptionScope) checkTaxLocation(ctx context.Context, creating bool) error {
	if !automaticTaxDeclared(&s.obj.Spec) || s.customerID == "" {
		return nil
	}
	if !creating && s.tax.customerTax != "" {
		// The StripeCustomer's status reports it (its reconciler reads the
		// customer with its tax every pass): no Stripe call.
		return nil
	}
	cus, err := s.r.Stripe.GetCustomer(ctx, s.customerID)
	if err != nil {
		return fmt.Errorf("reading customer %s for its tax location: %w", s.customerID, err)
	}
	s.taxState().customerTax = cus.AutomaticTax
	if creating && cus.AutomaticTax == "unrecognized_location" {
		return newSpecError(billingv1alpha1.ReasonTaxLocationRequired, "%s; the subscription is not created until Stripe Tax can locate the customer.", s.locationMessage())
	}
	return nil
}

func (s *subscriptionScope) locationMessage() string {
	where := "the Stripe customer"
	if ref := s.obj.Spec.CustomerRef; ref != nil {
		where = fmt.Sprintf("StripeCustomer %q (spec.address or spec.shipping, or its taxDetailsFrom Secret)", ref.Name)
	}
	return fmt.Sprintf("spec.automaticTax is enabled but Stripe Tax cannot locate customer %s (customer.tax.automatic_tax: unrecognized_location): set a country, and a postal code in the US and Canada, on %s",
		s.customerID, where)
}

// anchorDeclaration renders the declared anchor, "" when none.
func anchorDeclaration(spec *billingv1alpha1.StripeSubscriptionSpec) string {
	a := spec.BillingCycleAnchor
	switch {
	case a == nil:
		return ""
	case a.DayOfMonth != nil:
		return fmt.Sprintf("dayOfMonth=%d", *a.DayOfMonth)
	case a.At != nil:
		return "at=" + a.At.UTC().Format(time.RFC3339)
	}
	return ""
}

// createTaxParams adds tax and billing dates to the create call.
func (s *subscriptionScope) createTaxParams(p *stripe.SubscriptionCreateParams) {
	spec := &s.obj.Spec
	p.AutomaticTax = automaticTaxDeclared(spec)
	p.DefaultTaxRates = declaredTaxRates(spec)
	if spec.TrialEnd != nil {
		p.TrialEnd = spec.TrialEnd.Unix()
	}
	if a := spec.BillingCycleAnchor; a != nil {
		switch {
		case a.DayOfMonth != nil:
			p.AnchorDayOfMonth = *a.DayOfMonth
		case a.At != nil:
			p.BillingCycleAnchor = a.At.Unix()
		}
	}
}

// recordBillingDates records the trial end and anchor Stripe answered to
// the operator's own write (or, for a subscription the operator did not
// create, its first read), against which drift is judged.
func (s *subscriptionScope) recordBillingDates(sub *stripe.Subscription, created bool) {
	if sub == nil {
		return
	}
	st := &s.obj.Status
	bd := st.BillingDates
	if bd == nil {
		bd = &billingv1alpha1.BillingDatesStatus{}
		st.BillingDates = bd
	}
	bd.BillingCycleAnchor = unixTime(sub.BillingCycleAnchor)
	bd.TrialEnd = unixTime(sub.TrialEnd)
	if created {
		bd.AnchorDeclaration = anchorDeclaration(&s.obj.Spec)
	}
}

// diffTaxAndDates adds the tax and billing-date differences to d (what
// Update corrects) and records those it cannot correct.
func (s *subscriptionScope) diffTaxAndDates(d *subscriptionDiff) {
	spec, sub, st := &s.obj.Spec, s.sub, &s.obj.Status
	ts := s.taxState()
	ts.uncorrectable = nil
	if sub == nil {
		return
	}
	if st.BillingDates == nil {
		s.recordBillingDates(sub, false) // adopted: its dates as found are the baseline
		st.BillingDates.AnchorDeclaration = anchorDeclaration(spec)
	}
	// automatic_tax.
	if want := automaticTaxDeclared(spec); want != sub.AutomaticTax {
		d.add(false, "automatic_tax is %s in Stripe, %s declared", onOff(sub.AutomaticTax), onOff(want))
		d.params.AutomaticTax = &want
		d.params.ProrationBehavior = string(prorationBehavior(spec))
	}
	// default_tax_rates (compared as a set: the order does not change the tax).
	have := make([]string, 0, len(sub.DefaultTaxRates))
	for _, r := range sub.DefaultTaxRates {
		have = append(have, r.ID)
	}
	want := declaredTaxRates(spec)
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		d.add(false, "default_tax_rates are %s in Stripe, %s declared", listText(have), listText(want))
		rates := declaredTaxRates(spec)
		d.params.DefaultTaxRates = &rates
	}
	s.diffTrialEnd(d)
	s.diffAnchor(d)
}

func (s *subscriptionScope) diffTrialEnd(d *subscriptionDiff) {
	spec, sub, bd := &s.obj.Spec, s.sub, s.obj.Status.BillingDates
	ts := s.taxState()
	now := sub.ReadAt
	if now == 0 {
		now = time.Now().Unix()
	}
	var want int64
	switch {
	case spec.TrialEnd != nil:
		want = spec.TrialEnd.Unix()
	case bd.TrialEnd != nil:
		want = bd.TrialEnd.Unix() // trialPeriodDays: the end Stripe set at creation
	default:
		want = 0
	}
	if sub.TrialEnd == want || (want == 0 && sub.TrialEnd != 0 && sub.TrialEnd <= now) {
		return
	}
	text := fmt.Sprintf("trial_end is %s in Stripe, %s declared", timeText(sub.TrialEnd), timeText(want))
	if want > now && subscriptionTrialMovable(sub) {
		d.add(false, "%s", text)
		d.params.TrialEnd = &want
		d.params.ProrationBehavior = string(prorationBehavior(spec))
		return
	}
	if want == 0 {
		// Ending a trial early would charge now: reported, never done.
		ts.uncorrectable = append(ts.uncorrectable, text+" (the operator does not end a trial early)")
		return
	}
	ts.uncorrectable = append(ts.uncorrectable, text+" (a trial end in the past cannot be set)")
}

// subscriptionTrialMovable: Stripe sets trial_end on a subscription that
// has not ended.
func subscriptionTrialMovable(sub *stripe.Subscription) bool {
	return !subscriptionEnded(sub.Status)
}

func (s *subscriptionScope) diffAnchor(d *subscriptionDiff) {
	spec, sub, bd := &s.obj.Spec, s.sub, s.obj.Status.BillingDates
	ts := s.taxState()
	if a := spec.BillingCycleAnchor; a != nil && a.ResetToNowGeneration != nil && *a.ResetToNowGeneration != bd.AnchorResetGeneration && !s.observeMode() {
		if *a.ResetToNowGeneration == s.obj.Generation {
			d.add(false, "billing_cycle_anchor is reset to now as declared by spec.billingCycleAnchor.resetToNowGeneration %d", *a.ResetToNowGeneration)
			d.params.ResetAnchorNow = true
			d.params.ProrationBehavior = string(prorationBehavior(spec))
			d.params.PaymentBehavior = string(paymentBehavior(spec))
			return
		}
		// A stale value (set in an earlier edit) is never applied later.
	}
	if sub.TrialEnd != 0 && sub.BillingCycleAnchor == sub.TrialEnd {
		return // a trial puts the anchor at its end; the trial end is compared on its own
	}
	if bd.BillingCycleAnchor != nil && sub.BillingCycleAnchor != 0 && sub.BillingCycleAnchor != bd.BillingCycleAnchor.Unix() {
		ts.uncorrectable = append(ts.uncorrectable, fmt.Sprintf("billing_cycle_anchor is %s in Stripe, %s set by the operator (Stripe cannot move an anchor back; spec.billingCycleAnchor.resetToNowGeneration resets it to now)",
			timeText(sub.BillingCycleAnchor), timeText(bd.BillingCycleAnchor.Unix())))
	}
}

// anchorChangeRefused is the Stalled condition of a billingCycleAnchor
// changed after creation, "" when none.
func (s *subscriptionScope) anchorChangeRefused() string {
	bd := s.obj.Status.BillingDates
	if bd == nil || s.obj.Status.SubscriptionID == "" {
		return ""
	}
	want := anchorDeclaration(&s.obj.Spec)
	if want == bd.AnchorDeclaration || want == "" {
		return ""
	}
	was := bd.AnchorDeclaration
	if was == "" {
		was = "none"
	}
	return fmt.Sprintf("spec.billingCycleAnchor (%s) differs from the anchor subscription %s was created with (%s). Stripe cannot move an existing subscription's billing anchor to a chosen date: set spec.billingCycleAnchor.resetToNowGeneration to the new generation to reset it to now (with spec.prorationBehavior), set spec.trialEnd to give free time until the new date, or recreate the subscription.",
		want, s.obj.Status.SubscriptionID, was)
}

// afterTaxUpdate records the dates a write of the operator set.
func (s *subscriptionScope) afterTaxUpdate(params stripe.SubscriptionUpdateParams, updated *stripe.Subscription) {
	if params.TrialEnd == nil && !params.ResetAnchorNow && len(params.Items) == 0 {
		return
	}
	s.recordBillingDates(updated, false)
	if params.ResetAnchorNow && s.obj.Spec.BillingCycleAnchor != nil && s.obj.Spec.BillingCycleAnchor.ResetToNowGeneration != nil {
		s.obj.Status.BillingDates.AnchorResetGeneration = *s.obj.Spec.BillingCycleAnchor.ResetToNowGeneration
		s.obj.Status.BillingDates.AnchorDeclaration = anchorDeclaration(&s.obj.Spec)
	}
}

// markAnchorReset records the declared reset to now in status and persists
// it before the request that makes it.
func (s *subscriptionScope) markAnchorReset(ctx context.Context) error {
	a := s.obj.Spec.BillingCycleAnchor
	if a == nil || a.ResetToNowGeneration == nil {
		return nil
	}
	s.obj.Status.BillingDates.AnchorResetGeneration = *a.ResetToNowGeneration
	if err := s.recordBeforeWrite(ctx); err != nil {
		return fmt.Errorf("recording the billing anchor reset before making it: %w", err)
	}
	return nil
}

// taxDrift compares the latest full-period invoice's exclusive tax with
// the declared tax rates' and returns the uncorrectable differences too.
func (s *subscriptionScope) taxDrift() []string {
	ts := s.taxState()
	out := append([]string(nil), ts.uncorrectable...)
	inv := s.sub.LatestInvoice
	if inv == nil || s.expected == nil || len(s.obj.Spec.DefaultTaxRates) == 0 || !fullPeriodOfDeclaredItems(inv, s.desired) {
		return out
	}
	if s.sub.TrialEnd != 0 && inv.Created != 0 && inv.Created < s.sub.TrialEnd {
		return out // a trial invoice bills (and taxes) nothing by design
	}
	if inv.DiscountAmount != 0 {
		// Stripe taxes the discounted amount; the expected tax here is of
		// the undiscounted lines, so a discounted invoice is not compared.
		return out
	}
	if inv.ExclusiveTax != ts.tax.Exclusive {
		out = append(out, fmt.Sprintf("the latest full-period invoice %s adds tax of %s, %s expected from the default tax rates %s",
			inv.ID, formatAmount(inv.ExclusiveTax, inv.Currency), formatAmount(ts.tax.Exclusive, s.expected.Currency), strings.Join(declaredTaxRates(&s.obj.Spec), ", ")))
	}
	return out
}

// fullPeriodOfDeclaredItems: the invoice bills a full period of exactly the
// declared items (as invoiceNote judges it).
func fullPeriodOfDeclaredItems(inv *stripe.Invoice, desired []desiredItem) bool {
	if inv.BillingReason != billingReasonCycle && inv.BillingReason != billingReasonCreate {
		return false
	}
	lines := map[string]int64{}
	for _, l := range inv.Lines {
		if l.Proration {
			return false
		}
		lines[l.PriceID] += l.Quantity
	}
	if len(lines) != len(desired) {
		return false
	}
	for _, d := range desired {
		if lines[d.PriceID] != d.Quantity {
			return false
		}
	}
	return true
}

// reportTax writes status.tax and, when automatic tax cannot locate the
// customer or a declared anchor cannot be applied, stalls the resource.
func (s *subscriptionScope) reportTax() {
	obj, ts := s.obj, s.taxState()
	spec := &obj.Spec
	if len(spec.DefaultTaxRates) == 0 && !automaticTaxDeclared(spec) && (s.sub == nil || !s.sub.AutomaticTax) {
		obj.Status.Tax = nil
	} else {
		t := &billingv1alpha1.SubscriptionTaxStatus{Exclusive: ts.tax.Exclusive, Inclusive: ts.tax.Inclusive, CustomerAutomaticTax: ts.customerTax}
		switch {
		case s.sub != nil && s.sub.LatestInvoice != nil:
			t.AutomaticTaxStatus = s.sub.LatestInvoice.AutomaticTaxStatus
		case obj.Status.Tax != nil:
			// A copy from a list has no expanded invoice: keep the last.
			t.AutomaticTaxStatus = obj.Status.Tax.AutomaticTaxStatus
		}
		if t.CustomerAutomaticTax == "" && obj.Status.Tax != nil {
			t.CustomerAutomaticTax = obj.Status.Tax.CustomerAutomaticTax
		}
		obj.Status.Tax = t
	}
	if s.sub == nil || s.ended {
		return
	}
	if msg := s.anchorChangeRefused(); msg != "" {
		markNotReady(obj, billingv1alpha1.ReasonBillingAnchorImmutable, msg)
		markStalled(obj, billingv1alpha1.ReasonBillingAnchorImmutable, msg)
		return
	}
	if !automaticTaxDeclared(spec) {
		return
	}
	inv := s.sub.LatestInvoice
	switch {
	case inv != nil && inv.AutomaticTaxStatus == "requires_location_inputs":
		msg := fmt.Sprintf("Invoice %s cannot be taxed: Stripe reports automatic_tax.status requires_location_inputs. %s.", inv.ID, s.locationMessage())
		markNotReady(obj, billingv1alpha1.ReasonTaxLocationRequired, msg)
		markStalled(obj, billingv1alpha1.ReasonTaxLocationRequired, msg)
	case ts.customerTax == "unrecognized_location":
		msg := fmt.Sprintf("The next invoice cannot be taxed: %s.", s.locationMessage())
		markNotReady(obj, billingv1alpha1.ReasonTaxLocationRequired, msg)
		markStalled(obj, billingv1alpha1.ReasonTaxLocationRequired, msg)
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func listText(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return "[" + strings.Join(ids, ", ") + "]"
}

func timeText(sec int64) string {
	if sec == 0 {
		return "none"
	}
	return metav1.Unix(sec, 0).UTC().Format(time.RFC3339)
}

// customerTaxLocation is what a StripeCustomer's status says of its tax
// location; a change re-triggers the subscriptions that wait for it.
func customerTaxLocation(c *billingv1alpha1.StripeCustomer) string {
	if c.Status.Tax == nil {
		return ""
	}
	return c.Status.Tax.AutomaticTax
}

// declaredTaxRates are spec.defaultTaxRates as Stripe IDs, in order.
func declaredTaxRates(spec *billingv1alpha1.StripeSubscriptionSpec) []string {
	out := make([]string, 0, len(spec.DefaultTaxRates))
	for _, r := range spec.DefaultTaxRates {
		out = append(out, string(r))
	}
	return out
}
