package controllers

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/kubectlstripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// startAuditOn runs the billing audit of instance ns over namespace ns in
// its own manager, on the audit clock now (nil: the wall clock).
func startAuditOn(t *testing.T, ns string, sc stripe.Lister, period time.Duration, now func() time.Time) (client.ObjectKey, *record.FakeRecorder) {
	t.Helper()
	g := NewWithT(t)
	mgr, err := ctrl.NewManager(requireEnv(t).Config, ctrl.Options{
		Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	g.Expect(err).NotTo(HaveOccurred())
	rec := record.NewFakeRecorder(1000)
	g.Expect((&BillingAuditReconciler{Client: mgr.GetClient(), Stripe: sc, Recorder: rec, Instance: ns,
		Period: period, SkipNameValidation: true, Now: now}).SetupWithManager(mgr)).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = testClient().Delete(context.Background(), &billingv1alpha1.StripeBillingReport{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	})
	return client.ObjectKey{Name: ns}, rec
}

// monthlyOf is the test's own normalization: amount per interval to a
// month, rounded half up (amounts here are positive).
func monthlyOf(amount int64, interval string, count int64) int64 {
	num, den := map[string]int64{"day": 365, "week": 52, "month": 12, "year": 1}[interval], 12*count
	return (2*amount*num + den) / (2 * den)
}

// TestFinancialReportMatchesTheTestModeStripe runs a month of billing on
// the test clock (renewals, weekly renewals, a trial, a renewal that fails
// and stays past due, one written off, a partial refund, a subscription in
// yen, an orphan and a drifted Observe-mode subscription) and checks that
// the report's numbers equal the sums this test computes from the
// test-mode Stripe's invoices, refunds and subscriptions, and the MRR
// explanation computed by hand.
func TestFinancialReportMatchesTheTestModeStripe(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	start := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1, Start: start})
	g.Expect(fake.SetDunningEnd(stripefake.DunningPastDue)).To(Succeed())
	h := startHarness(t, harnessOptions{fake: fake})

	cus := h.billingSetup("pm_card_visa", map[string]int64{"pro": 1000})
	weekly := newPlan("weekly", 500, func(s *billingv1alpha1.StripePlanSpec) { s.Price.Interval = "week" })
	yen := newPlan("yen", 3000, func(s *billingv1alpha1.StripePlanSpec) { s.Price.Currency = "jpy" })
	late := newCustomer("late", nil)
	jp := newCustomer("jp", nil)
	for _, o := range []conditioned{weekly, yen, late, jp} {
		h.create(o)
	}
	for _, o := range []conditioned{weekly, yen, late, jp} {
		h.waitReady(o)
	}
	onCustomer := func(name string) func(*billingv1alpha1.StripeSubscriptionSpec) {
		return func(s *billingv1alpha1.StripeSubscriptionSpec) { s.CustomerRef.Name = name }
	}
	sPro := newSub("s-pro", nil, planItem("pro", 2))
	sWeek := newSub("s-week", nil, planItem("weekly", 1))
	sTrial := newSub("s-trial", func(s *billingv1alpha1.StripeSubscriptionSpec) { days := int64(60); s.TrialPeriodDays = &days }, planItem("pro", 1))
	sFail := newSub("s-fail", onCustomer("late"), planItem("pro", 1))
	sWriteOff := newSub("s-writeoff", onCustomer("late"), planItem("pro", 3))
	sYen := newSub("s-yen", onCustomer("jp"), planItem("yen", 1))
	subs := []*billingv1alpha1.StripeSubscription{sPro, sWeek, sTrial, sFail, sWriteOff, sYen}
	for _, s := range subs {
		h.create(s)
	}
	for _, s := range subs {
		h.waitReady(s)
	}
	h.get(cus)
	pro := h.get(&billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "pro"}}).(*billingv1alpha1.StripePlan)

	// An orphan: a subscription with this instance's identity and no
	// resource. Drift: an Observe-mode subscription whose quantity is
	// changed in the Dashboard from 1 to 4.
	_, err := h.stripe.CreateSubscription(ctx, stripe.Owner{Namespace: h.ns, Name: "ghost", UID: "hand-made"}, "",
		stripe.SubscriptionCreateParams{CustomerID: cus.Status.CustomerID, Items: []stripe.SubscriptionItemParams{{PriceID: pro.Status.PriceID, Quantity: 1}}})
	g.Expect(err).NotTo(HaveOccurred())
	observed, err := h.stripe.CreateSubscription(ctx, stripe.Owner{Namespace: h.ns, Name: "s-observe", UID: "hand-made-2"}, "",
		stripe.SubscriptionCreateParams{CustomerID: cus.Status.CustomerID, Items: []stripe.SubscriptionItemParams{{PriceID: pro.Status.PriceID, Quantity: 1}}})
	g.Expect(err).NotTo(HaveOccurred())
	obs := newSub("s-observe", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.ManagementPolicy = billingv1alpha1.ManagementPolicyObserve
		s.SubscriptionID = observed.ID
	}, planItem("pro", 1))
	h.create(obs)
	h.waitReady(obs)
	g.Expect(fake.DashboardSetItemQuantity(observed.ID, observed.Items[0].ID, 4)).To(Succeed())

	// late's card starts declining; a month passes (monthly renewals on
	// 10 April, finalized and attempted an hour later; weekly ones on 17,
	// 24 and 31 March and 7 April).
	h.update(late, func() { late.Spec.DefaultPaymentMethod = "pm_card_chargeCustomerFail" })
	g.Eventually(func() string { h.get(late); return h.defaultPMToken(late.Status.CustomerID) }, 20*time.Second).Should(Equal("pm_card_chargeCustomerFail"))
	h.advance(31*day + 2*time.Hour)
	h.waitStripeStatus(sFail, "past_due")
	h.waitStripeStatus(sWriteOff, "past_due")

	// The write-off: s-writeoff's failed renewal is marked uncollectible
	// (the subscription is active again). The refund: 5.00 of s-pro's first
	// invoice.
	writeOff := h.snapshot(sWriteOff).LatestInvoice
	g.Expect(writeOff.Status).To(Equal("open"))
	g.Expect(fake.DashboardMarkUncollectible(writeOff.ID)).To(Succeed())
	first := h.snapshot(sPro).Invoices[0]
	g.Expect(first.Status).To(Equal("paid"))
	_, err = fake.DashboardRefund(first.ID, 500)
	g.Expect(err).NotTo(HaveOccurred())
	h.waitStripeStatus(sWriteOff, "active")

	key, _ := startAuditOn(t, h.ns, h.stripe, time.Hour, fake.Now)
	report := h.auditNow(key, "1")
	f := report.Status.Finance
	g.Expect(f).NotTo(BeNil())

	// The months, as this test adds them up from the fake's invoices and
	// refunds of the operator's three customers.
	ours := map[string]bool{}
	for _, c := range []*billingv1alpha1.StripeCustomer{cus, late, jp} {
		h.get(c)
		ours[c.Status.CustomerID] = true
	}
	type mk struct{ month, currency string }
	want := map[mk]*billingv1alpha1.MonthFinance{}
	at := func(created int64, cur string) *billingv1alpha1.MonthFinance {
		m := time.Unix(created, 0).UTC().Format("2006-01")
		k := mk{m, cur}
		if want[k] == nil {
			want[k] = &billingv1alpha1.MonthFinance{Month: m, Currency: cur, Exponent: map[string]int32{"usd": 2, "jpy": 0}[cur]}
		}
		return want[k]
	}
	plus := func(ac *billingv1alpha1.AmountCount, v int64) { ac.Amount += v; ac.Count++ }
	invoices := 0
	for _, in := range fake.Invoices() {
		if !ours[in.Customer] {
			continue
		}
		invoices++
		m := at(in.Created, in.Currency)
		switch in.Status {
		case "paid":
			plus(&m.Paid, in.AmountPaid)
			plus(&m.Invoiced, in.AmountDue)
		case "open":
			plus(&m.Open, in.AmountRemaining)
			plus(&m.Invoiced, in.AmountDue)
		case "uncollectible":
			plus(&m.Uncollectible, in.AmountRemaining)
			plus(&m.Invoiced, in.AmountDue)
		case "void":
			plus(&m.Void, in.AmountDue)
		case "draft":
			plus(&m.Draft, in.AmountDue)
		}
		if in.Attempted && (in.Status == "open" || in.Status == "uncollectible") {
			plus(&m.Failed, in.AmountRemaining)
		}
	}
	for _, rf := range fake.Refunds() {
		if ours[rf.Customer] && rf.Status == "succeeded" {
			plus(&at(rf.Created, rf.Currency).Refunded, rf.Amount)
		}
	}
	got := map[mk]billingv1alpha1.MonthFinance{}
	for _, m := range f.Months {
		got[mk{m.Month, m.Currency}] = m
	}
	g.Expect(got).To(HaveLen(len(want)))
	for k, w := range want {
		g.Expect(got).To(HaveKeyWithValue(k, *w), "month %s %s", k.month, k.currency)
	}
	g.Expect(f.InvoicesRead).To(Equal(int64(invoices)))
	g.Expect(f.RefundsRead).To(Equal(int64(1)))
	// And by hand: April's failures are s-fail's open renewal (10.00) and
	// s-writeoff's written-off one (30.00); the refund is April's; yen is
	// reported on its own.
	apr := got[mk{"2026-04", "usd"}]
	g.Expect(apr.Failed).To(Equal(billingv1alpha1.AmountCount{Amount: 4000, Count: 2}))
	g.Expect(apr.Uncollectible).To(Equal(billingv1alpha1.AmountCount{Amount: 3000, Count: 1}))
	g.Expect(apr.Open).To(Equal(billingv1alpha1.AmountCount{Amount: 1000, Count: 1}))
	g.Expect(apr.Refunded).To(Equal(billingv1alpha1.AmountCount{Amount: 500, Count: 1}))
	g.Expect(got[mk{"2026-03", "jpy"}].Invoiced).To(Equal(billingv1alpha1.AmountCount{Amount: 3000, Count: 1}))
	for _, m := range f.Months {
		g.Expect(m.Invoiced.Amount).To(Equal(m.Paid.Amount+m.Open.Amount+m.Uncollectible.Amount), "%s %s", m.Month, m.Currency)
	}

	// Stripe MRR from the fake's subscriptions: active and past_due ones
	// of the operator's customers, each item normalized to a month.
	fromFake := map[mk]int64{} // currency, plan
	planOfPrice := map[string]string{}
	for _, name := range []string{"pro", "weekly", "yen"} {
		p := h.get(&billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name}}).(*billingv1alpha1.StripePlan)
		planOfPrice[p.Status.PriceID] = h.ns + "/" + name
	}
	for _, s := range fake.Subscriptions() {
		if !ours[s.Customer] || (s.Status != "active" && s.Status != "past_due") {
			continue
		}
		for _, it := range s.Items {
			fromFake[mk{it.Currency, planOfPrice[it.Price]}] += monthlyOf(it.UnitAmount*it.Quantity, it.Interval, it.IntervalCount)
		}
	}
	mrr := map[mk]billingv1alpha1.MRRAmounts{}
	for _, c := range f.MRR {
		for _, p := range c.Plans {
			mrr[mk{c.Currency, p.Plan}] = p.MRRAmounts
		}
	}
	g.Expect(mrr).To(HaveLen(len(fromFake)))
	for k, v := range fromFake {
		g.Expect(mrr[k].Stripe).To(Equal(v), "Stripe MRR of %s %s", k.currency, k.month)
	}
	// By hand, usd pro: declared s-pro 20 + s-trial 10 + s-writeoff 30 +
	// s-observe 10 = 70.00; Stripe s-pro 20 + s-writeoff 30 + s-observe 40
	// + s-fail 10 (past due) + ghost 10 = 110.00; drift 30 (s-observe),
	// trials 10, past due 10, orphans 10.
	g.Expect(mrr[mk{"usd", h.ns + "/pro"}]).To(Equal(billingv1alpha1.MRRAmounts{Declared: 7000, Stripe: 11000, Difference: 4000,
		Drift: 3000, Trials: 1000, PastDue: 1000, Orphans: 1000}))
	g.Expect(mrr[mk{"usd", h.ns + "/weekly"}]).To(Equal(billingv1alpha1.MRRAmounts{Declared: 2167, Stripe: 2167})) // 5.00 × 52 / 12
	g.Expect(mrr[mk{"jpy", h.ns + "/yen"}]).To(Equal(billingv1alpha1.MRRAmounts{Declared: 3000, Stripe: 3000}))

	// Metrics carry the same numbers.
	g.Expect(testutil.ToFloat64(stripeMRR.WithLabelValues("usd", h.ns+"/pro", "stripe"))).To(Equal(11000.0))
	g.Expect(testutil.ToFloat64(stripeMRR.WithLabelValues("usd", h.ns+"/pro", "declared"))).To(Equal(7000.0))
	g.Expect(testutil.ToFloat64(stripeInvoiced.WithLabelValues("usd", "refunded", "2026-04"))).To(Equal(500.0))
	g.Expect(testutil.ToFloat64(stripeInvoiced.WithLabelValues("usd", "failed", "2026-04"))).To(Equal(4000.0))
	g.Expect(testutil.ToFloat64(stripeInvoicedCount.WithLabelValues("usd", "failed", "2026-04"))).To(Equal(2.0))

	// Two lists of one page each.
	g.Expect(f.Calls).To(Equal(int64(2)))
	// What `kubectl stripe revenue` prints (docs/financial-reporting.md
	// shows this output, the test namespace renamed "shop").
	shown := report.DeepCopy()
	for i := range shown.Status.Finance.MRR {
		for j := range shown.Status.Finance.MRR[i].Plans {
			p := &shown.Status.Finance.MRR[i].Plans[j]
			p.Plan = strings.Replace(p.Plan, h.ns+"/", "shop/", 1)
		}
	}
	for _, format := range []string{"table", "csv"} {
		var out bytes.Buffer
		g.Expect(kubectlstripe.WriteRevenue(&out, shown, "", format)).To(Succeed())
		t.Logf("kubectl stripe revenue -o %s:\n%s", format, out.String())
	}
	var out bytes.Buffer
	g.Expect(kubectlstripe.WriteRevenue(&out, shown, "2026-03", "json")).To(Succeed())
	t.Logf("kubectl stripe revenue --month 2026-03 -o json:\n%s", out.String())
	g.Expect(kubectlstripe.WriteRevenue(&out, shown, "2026-01", "table")).To(MatchError(ContainSubstring("2026-03 and 2026-04")))
}

// TestFinancialReportListBoundAtThousandInvoices makes 1,000 invoices (100
// subscriptions on a daily price, 9 renewals each) and checks that the
// financial report reads them in ceil(1000/100) invoice pages plus one
// refund page.
func TestFinancialReportListBoundAtThousandInvoices(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1, Start: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)})
	sc, err := stripe.New(stripe.Config{APIKey: "sk_test_bound", BaseURL: fake.URL(), RateLimit: 1000})
	g.Expect(err).NotTo(HaveOccurred())
	owner := stripe.Owner{Instance: ns, Kind: "StripePlan", Namespace: ns, Name: "daily", UID: "u-plan"}
	prod, err := sc.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: ptrTo("Daily")})
	g.Expect(err).NotTo(HaveOccurred())
	price, err := sc.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "usd", UnitAmount: 100, Interval: "day", IntervalCount: 1})
	g.Expect(err).NotTo(HaveOccurred())
	const subs = 100
	for i := 0; i < subs; i++ {
		o := stripe.Owner{Instance: ns, Kind: "StripeCustomer", Namespace: ns, Name: fmt.Sprintf("c%d", i), UID: fmt.Sprintf("u-%d", i)}
		c, err := sc.CreateCustomer(ctx, o, "", stripe.CustomerParams{})
		g.Expect(err).NotTo(HaveOccurred())
		pm, err := sc.AttachPaymentMethod(ctx, o, "pm_card_visa", c.ID)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = sc.UpdateCustomer(ctx, o, c.ID, stripe.CustomerParams{DefaultPaymentMethod: &pm})
		g.Expect(err).NotTo(HaveOccurred())
		o.Kind = "StripeSubscription"
		_, err = sc.CreateSubscription(ctx, o, "", stripe.SubscriptionCreateParams{CustomerID: c.ID, Items: []stripe.SubscriptionItemParams{{PriceID: price.ID, Quantity: 1}}})
		g.Expect(err).NotTo(HaveOccurred())
	}
	fake.AdvanceClock(9*day + 2*time.Hour)
	g.Expect(fake.Invoices()).To(HaveLen(1000))

	key, _ := startAuditOn(t, ns, sc, time.Hour, fake.Now)
	report := &billingv1alpha1.StripeBillingReport{}
	g.Eventually(func() *metav1.Time { _ = testClient().Get(ctx, key, report); return report.Status.LastAuditTime }, 60*time.Second, 100*time.Millisecond).ShouldNot(BeNil())
	f := report.Status.Finance
	g.Expect(f).NotTo(BeNil())
	g.Expect(f.InvoicesRead).To(Equal(int64(1000)))
	// 10 pages of invoices and 1 of refunds: invoices/100 + 1.
	g.Expect(f.Calls).To(BeNumerically("<=", 1000/100+1))
	t.Logf("1,000 invoices: financial report %d calls; whole audit %d calls (customers, products, prices and subscriptions one page each)", f.Calls, report.Status.LastAuditCalls)
	var paid int64
	for _, m := range f.Months {
		paid += m.Paid.Count
	}
	g.Expect(paid).To(Equal(int64(1000)))
}

func ptrTo[T any](v T) *T { return &v }

// TestFirstAuditWaitsForFirstPassesAndEmptyReportSaysSo: the first audit
// waits until every resource has had a first pass; a report of 0 objects
// says so and is audited again, without audit-now, once resources record
// Stripe objects.
func TestFirstAuditWaitsForFirstPassesAndEmptyReportSaysSo(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()

	// No reconciler runs in this namespace: the customer never has a pass
	// until the test writes its status.
	ns := newNamespace(t)
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	sc, err := stripe.New(stripe.Config{APIKey: "sk_test_first", BaseURL: fake.URL(), RateLimit: 1000})
	g.Expect(err).NotTo(HaveOccurred())
	waiting := newCustomer("waiting", nil)
	waiting.Namespace = ns
	g.Expect(testClient().Create(ctx, waiting)).To(Succeed())
	key, rec := startAuditOn(t, ns, sc, time.Hour, nil)
	g.Eventually(func() []string { return drainInto(rec) }, 30*time.Second, 100*time.Millisecond).Should(ContainElement(ContainSubstring("WaitingForFirstPasses")))
	report := &billingv1alpha1.StripeBillingReport{}
	g.Expect(testClient().Get(ctx, key, report)).To(Succeed())
	g.Expect(report.Status.LastAuditTime).To(BeNil(), "the first audit waits")
	// Its first pass ends (Stalled, say).
	meta.SetStatusCondition(&waiting.Status.Conditions, metav1.Condition{Type: billingv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "Test", Message: "test"})
	waiting.Status.ObservedGeneration = waiting.Generation
	g.Expect(testClient().Status().Update(ctx, waiting)).To(Succeed())
	g.Eventually(func() *metav1.Time { _ = testClient().Get(ctx, key, report); return report.Status.LastAuditTime }, 30*time.Second, 100*time.Millisecond).ShouldNot(BeNil())
	clean := meta.FindStatusCondition(report.Status.Conditions, billingv1alpha1.ConditionClean)
	g.Expect(clean.Reason).To(Equal(billingv1alpha1.ReasonNothingAudited))
	g.Expect(clean.Message).To(ContainSubstring("0 objects"))

	// An empty report is audited again once resources record objects.
	h := startHarness(t, harnessOptions{})
	hKey, _ := startAuditOn(t, h.ns, h.stripe, time.Hour, nil)
	report = &billingv1alpha1.StripeBillingReport{}
	g.Eventually(func() string {
		if err := testClient().Get(ctx, hKey, report); err != nil {
			return err.Error()
		}
		if c := meta.FindStatusCondition(report.Status.Conditions, billingv1alpha1.ConditionClean); c != nil {
			return c.Reason
		}
		return ""
	}, 30*time.Second, 100*time.Millisecond).Should(Equal(billingv1alpha1.ReasonNothingAudited))
	g.Expect(report.Status.Totals).To(Equal(billingv1alpha1.BillingCounts{}))
	// As `kubectl apply -f config/samples/` does: all at once.
	s := newSub("s", nil, planItem("pro", 1))
	h.create(s)
	h.create(newPlan("pro", 1000, nil))
	h.create(newCustomer("cus", nil))
	h.waitReady(s)
	g.Eventually(func() billingv1alpha1.BillingCounts {
		_ = testClient().Get(ctx, hKey, report)
		return report.Status.Totals
	},
		30*time.Second, 100*time.Millisecond).Should(Equal(billingv1alpha1.BillingCounts{Managed: 4}))
	g.Expect(report.Status.LastAuditRequest).To(BeEmpty(), "no audit-now was asked")
}

// drainInto returns the events recorded so far.
func drainInto(rec *record.FakeRecorder) []string { return drain(rec) }
