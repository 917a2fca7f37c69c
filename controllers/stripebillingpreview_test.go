package controllers

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/runtime"
	"sort"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// previewer answers previews in the tests: the reconciler called directly,
// with the uncached client and the harness's Stripe client. Its own clock
// is the wall clock, as in production, while the test-mode Stripe's is
// days ahead: the proration date must come from Stripe.
func (h *harness) previewer() *StripeBillingPreviewReconciler {
	return &StripeBillingPreviewReconciler{Client: h.c, Stripe: h.stripe}
}

// preview creates a preview in ns, answers it and returns it.
func (h *harness) preview(ns, name string, spec billingv1alpha1.StripeBillingPreviewSpec) *billingv1alpha1.StripeBillingPreview {
	h.t.Helper()
	g := NewWithT(h.t)
	p := &billingv1alpha1.StripeBillingPreview{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	g.Expect(h.c.Create(context.Background(), p)).To(Succeed())
	_, err := h.previewer().Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.c.Get(context.Background(), client.ObjectKeyFromObject(p), p)).To(Succeed())
	return p
}

// stripeWrites counts the POST and DELETE requests the fake has served.
func stripeWrites(h *harness) int {
	n := 0
	for route, c := range h.fake.Stats().Requests {
		if strings.HasPrefix(route, "POST ") || strings.HasPrefix(route, "DELETE ") {
			n += c
		}
	}
	return n
}

func previewOf(sub *billingv1alpha1.StripeSubscription, mutate func(*billingv1alpha1.StripeSubscriptionSpec)) billingv1alpha1.PreviewSubscription {
	spec := *sub.Spec.DeepCopy()
	if mutate != nil {
		mutate(&spec)
	}
	return billingv1alpha1.PreviewSubscription{Name: sub.Name, Spec: spec}
}

type lineKey struct {
	amount, quantity int64
	proration        bool
}

func previewLines(in *billingv1alpha1.InvoicePreview) []lineKey {
	var out []lineKey
	for _, l := range in.Lines {
		out = append(out, lineKey{l.Amount, l.Quantity, l.Proration})
	}
	sortLines(out)
	return out
}

func invoiceLines(in *stripe.Invoice) []lineKey {
	var out []lineKey
	for _, l := range in.Lines {
		out = append(out, lineKey{l.Amount, l.Quantity, l.Proration})
	}
	sortLines(out)
	return out
}

func sortLines(l []lineKey) {
	sort.Slice(l, func(i, j int) bool { return fmt.Sprint(l[i]) < fmt.Sprint(l[j]) })
}

// invoicesOf lists a subscription's invoices in Stripe, oldest first.
func (h *harness) invoicesOf(subID string) []*stripe.Invoice {
	h.t.Helper()
	snap, ok := h.fake.Subscription(subID)
	NewWithT(h.t).Expect(ok).To(BeTrue())
	var out []*stripe.Invoice
	for _, s := range snap.Invoices {
		in, err := h.stripe.GetInvoice(context.Background(), s.ID)
		NewWithT(h.t).Expect(err).NotTo(HaveOccurred())
		out = append(out, in)
	}
	return out
}

// expectInvoice checks that Stripe's invoice is the previewed one, to the
// cent, line by line.
func expectInvoice(t *testing.T, g *WithT, what string, preview *billingv1alpha1.InvoicePreview, in *stripe.Invoice) {
	g.Expect(preview).NotTo(BeNil(), "%s: previewed", what)
	g.Expect(in).NotTo(BeNil(), "%s: invoiced", what)
	t.Logf("%s: previewed %d %s in %d lines, invoiced %d %s in %d lines", what, preview.AmountDue, preview.Currency, len(preview.Lines), in.AmountDue, in.Currency, len(in.Lines))
	g.Expect(in.AmountDue).To(Equal(preview.AmountDue), "%s: amount due", what)
	g.Expect(in.Currency).To(Equal(preview.Currency), "%s: currency", what)
	g.Expect(invoiceLines(in)).To(Equal(previewLines(preview)), "%s: lines", what)
}

// TestPreviewEqualsTheInvoice previews changes, applies them, and checks
// that the invoices Stripe then makes are the previewed ones, to the cent:
// a quantity change, a plan swap with proration, a trial, a cancellation at
// period end, and a plan price change under each priceChangePolicy.
func TestPreviewEqualsTheInvoice(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{webhooks: true, resync: time.Hour})
	h.billingSetup("pm_card_visa", map[string]int64{"basic": 1000, "pro": 2500})
	policies := []billingv1alpha1.PriceChangePolicy{billingv1alpha1.PriceChangePolicyKeep, billingv1alpha1.PriceChangePolicyAtNextRenewal, billingv1alpha1.PriceChangePolicyImmediately}
	planName := func(p billingv1alpha1.PriceChangePolicy) string {
		return "plan-" + map[billingv1alpha1.PriceChangePolicy]string{"Keep": "keep", "AtNextRenewal": "renewal", "Immediately": "now"}[p]
	}
	plans := map[billingv1alpha1.PriceChangePolicy]*billingv1alpha1.StripePlan{}
	for _, pol := range policies {
		p := newPlan(planName(pol), 1200, func(s *billingv1alpha1.StripePlanSpec) { s.PriceChangePolicy = pol })
		h.create(p)
		h.waitReady(p)
		plans[pol] = p
	}
	always := func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.ProrationBehavior = billingv1alpha1.ProrationBehaviorAlwaysInvoice
	}
	qty := newSub("qty", nil, planItem("basic", 1))
	swap := newSub("swap", always, planItem("basic", 1))
	cancel := newSub("cancel", nil, planItem("basic", 2))
	subs := []*billingv1alpha1.StripeSubscription{qty, swap, cancel}
	onPlan := map[billingv1alpha1.PriceChangePolicy]*billingv1alpha1.StripeSubscription{}
	for _, pol := range policies {
		s := newSub("on-"+planName(pol), always, planItem(planName(pol), 3))
		onPlan[pol] = s
		subs = append(subs, s)
	}
	for _, s := range subs {
		h.create(s)
	}
	for _, s := range subs {
		h.waitReady(s)
	}
	// A third of the period later, so that prorations are partial.
	h.advance(10 * 24 * time.Hour)

	// Preview everything at one instant of the test clock (the clock stands
	// still until the next advance, so the proration date of the preview
	// is the time the changes are applied).
	days := int64(7)
	trial := newSub("trial", func(s *billingv1alpha1.StripeSubscriptionSpec) { s.TrialPeriodDays = &days }, planItem("pro", 2))
	trial.Namespace = h.ns
	spec := billingv1alpha1.StripeBillingPreviewSpec{Subscriptions: []billingv1alpha1.PreviewSubscription{
		previewOf(h.get(qty).(*billingv1alpha1.StripeSubscription), func(s *billingv1alpha1.StripeSubscriptionSpec) { s.Items[0].Quantity = 3 }),
		previewOf(h.get(swap).(*billingv1alpha1.StripeSubscription), func(s *billingv1alpha1.StripeSubscriptionSpec) { s.Items[0].PlanRef.Name = "pro" }),
		previewOf(h.get(cancel).(*billingv1alpha1.StripeSubscription), func(s *billingv1alpha1.StripeSubscriptionSpec) { s.CancelAtPeriodEnd = true }),
		previewOf(trial, nil),
	}}
	for _, pol := range policies {
		p := h.get(plans[pol]).(*billingv1alpha1.StripePlan)
		ps := *p.Spec.DeepCopy()
		ps.Price.UnitAmount = 1500
		pp, err := billingv1alpha1.NewPreviewPlan(p.Name, ps)
		g.Expect(err).NotTo(HaveOccurred())
		spec.Plans = append(spec.Plans, pp)
	}
	writesBefore := stripeWrites(h)
	upcomingBefore := h.fake.Stats().Requests["GET /v1/invoices/upcoming"]
	pv := h.preview(h.ns, "change", spec)
	g.Expect(h.fake.Stats().Requests["GET /v1/invoices/upcoming"]).To(BeNumerically(">", upcomingBefore), "the preview asked Stripe")
	g.Expect(stripeWrites(h)).To(Equal(writesBefore), "the preview wrote nothing to Stripe")
	ready := findCondition(pv.Status.Conditions, billingv1alpha1.ConditionReady)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), ready.Message)
	st := pv.Status
	g.Expect(st.Subscriptions).To(HaveLen(4))
	pQty, pSwap, pCancel, pTrial := st.Subscriptions[0], st.Subscriptions[1], st.Subscriptions[2], st.Subscriptions[3]
	g.Expect(pQty.Immediate).To(BeNil(), "create_prorations: nothing invoiced now")
	g.Expect(pSwap.Immediate).NotTo(BeNil(), "always_invoice: the prorations are invoiced now")
	g.Expect(pSwap.Immediate.AmountDue).To(BeNumerically(">", 0))
	g.Expect(pCancel.Next).To(BeNil(), "a subscription ending at its period end has no next invoice")
	g.Expect(pCancel.EndsAt).NotTo(BeNil())
	g.Expect(pTrial.SubscriptionID).To(BeEmpty())
	g.Expect(pTrial.Immediate.AmountDue).To(BeZero(), "a trial's first invoice")
	g.Expect(pTrial.Next.AmountDue).To(Equal(int64(5000)))
	g.Expect(st.Plans).To(HaveLen(3))
	planPreview := map[billingv1alpha1.PriceChangePolicy]billingv1alpha1.PlanPreview{}
	for i, pol := range policies {
		pp := st.Plans[i]
		planPreview[pol] = pp
		g.Expect(pp.PriceChanges).To(BeTrue())
		g.Expect(pp.Currencies).To(HaveLen(1), "%s", pol)
		g.Expect(pp.Subscriptions).To(HaveLen(1), "%s", pol)
	}
	g.Expect(planPreview["Keep"].Currencies[0].Kept).To(Equal(int32(1)))
	g.Expect(planPreview["Keep"].Currencies[0].NextRenewalsChange).To(BeZero())
	g.Expect(planPreview["AtNextRenewal"].Currencies[0].MovingAtNextRenewal).To(Equal(int32(1)))
	g.Expect(planPreview["AtNextRenewal"].Currencies[0].ChargedNow).To(BeZero())
	g.Expect(planPreview["AtNextRenewal"].Currencies[0].NextRenewalsChange).To(Equal(int64(3 * 300)))
	g.Expect(planPreview["Immediately"].Currencies[0].MovingNow).To(Equal(int32(1)))
	g.Expect(planPreview["Immediately"].Currencies[0].ChargedNow).To(BeNumerically(">", 0))
	g.Expect(st.ChargedNow).To(Equal([]billingv1alpha1.Amount{{Currency: "usd",
		Amount: pSwap.Immediate.AmountDue + planPreview["Immediately"].Currencies[0].ChargedNow}}))
	// The preview wrote nothing: no invoice appeared, nothing changed.
	before := map[string]int{}
	for _, s := range subs {
		before[s.Name] = len(h.invoicesOf(h.get(s).(*billingv1alpha1.StripeSubscription).Status.SubscriptionID))
	}

	// Apply the changes.
	h.update(qty, func() { qty.Spec.Items[0].Quantity = 3 })
	h.update(swap, func() { swap.Spec.Items[0].PlanRef.Name = "pro" })
	h.update(cancel, func() { cancel.Spec.CancelAtPeriodEnd = true })
	h.create(trial)
	for _, pol := range policies {
		p := plans[pol]
		h.update(p, func() { p.Spec.Price.UnitAmount = 1500 })
	}
	h.waitReady(trial)
	proPrice := h.get(&billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "pro"}}).(*billingv1alpha1.StripePlan).Status.PriceID
	g.Eventually(func() int64 { return h.snapshot(qty).Items[0].Quantity }, 30*time.Second, 100*time.Millisecond).Should(Equal(int64(3)))
	g.Eventually(func() string { return h.snapshot(swap).Items[0].Price }, 30*time.Second, 100*time.Millisecond).Should(Equal(proPrice))
	g.Eventually(func() bool { return h.snapshot(cancel).CancelAtPeriodEnd }, 30*time.Second, 100*time.Millisecond).Should(BeTrue())
	for _, pol := range policies {
		p := plans[pol]
		g.Eventually(func() bool { h.get(p); return p.Status.Subscriptions != nil && len(p.Status.PreviousPriceIDs) == 1 }, 30*time.Second, 100*time.Millisecond).Should(BeTrue())
		switch pol {
		case billingv1alpha1.PriceChangePolicyKeep:
			// The positive sign that the subscription saw the change: the
			// plan counts it on its earlier price.
			g.Eventually(func() int32 { h.get(p); return p.Status.Subscriptions.OnPreviousPrices }, 30*time.Second, 100*time.Millisecond).Should(Equal(int32(1)))
		default:
			g.Eventually(func() string { return h.snapshot(onPlan[pol]).Items[0].Price }, 30*time.Second, 100*time.Millisecond).Should(Equal(p.Status.PriceID))
		}
	}

	// What was invoiced at once.
	swapInvoices := h.invoicesOf(swap.Status.SubscriptionID)
	g.Expect(swapInvoices).To(HaveLen(before["swap"] + 1))
	expectInvoice(t, g, "swap, now", pSwap.Immediate, swapInvoices[len(swapInvoices)-1])
	trialInvoices := h.invoicesOf(h.get(trial).(*billingv1alpha1.StripeSubscription).Status.SubscriptionID)
	g.Expect(trialInvoices).To(HaveLen(1))
	expectInvoice(t, g, "trial, first invoice", pTrial.Immediate, trialInvoices[0])
	nowSub := h.get(onPlan["Immediately"]).(*billingv1alpha1.StripeSubscription)
	nowInvoices := h.invoicesOf(nowSub.Status.SubscriptionID)
	g.Expect(nowInvoices).To(HaveLen(before[nowSub.Name] + 1))
	t.Logf("plan price change, Immediately: previewed charged now %d, invoiced %d", planPreview["Immediately"].Subscriptions[0].ChargedNow, nowInvoices[len(nowInvoices)-1].AmountDue)
	g.Expect(nowInvoices[len(nowInvoices)-1].AmountDue).To(Equal(planPreview["Immediately"].Subscriptions[0].ChargedNow))
	for _, s := range []*billingv1alpha1.StripeSubscription{qty, cancel, onPlan["Keep"], onPlan["AtNextRenewal"]} {
		g.Expect(h.invoicesOf(s.Status.SubscriptionID)).To(HaveLen(before[s.Name]), "%s: nothing invoiced now", s.Name)
	}

	// Past every renewal: each subscription's next invoice is the
	// previewed one.
	h.advance(23 * 24 * time.Hour)
	renewal := func(s *billingv1alpha1.StripeSubscription, after int) *stripe.Invoice {
		invs := h.invoicesOf(h.get(s).(*billingv1alpha1.StripeSubscription).Status.SubscriptionID)
		g.Expect(len(invs)).To(BeNumerically(">", after), "%s: renewed", s.Name)
		g.Expect(invs[after].BillingReason).To(Equal("subscription_cycle"))
		return invs[after]
	}
	expectInvoice(t, g, "quantity change, next", pQty.Next, renewal(qty, before["qty"]))
	expectInvoice(t, g, "swap, next", pSwap.Next, renewal(swap, len(swapInvoices)))
	expectInvoice(t, g, "trial, next", pTrial.Next, renewal(trial, 1))
	g.Expect(h.invoicesOf(cancel.Status.SubscriptionID)).To(HaveLen(before["cancel"]), "canceled at period end: no next invoice")
	g.Expect(h.snapshot(cancel).Status).To(Equal("canceled"))
	for _, pol := range policies {
		s := onPlan[pol]
		after := before[s.Name]
		if pol == billingv1alpha1.PriceChangePolicyImmediately {
			after++
		}
		in := renewal(s, after)
		t.Logf("plan price change, %s: previewed next renewal %d (before %d), invoiced %d", pol, planPreview[pol].Subscriptions[0].NextAfter, planPreview[pol].Subscriptions[0].NextBefore, in.AmountDue)
		g.Expect(in.AmountDue).To(Equal(planPreview[pol].Subscriptions[0].NextAfter), "%s: next renewal", pol)
	}
}

// TestPreviewRefusesAnotherNamespacesObjects: a preview in namespace b that
// names namespace a's customer, subscription or price is refused, and
// Stripe is not asked.
func TestPreviewRefusesAnotherNamespacesObjects(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := startHarness(t, harnessOptions{resync: time.Hour})
	cus := h.billingSetup("pm_card_visa", map[string]int64{"pro": 2500, "basic": 1000})
	sub := newSub("a-sub", nil, planItem("pro", 1))
	h.create(sub)
	h.waitReady(sub)
	h.get(cus)
	pro := h.get(&billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "pro"}}).(*billingv1alpha1.StripePlan)
	basic := h.get(&billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "basic"}}).(*billingv1alpha1.StripePlan)
	// Namespace b is a tenant too: its own customer, and a plan on the same
	// Stripe price as a's plan pro (a price may serve two tenants).
	b := newNamespace(t)
	bCustomer, err := h.stripe.CreateCustomer(ctx, stripe.Owner{Namespace: b, Name: "cus", UID: "b-cus"}, "", stripe.CustomerParams{})
	g.Expect(err).NotTo(HaveOccurred())
	bCus := newCustomer("cus", nil)
	bCus.Namespace = b
	g.Expect(h.c.Create(ctx, bCus)).To(Succeed())
	bCus.Status.CustomerID = bCustomer.ID
	g.Expect(h.c.Status().Update(ctx, bCus)).To(Succeed())
	bPlan := newPlan("pro", 2500, nil)
	bPlan.Namespace = b
	g.Expect(h.c.Create(ctx, bPlan)).To(Succeed())
	bPlan.Status.PriceID, bPlan.Status.ProductID = pro.Status.PriceID, pro.Status.ProductID
	g.Expect(h.c.Status().Update(ctx, bPlan)).To(Succeed())

	// Each case names exactly one of a's objects; the rest is b's own.
	bRef := &billingv1alpha1.LocalObjectReference{Name: "cus"}
	cases := map[string]billingv1alpha1.StripeSubscriptionSpec{
		"customer":     {CustomerID: cus.Status.CustomerID, Items: []billingv1alpha1.SubscriptionItem{planItem("pro", 1)}},
		"price":        {CustomerRef: bRef, Items: []billingv1alpha1.SubscriptionItem{{PriceID: basic.Status.PriceID, Quantity: 1}}},
		"subscription": {CustomerRef: bRef, SubscriptionID: sub.Status.SubscriptionID, Items: []billingv1alpha1.SubscriptionItem{planItem("pro", 2)}},
	}
	upcomingBefore := h.fake.Stats().Requests["GET /v1/invoices/upcoming"]
	for name, spec := range cases {
		pv := h.preview(b, "steal-"+name, billingv1alpha1.StripeBillingPreviewSpec{Subscriptions: []billingv1alpha1.PreviewSubscription{{Name: "a-sub", Spec: spec}}})
		stalled := findCondition(pv.Status.Conditions, billingv1alpha1.ConditionStalled)
		g.Expect(stalled).NotTo(BeNil(), name)
		g.Expect(stalled.Status).To(Equal(metav1.ConditionTrue), name)
		g.Expect(stalled.Reason).To(Equal(billingv1alpha1.ReasonNotInNamespace), name)
		g.Expect(stalled.Message).To(ContainSubstring(name), name)
		g.Expect(stalled.Message).To(ContainSubstring("namespace "+b), name)
		g.Expect(pv.Status.Subscriptions).To(BeEmpty(), name)
	}
	g.Expect(h.fake.Stats().Requests["GET /v1/invoices/upcoming"]).To(Equal(upcomingBefore), "Stripe was not asked")
	// b's own question is answered (the positive sign that the refusals
	// are about the namespace, not the question).
	pv := h.preview(b, "own", billingv1alpha1.StripeBillingPreviewSpec{Subscriptions: []billingv1alpha1.PreviewSubscription{{Name: "b-sub",
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerRef: bRef, Items: []billingv1alpha1.SubscriptionItem{planItem("pro", 2)}}}}})
	ready := findCondition(pv.Status.Conditions, billingv1alpha1.ConditionReady)
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), ready.Message)
	g.Expect(h.fake.Stats().Requests["GET /v1/invoices/upcoming"]).To(BeNumerically(">", upcomingBefore))
	g.Expect(pv.Status.Subscriptions[0].Immediate.AmountDue).To(Equal(int64(5000)))
}

// TestPreviewExpires: the reconciler deletes a preview past its TTL.
func TestPreviewExpires(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{resync: time.Hour})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2500})
	ttl := int32(10)
	newPP, err := billingv1alpha1.NewPreviewPlan("new", newPlan("new", 100, nil).Spec)
	g.Expect(err).NotTo(HaveOccurred())
	p := h.preview(h.ns, "short", billingv1alpha1.StripeBillingPreviewSpec{TTLSeconds: &ttl,
		Plans: []billingv1alpha1.PreviewPlan{newPP}})
	g.Expect(p.Status.ExpiresAt).NotTo(BeNil())
	r := h.previewer()
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(BeNumerically(">", 0), "requeued for its expiry")
	g.Expect(h.c.Get(context.Background(), client.ObjectKeyFromObject(p), p)).To(Succeed(), "still there before it expires")
	r.WallNow = func() time.Time { return p.CreationTimestamp.Add(11 * time.Second) }
	_, err = r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)})
	g.Expect(err).NotTo(HaveOccurred())
	h.waitGone(p)
}

// spec.plans[].spec has no schema in the CRD (its CEL cost budget), so the
// API server stores a misspelt plan spec; the operator refuses the preview
// naming the plan and the field, and asks Stripe nothing.
func TestPreviewRefusesAPlanSpecThatDoesNotDecode(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{resync: time.Hour})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2500})
	upcomingBefore := h.fake.Stats().Requests["GET /v1/invoices/upcoming"]
	pv := h.preview(h.ns, "misspelt", billingv1alpha1.StripeBillingPreviewSpec{Plans: []billingv1alpha1.PreviewPlan{{Name: "pro",
		Spec: runtime.RawExtension{Raw: []byte(`{"product":{"name":"Pro"},"price":{"currency":"usd","unitAmout":1500,"interval":"month"}}`)}}}})
	stalled := findCondition(pv.Status.Conditions, billingv1alpha1.ConditionStalled)
	g.Expect(stalled).NotTo(BeNil())
	g.Expect(stalled.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(stalled.Reason).To(Equal(billingv1alpha1.ReasonPreviewRefused))
	g.Expect(stalled.Message).To(ContainSubstring("spec.plans[0]"))
	g.Expect(stalled.Message).To(ContainSubstring(`unknown field "price.unitAmout"`))
	g.Expect(pv.Status.Plans).To(BeEmpty())
	g.Expect(h.fake.Stats().Requests["GET /v1/invoices/upcoming"]).To(Equal(upcomingBefore), "Stripe was not asked")
	// The same plan spelt right is answered (the refusal is about the field).
	good, err := billingv1alpha1.NewPreviewPlan("pro", newPlan("pro", 1500, nil).Spec)
	g.Expect(err).NotTo(HaveOccurred())
	pv = h.preview(h.ns, "spelt", billingv1alpha1.StripeBillingPreviewSpec{Plans: []billingv1alpha1.PreviewPlan{good}})
	ready := findCondition(pv.Status.Conditions, billingv1alpha1.ConditionReady)
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), ready.Message)
	g.Expect(pv.Status.Plans).To(HaveLen(1))
}
