package controllers

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// maxPlanPreviewSubscriptions bounds the subscriptions one plan preview
// asks Stripe about (two or three reads each).
const maxPlanPreviewSubscriptions = 100

// previewPass is one answer to one preview: its namespace's resources, read
// once, and the Stripe reads made.
type previewPass struct {
	r     *StripeBillingPreviewReconciler
	p     *billingv1alpha1.StripeBillingPreview
	calls int
	// first is the first proration date used (status.previewedAt).
	first int64
	// clocks caches each customer's test clock time (0: not on one).
	clocks map[string]int64

	customers     []billingv1alpha1.StripeCustomer
	plans         []billingv1alpha1.StripePlan
	subscriptions []billingv1alpha1.StripeSubscription
	// changedPlans are the preview's own plan manifests, by name.
	changedPlans map[string]*billingv1alpha1.StripePlanSpec
	prices       map[string]*stripe.Price
}

// answer computes the preview's status. A *previewRefusal is a preview
// that cannot be answered as written.
func (r *StripeBillingPreviewReconciler) answer(ctx context.Context, p *billingv1alpha1.StripeBillingPreview) (*billingv1alpha1.StripeBillingPreviewStatus, int, error) {
	x := &previewPass{r: r, p: p, changedPlans: map[string]*billingv1alpha1.StripePlanSpec{}, prices: map[string]*stripe.Price{}, clocks: map[string]int64{}}
	// Tenancy: everything is read in the preview's namespace only.
	in := client.InNamespace(p.Namespace)
	var cl billingv1alpha1.StripeCustomerList
	var pl billingv1alpha1.StripePlanList
	var sl billingv1alpha1.StripeSubscriptionList
	if err := r.List(ctx, &cl, in); err != nil {
		return nil, 0, fmt.Errorf("listing StripeCustomers: %w", err)
	}
	if err := r.List(ctx, &pl, in); err != nil {
		return nil, 0, fmt.Errorf("listing StripePlans: %w", err)
	}
	if err := r.List(ctx, &sl, in); err != nil {
		return nil, 0, fmt.Errorf("listing StripeSubscriptions: %w", err)
	}
	x.customers, x.plans, x.subscriptions = cl.Items, pl.Items, sl.Items
	for i := range p.Spec.Plans {
		// spec.plans[].spec is kept without StripePlan's schema (the CRD's
		// CEL cost budget); decode it strictly and refuse naming the field.
		spec, err := p.Spec.Plans[i].DecodeSpec()
		if err != nil {
			return nil, 0, refuse(billingv1alpha1.ReasonPreviewRefused, "spec.plans[%d] (StripePlan %s): %s", i, p.Spec.Plans[i].Name, err.Error())
		}
		x.changedPlans[p.Spec.Plans[i].Name] = spec
	}
	out := &billingv1alpha1.StripeBillingPreviewStatus{}
	charged := map[string]int64{}
	for i := range p.Spec.Subscriptions {
		sp, err := x.subscription(ctx, &p.Spec.Subscriptions[i])
		if err != nil {
			return nil, x.calls, err
		}
		if sp.Immediate != nil {
			charged[sp.Immediate.Currency] += sp.Immediate.AmountDue
		}
		out.Subscriptions = append(out.Subscriptions, *sp)
	}
	for i := range p.Spec.Plans {
		pp, err := x.plan(ctx, p.Spec.Plans[i].Name, x.changedPlans[p.Spec.Plans[i].Name])
		if err != nil {
			return nil, x.calls, err
		}
		for _, c := range pp.Currencies {
			charged[c.Currency] += c.ChargedNow
		}
		out.Plans = append(out.Plans, *pp)
	}
	if x.first == 0 {
		x.first = r.now().Unix()
	}
	out.PreviewedAt = unixTime(x.first)
	for _, cur := range sortedKeys(charged) {
		out.ChargedNow = append(out.ChargedNow, billingv1alpha1.Amount{Amount: charged[cur], Currency: cur})
	}
	return out, x.calls, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (x *previewPass) ns() string { return x.p.Namespace }

// stripeNow is Stripe's "now" for a customer, the proration date of its
// previewed changes: the frozen time of the test clock the customer is on
// (Stripe computes a test-clock customer's invoices at the clock's time),
// else answered, Stripe's time of a read in this preview (its Date
// header), else the reconciler's clock. A change applied later prorates a
// little less; the test-mode Stripe's clock stands still between reads.
func (x *previewPass) stripeNow(ctx context.Context, customerID string, answered int64) (int64, error) {
	at, known := x.clocks[customerID]
	if !known {
		x.calls++
		c, err := x.r.Stripe.GetCustomer(ctx, customerID)
		if err != nil {
			return 0, fmt.Errorf("reading customer %s: %w", customerID, err)
		}
		if c.TestClock != "" {
			x.calls++
			tc, err := x.r.Stripe.GetTestClock(ctx, c.TestClock)
			if err != nil {
				return 0, fmt.Errorf("reading test clock %s: %w", c.TestClock, err)
			}
			at = tc.FrozenTime
		}
		x.clocks[customerID] = at
	}
	switch {
	case at != 0:
	case answered != 0:
		at = answered
	default:
		at = x.r.now().Unix()
	}
	if x.first == 0 {
		x.first = at
	}
	return at, nil
}

// findSubscription is the StripeSubscription of that name in the
// namespace, nil when none.
func (x *previewPass) findSubscription(name string) *billingv1alpha1.StripeSubscription {
	for i := range x.subscriptions {
		if x.subscriptions[i].Name == name {
			return &x.subscriptions[i]
		}
	}
	return nil
}

func (x *previewPass) findPlan(name string) *billingv1alpha1.StripePlan {
	for i := range x.plans {
		if x.plans[i].Name == name {
			return &x.plans[i]
		}
	}
	return nil
}

// customerInNamespace tells whether a Stripe customer is bound to a
// resource of the namespace: a StripeCustomer's, or a StripeSubscription's
// customer.
func (x *previewPass) customerInNamespace(id string) bool {
	for i := range x.customers {
		if x.customers[i].Status.CustomerID == id {
			return true
		}
	}
	for i := range x.subscriptions {
		if x.subscriptions[i].Status.CustomerID == id {
			return true
		}
	}
	return false
}

// priceInNamespace tells whether a Stripe price is bound to a resource of
// the namespace: a StripePlan's current or earlier price, or an item of a
// StripeSubscription there.
func (x *previewPass) priceInNamespace(id string) bool {
	for i := range x.plans {
		if x.plans[i].Status.PriceID == id || slices.Contains(x.plans[i].Status.PreviousPriceIDs, id) {
			return true
		}
	}
	for i := range x.subscriptions {
		for _, it := range x.subscriptions[i].Status.Items {
			if it.PriceID == id {
				return true
			}
		}
	}
	return false
}

func (x *previewPass) subscriptionInNamespace(id string) *billingv1alpha1.StripeSubscription {
	for i := range x.subscriptions {
		if x.subscriptions[i].Status.SubscriptionID == id {
			return &x.subscriptions[i]
		}
	}
	return nil
}

func (x *previewPass) price(ctx context.Context, id string) (*stripe.Price, error) {
	if p, ok := x.prices[id]; ok {
		return p, nil
	}
	x.calls++
	p, err := x.r.Stripe.GetPrice(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading price %s: %w", id, err)
	}
	x.prices[id] = p
	return p, nil
}

func (x *previewPass) upcoming(ctx context.Context, p stripe.UpcomingParams) (*stripe.UpcomingInvoice, error) {
	x.calls++
	in, err := x.r.Stripe.UpcomingInvoice(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("previewing the upcoming invoice: %w", err)
	}
	return in, nil
}

// previewItem is a subscription item as the manifest would have it: a
// price ID, or an inline price for a plan whose price the preview changes.
type previewItem struct {
	priceID  string
	inline   *stripe.InlinePrice
	quantity int64
	plan     string
}

func (it previewItem) interval() (string, int64) {
	if it.inline != nil {
		return it.inline.Interval, max(it.inline.IntervalCount, 1)
	}
	return "", 0
}

// planPriceChange is a plan manifest's new price when it differs from the
// plan's current Stripe price; nil when the price stays.
func (x *previewPass) planPriceChange(ctx context.Context, plan *billingv1alpha1.StripePlan, spec *billingv1alpha1.StripePlanSpec) (*stripe.InlinePrice, error) {
	if plan == nil || plan.Status.PriceID == "" {
		return nil, nil
	}
	cur, err := x.price(ctx, plan.Status.PriceID)
	if err != nil {
		return nil, err
	}
	if priceMatches(cur, &spec.Price) {
		return nil, nil
	}
	return &stripe.InlinePrice{ProductID: plan.Status.ProductID, Currency: spec.Price.Currency, UnitAmount: spec.Price.UnitAmount,
		Interval: string(spec.Price.Interval), IntervalCount: max(spec.Price.IntervalCount, 1)}, nil
}

// items resolves a manifest's items in the preview's namespace.
func (x *previewPass) items(ctx context.Context, name string, spec *billingv1alpha1.StripeSubscriptionSpec) ([]previewItem, error) {
	var out []previewItem
	for i, it := range spec.Items {
		pi := previewItem{quantity: max(it.Quantity, 1)}
		switch {
		case it.PlanRef != nil:
			plan := x.findPlan(it.PlanRef.Name)
			changed := x.changedPlans[it.PlanRef.Name]
			if plan == nil || plan.Status.PriceID == "" {
				if changed != nil {
					return nil, refuse(billingv1alpha1.ReasonPreviewRefused, "StripeSubscription %q item %d references StripePlan %q, which is new: its Stripe product does not exist yet, so Stripe cannot price it. Apply the plan first, then preview the subscription.", name, i+1, it.PlanRef.Name)
				}
				return nil, refuse(billingv1alpha1.ReasonPreviewRefused, "StripeSubscription %q item %d references StripePlan %q, which does not exist in namespace %s or has no Stripe price yet.", name, i+1, it.PlanRef.Name, x.ns())
			}
			pi.priceID, pi.plan = plan.Status.PriceID, plan.Name
			if changed != nil {
				inline, err := x.planPriceChange(ctx, plan, changed)
				if err != nil {
					return nil, err
				}
				if inline != nil {
					pi.priceID, pi.inline = "", inline
				}
			}
		default:
			if !x.priceInNamespace(it.PriceID) {
				return nil, refuse(billingv1alpha1.ReasonNotInNamespace, "StripeSubscription %q item %d: priceID %s is not the price of a StripePlan or StripeSubscription in namespace %s; a preview may refer only to its own namespace's resources.", name, i+1, it.PriceID, x.ns())
			}
			pi.priceID = it.PriceID
		}
		out = append(out, pi)
	}
	return out, nil
}

// customer resolves the manifest's customer in the preview's namespace.
func (x *previewPass) customer(name string, spec *billingv1alpha1.StripeSubscriptionSpec) (string, error) {
	switch {
	case spec.CustomerRef != nil:
		for i := range x.customers {
			if c := &x.customers[i]; c.Name == spec.CustomerRef.Name {
				if c.Status.CustomerID == "" {
					return "", refuse(billingv1alpha1.ReasonPreviewRefused, "StripeSubscription %q: StripeCustomer %q has no Stripe customer yet.", name, c.Name)
				}
				return c.Status.CustomerID, nil
			}
		}
		return "", refuse(billingv1alpha1.ReasonPreviewRefused, "StripeSubscription %q: StripeCustomer %q does not exist in namespace %s.", name, spec.CustomerRef.Name, x.ns())
	case spec.CustomerID != "":
		if !x.customerInNamespace(spec.CustomerID) {
			return "", refuse(billingv1alpha1.ReasonNotInNamespace, "StripeSubscription %q: customerID %s is not the customer of a StripeCustomer or StripeSubscription in namespace %s; a preview may refer only to its own namespace's resources.", name, spec.CustomerID, x.ns())
		}
		return spec.CustomerID, nil
	}
	return "", refuse(billingv1alpha1.ReasonPreviewRefused, "StripeSubscription %q names no customer: set customerRef or customerID.", name)
}

// subscription previews one StripeSubscription manifest.
func (x *previewPass) subscription(ctx context.Context, m *billingv1alpha1.PreviewSubscription) (*billingv1alpha1.SubscriptionPreview, error) {
	spec := &m.Spec
	out := &billingv1alpha1.SubscriptionPreview{Name: m.Name}
	customerID, err := x.customer(m.Name, spec)
	if err != nil {
		return nil, err
	}
	out.CustomerID = customerID
	items, err := x.items(ctx, m.Name, spec)
	if err != nil {
		return nil, err
	}
	subID := ""
	if existing := x.findSubscription(m.Name); existing != nil && existing.Status.SubscriptionID != "" && !subscriptionEnded(existing.Status.StripeStatus) {
		subID = existing.Status.SubscriptionID
	}
	if spec.ManagementPolicy == billingv1alpha1.ManagementPolicyObserve {
		out.Notes = append(out.Notes, "managementPolicy Observe: the operator would not make this change; this is what it would bill if it did.")
	}
	if spec.SubscriptionID != "" {
		bound := x.subscriptionInNamespace(spec.SubscriptionID)
		if bound == nil {
			return nil, refuse(billingv1alpha1.ReasonNotInNamespace, "StripeSubscription %q: subscriptionID %s is not bound to a StripeSubscription in namespace %s; a preview may refer only to its own namespace's resources.", m.Name, spec.SubscriptionID, x.ns())
		}
		subID = spec.SubscriptionID
	}
	if collectionMethod(spec) == billingv1alpha1.CollectionMethodSendInvoice {
		out.Notes = append(out.Notes, "collectionMethod send_invoice: the invoices are sent to the customer to pay, not charged to a card.")
	}
	if spec.PauseCollection != nil {
		out.Notes = append(out.Notes, fmt.Sprintf("Collection is paused (%s): renewal invoices are made but not collected.", spec.PauseCollection.Behavior))
	}
	if subID == "" {
		return out, x.newSubscription(ctx, out, spec, items)
	}
	out.SubscriptionID = subID
	return out, x.changedSubscription(ctx, out, spec, items)
}

// newSubscription previews a subscription not created yet: its first
// invoice (charged at once) and its first renewal.
func (x *previewPass) newSubscription(ctx context.Context, out *billingv1alpha1.SubscriptionPreview, spec *billingv1alpha1.StripeSubscriptionSpec, items []previewItem) error {
	params := stripe.UpcomingParams{CustomerID: out.CustomerID}
	for _, it := range items {
		params.Items = append(params.Items, stripe.UpcomingItem{PriceID: it.priceID, Price: it.inline, Quantity: it.quantity})
	}
	interval, count, err := x.itemsInterval(ctx, items)
	if err != nil {
		return err
	}
	// A full first period: what the subscription bills without a trial,
	// and what its renewal bills.
	full, err := x.upcoming(ctx, params)
	if err != nil {
		return err
	}
	answered := int64(0)
	if full != nil {
		answered = full.AnsweredAt
	}
	at, err := x.stripeNow(ctx, out.CustomerID, answered)
	if err != nil {
		return err
	}
	out.ProrationDate = unixTime(at)
	start := time.Unix(at, 0).UTC()
	renewal := addInterval(start, interval, count).Unix()
	first := full
	if spec.TrialPeriodDays != nil {
		params.TrialEnd = start.AddDate(0, 0, int(*spec.TrialPeriodDays)).Unix()
		renewal = params.TrialEnd
		out.Notes = append(out.Notes, fmt.Sprintf("The trial of %d days bills nothing until %s.", *spec.TrialPeriodDays, time.Unix(renewal, 0).UTC().Format(time.RFC3339)))
		if first, err = x.upcoming(ctx, params); err != nil {
			return err
		}
	}
	if first != nil {
		out.Immediate = invoicePreview(first, at)
	}
	if full != nil {
		out.Next = invoicePreview(full, renewal)
	}
	if spec.CancelAtPeriodEnd {
		out.Next = nil
		out.EndsAt = unixTime(renewal)
	}
	return nil
}

// itemsInterval is the billing period of the items (the first one's).
func (x *previewPass) itemsInterval(ctx context.Context, items []previewItem) (string, int64, error) {
	for _, it := range items {
		if i, c := it.interval(); i != "" {
			return i, c, nil
		}
		p, err := x.price(ctx, it.priceID)
		if err != nil {
			return "", 0, err
		}
		return p.Interval, max(p.IntervalCount, 1), nil
	}
	return "month", 1, nil
}

// changedSubscription previews a change of a subscription Stripe has: the
// invoice the change makes at once, if any, and the next one.
func (x *previewPass) changedSubscription(ctx context.Context, out *billingv1alpha1.SubscriptionPreview, spec *billingv1alpha1.StripeSubscriptionSpec, items []previewItem) error {
	x.calls++
	sub, err := x.r.Stripe.GetSubscription(ctx, out.SubscriptionID)
	if err != nil {
		return fmt.Errorf("reading subscription %s: %w", out.SubscriptionID, err)
	}
	if sub.CustomerID != out.CustomerID {
		return refuse(billingv1alpha1.ReasonPreviewRefused, "StripeSubscription %q: subscription %s belongs to customer %s, not %s; a subscription's customer cannot change.", out.Name, sub.ID, sub.CustomerID, out.CustomerID)
	}
	at, err := x.stripeNow(ctx, sub.CustomerID, sub.ReadAt)
	if err != nil {
		return err
	}
	out.ProrationDate = unixTime(at)
	// Items on an earlier price of their plan stay there unless the plan's
	// priceChangePolicy is Immediately (see applyPriceChangePolicy).
	desired := make([]desiredItem, len(items))
	for i, it := range items {
		desired[i] = desiredItem{PriceID: it.priceID, Quantity: it.quantity}
		if it.inline != nil {
			desired[i].PriceID = "inline:" + it.plan
		}
		if plan := x.findPlan(it.plan); plan != nil && priceChangePolicy(&plan.Spec) != billingv1alpha1.PriceChangePolicyImmediately {
			for _, have := range sub.Items {
				if slices.Contains(plan.Status.PreviousPriceIDs, have.PriceID) {
					desired[i].PriceID, items[i].priceID, items[i].inline = have.PriceID, have.PriceID, nil
					out.Notes = append(out.Notes, fmt.Sprintf("Item %d stays on %s, an earlier price of StripePlan %s (priceChangePolicy %s).", i+1, have.PriceID, plan.Name, priceChangePolicy(&plan.Spec)))
				}
			}
		}
	}
	// An item on a plan whose price this preview changes follows the
	// plan's new priceChangePolicy, as the applied change would
	// (applyPriceChangePolicy): Keep leaves it on its price; AtNextRenewal
	// moves it now without proration (same interval) or at the period end
	// (a schedule; it stays here); Immediately moves it with the
	// subscription's prorationBehavior.
	behavior := string(prorationBehavior(spec))
	for i, it := range items {
		if it.inline == nil {
			continue
		}
		plan := x.findPlan(it.plan)
		onCurrent := false
		for _, have := range sub.Items {
			onCurrent = onCurrent || have.PriceID == plan.Status.PriceID
		}
		if !onCurrent {
			continue
		}
		from := x.prices[plan.Status.PriceID]
		sameInterval := from != nil && from.Interval == it.inline.Interval && max(from.IntervalCount, 1) == it.inline.IntervalCount
		policy := priceChangePolicy(x.changedPlans[it.plan])
		switch {
		case policy == billingv1alpha1.PriceChangePolicyKeep || from == nil || from.Currency != it.inline.Currency ||
			(policy == billingv1alpha1.PriceChangePolicyAtNextRenewal && !sameInterval):
			desired[i].PriceID, items[i].priceID, items[i].inline = plan.Status.PriceID, plan.Status.PriceID, nil
			out.Notes = append(out.Notes, fmt.Sprintf("Item %d stays on %s for now: StripePlan %s's new price does not move it here (priceChangePolicy %s).", i+1, plan.Status.PriceID, plan.Name, policy))
		case policy == billingv1alpha1.PriceChangePolicyAtNextRenewal:
			behavior = string(billingv1alpha1.ProrationBehaviorNone)
			out.Notes = append(out.Notes, fmt.Sprintf("Item %d moves to StripePlan %s's new price without proration (priceChangePolicy AtNextRenewal), and so does the rest of this change.", i+1, plan.Name))
		}
	}
	match, removed := matchItems(desired, sub.Items)
	var upd []stripe.UpcomingItem
	changed, intervalChanges := false, false
	for i, it := range items {
		u := stripe.UpcomingItem{PriceID: it.priceID, Price: it.inline, Quantity: it.quantity}
		if j := match[i]; j >= 0 {
			have := sub.Items[j]
			u.ID = have.ID
			if have.PriceID != desired[i].PriceID || have.Quantity != it.quantity {
				changed = true
			}
			iv, c := it.interval()
			if iv == "" && have.PriceID != it.priceID {
				p, err := x.price(ctx, it.priceID)
				if err != nil {
					return err
				}
				iv, c = p.Interval, max(p.IntervalCount, 1)
			}
			if iv != "" && (iv != have.Interval || c != max(have.IntervalCount, 1)) {
				intervalChanges = true
			}
		} else {
			changed = true
		}
		upd = append(upd, u)
	}
	for _, j := range removed {
		changed = true
		upd = append(upd, stripe.UpcomingItem{ID: sub.Items[j].ID, Deleted: true})
	}
	cancel := spec.CancelAtPeriodEnd
	params := stripe.UpcomingParams{SubscriptionID: sub.ID, Items: upd, ProrationBehavior: behavior, ProrationDate: at, CancelAtPeriodEnd: &cancel}
	trialing := sub.Status == subStatusTrialing
	// Stripe invoices at once an interval change (a new period starts) and
	// always_invoice prorations; a trial is not prorated
	// (https://docs.stripe.com/billing/subscriptions/prorations).
	immediate := !trialing && changed && (intervalChanges || behavior == string(billingv1alpha1.ProrationBehaviorAlwaysInvoice))
	first, err := x.upcoming(ctx, params)
	if err != nil {
		return err
	}
	renewal := sub.CurrentPeriodEnd
	if trialing && sub.TrialEnd != 0 {
		renewal = sub.TrialEnd
	}
	if cancel {
		out.EndsAt = unixTime(sub.CurrentPeriodEnd)
	}
	if !immediate {
		if first != nil {
			out.Next = invoicePreview(first, renewal)
		}
		return nil
	}
	if first != nil {
		out.Immediate = invoicePreview(first, at)
	}
	// The next invoice after it: the items, no prorations (those were
	// invoiced now).
	params.ProrationBehavior = string(billingv1alpha1.ProrationBehaviorNone)
	next, err := x.upcoming(ctx, params)
	if err != nil {
		return err
	}
	if intervalChanges {
		// The new period starts now; its renewal bills a full period.
		interval, count, err := x.itemsInterval(ctx, items)
		if err != nil {
			return err
		}
		renewal = addInterval(time.Unix(at, 0).UTC(), interval, count).Unix()
		if cancel {
			out.EndsAt, next = unixTime(renewal), nil
		}
	}
	if next != nil {
		out.Next = invoicePreview(next, renewal)
	}
	return nil
}

func invoicePreview(in *stripe.UpcomingInvoice, date int64) *billingv1alpha1.InvoicePreview {
	out := &billingv1alpha1.InvoicePreview{Date: unixTime(date), AmountDue: in.AmountDue, Total: in.Total, Currency: in.Currency}
	for _, l := range in.Lines {
		out.Lines = append(out.Lines, billingv1alpha1.PreviewLine{Description: l.Description, PriceID: l.PriceID, Quantity: l.Quantity, Amount: l.Amount, Proration: l.Proration})
	}
	return out
}

// addInterval adds a billing period to t (Stripe's calendar arithmetic:
// months and years keep the day of the month where they can).
func addInterval(t time.Time, interval string, count int64) time.Time {
	n := int(max(count, 1))
	switch interval {
	case "day":
		return t.AddDate(0, 0, n)
	case "week":
		return t.AddDate(0, 0, 7*n)
	case "year":
		return t.AddDate(n, 0, 0)
	}
	return t.AddDate(0, n, 0)
}

// plan previews one StripePlan manifest: what its price change does to the
// subscriptions that reference the plan, under its priceChangePolicy.
func (x *previewPass) plan(ctx context.Context, name string, spec *billingv1alpha1.StripePlanSpec) (*billingv1alpha1.PlanPreview, error) {
	out := &billingv1alpha1.PlanPreview{Name: name, Policy: priceChangePolicy(spec)}
	plan := x.findPlan(name)
	if plan == nil || plan.Status.PriceID == "" {
		out.PriceChanges = true
		out.Notes = append(out.Notes, "A new plan: no subscription is on it yet, so it bills nothing by itself.")
		return out, nil
	}
	out.FromPriceID = plan.Status.PriceID
	inline, err := x.planPriceChange(ctx, plan, spec)
	if err != nil {
		return nil, err
	}
	if inline == nil {
		out.Notes = append(out.Notes, "The price stays the same: no subscription moves and nothing is billed.")
		return out, nil
	}
	out.PriceChanges = true
	from := x.prices[plan.Status.PriceID]
	sameInterval := from.Interval == inline.Interval && max(from.IntervalCount, 1) == inline.IntervalCount
	var subs []*billingv1alpha1.StripeSubscription
	for i := range x.subscriptions {
		s := &x.subscriptions[i]
		if s.Status.SubscriptionID == "" || subscriptionEnded(s.Status.StripeStatus) {
			continue
		}
		for _, it := range s.Spec.Items {
			if it.PlanRef != nil && it.PlanRef.Name == name {
				subs = append(subs, s)
				break
			}
		}
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name })
	if len(subs) > maxPlanPreviewSubscriptions {
		out.Notes = append(out.Notes, fmt.Sprintf("%d subscriptions reference the plan; the preview covers the first %d by name.", len(subs), maxPlanPreviewSubscriptions))
		subs = subs[:maxPlanPreviewSubscriptions]
	}
	sums := map[string]*billingv1alpha1.PlanCurrencyPreview{}
	for _, s := range subs {
		sp, err := x.planSubscription(ctx, s, plan, inline, out.Policy, sameInterval)
		if err != nil {
			return nil, err
		}
		if sp == nil {
			continue
		}
		c := sums[sp.Currency]
		if c == nil {
			c = &billingv1alpha1.PlanCurrencyPreview{Currency: sp.Currency}
			sums[sp.Currency] = c
		}
		c.Subscriptions++
		switch sp.Move {
		case billingv1alpha1.PlanMoveNow:
			c.MovingNow++
		case billingv1alpha1.PlanMoveAtNextRenewal:
			c.MovingAtNextRenewal++
		default:
			c.Kept++
		}
		c.ChargedNow += sp.ChargedNow
		c.NextRenewalsChange += sp.NextAfter - sp.NextBefore
		out.Subscriptions = append(out.Subscriptions, *sp)
	}
	for _, cur := range sortedKeys(sums) {
		out.Currencies = append(out.Currencies, *sums[cur])
	}
	if inline.Currency != from.Currency {
		out.Notes = append(out.Notes, "The currency changes: existing subscriptions stay on their prices (a Stripe customer bills in one currency); only new subscriptions get the new price.")
	}
	if out.Policy == billingv1alpha1.PriceChangePolicyAtNextRenewal && !sameInterval {
		out.Notes = append(out.Notes, "The interval changes: a subscription schedule moves each subscription at its period end; the next renewal's amount is computed from the new price, not asked of Stripe.")
	}
	return out, nil
}

// planSubscription is what the plan change does to one subscription; nil
// when its item is not on the plan's current price.
func (x *previewPass) planSubscription(ctx context.Context, s *billingv1alpha1.StripeSubscription, plan *billingv1alpha1.StripePlan, inline *stripe.InlinePrice, policy billingv1alpha1.PriceChangePolicy, sameInterval bool) (*billingv1alpha1.PlanSubscriptionPreview, error) {
	x.calls++
	sub, err := x.r.Stripe.GetSubscription(ctx, s.Status.SubscriptionID)
	if err != nil {
		if e, ok := err.(*stripe.Error); ok && e.Class == stripe.ClassNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("reading subscription %s: %w", s.Status.SubscriptionID, err)
	}
	idx := -1
	for i, it := range sub.Items {
		if it.PriceID == plan.Status.PriceID {
			idx = i
		}
	}
	if idx < 0 || subscriptionEnded(sub.Status) {
		return nil, nil
	}
	at, err := x.stripeNow(ctx, sub.CustomerID, sub.ReadAt)
	if err != nil {
		return nil, err
	}
	cur := sub.Items[idx].Currency
	out := &billingv1alpha1.PlanSubscriptionPreview{Name: s.Name, SubscriptionID: sub.ID, Currency: cur, Move: billingv1alpha1.PlanMoveKept}
	before, err := x.upcoming(ctx, stripe.UpcomingParams{SubscriptionID: sub.ID})
	if err != nil {
		return nil, err
	}
	if before != nil {
		out.NextBefore, out.NextAfter = before.AmountDue, before.AmountDue
	}
	if policy == billingv1alpha1.PriceChangePolicyKeep || inline.Currency != cur {
		return out, nil
	}
	moved := func(behavior string) stripe.UpcomingParams {
		var items []stripe.UpcomingItem
		for i, it := range sub.Items {
			u := stripe.UpcomingItem{ID: it.ID, PriceID: it.PriceID, Quantity: it.Quantity}
			if i == idx {
				u.PriceID, u.Price = "", inline
			}
			items = append(items, u)
		}
		return stripe.UpcomingParams{SubscriptionID: sub.ID, Items: items, ProrationBehavior: behavior, ProrationDate: at}
	}
	trialing := sub.Status == subStatusTrialing
	switch {
	case policy == billingv1alpha1.PriceChangePolicyAtNextRenewal:
		out.Move, out.At = billingv1alpha1.PlanMoveAtNextRenewal, unixTime(sub.CurrentPeriodEnd)
		if sub.CancelAtPeriodEnd {
			out.Move, out.At = billingv1alpha1.PlanMoveKept, nil // no renewal to move at
			return out, nil
		}
		if !sameInterval {
			// A schedule moves it at the period end: the renewal bills the
			// new price for the item, the others as they are.
			var sum int64
			for i, it := range sub.Items {
				if i == idx {
					sum += inline.UnitAmount * it.Quantity
				} else {
					sum += it.UnitAmount * it.Quantity
				}
			}
			out.NextAfter = sum
			return out, nil
		}
		after, err := x.upcoming(ctx, moved(string(billingv1alpha1.ProrationBehaviorNone)))
		if err != nil {
			return nil, err
		}
		if after != nil {
			out.NextAfter = after.AmountDue
		}
	default: // Immediately, with the subscription's own prorationBehavior
		out.Move, out.At = billingv1alpha1.PlanMoveNow, unixTime(at)
		behavior := string(prorationBehavior(&s.Spec))
		first, err := x.upcoming(ctx, moved(behavior))
		if err != nil {
			return nil, err
		}
		if trialing || (sameInterval && behavior != string(billingv1alpha1.ProrationBehaviorAlwaysInvoice)) {
			if first != nil {
				out.NextAfter = first.AmountDue
			}
			return out, nil
		}
		if first != nil {
			out.ChargedNow = first.AmountDue
		}
		next, err := x.upcoming(ctx, moved(string(billingv1alpha1.ProrationBehaviorNone)))
		if err != nil {
			return nil, err
		}
		out.NextAfter = 0
		if next != nil {
			out.NextAfter = next.AmountDue
		}
	}
	return out, nil
}
