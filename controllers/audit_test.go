package controllers

import (
	"context"
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
	"github.com/stripe-operator/stripe-operator/internal/audit"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// startAudit runs the billing audit for the harness's namespace in its own
// manager, as instance h.ns (the report is cluster-scoped; each test has
// its own). It returns the report key and the audit's event recorder.
func (h *harness) startAudit(period time.Duration) (client.ObjectKey, *record.FakeRecorder) {
	h.t.Helper()
	g := NewWithT(h.t)
	mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{
		Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{h.ns: {}}},
	})
	g.Expect(err).NotTo(HaveOccurred())
	rec := record.NewFakeRecorder(1000)
	g.Expect((&BillingAuditReconciler{Client: mgr.GetClient(), Stripe: h.stripe, Recorder: rec, Instance: h.ns,
		Period: period, SkipNameValidation: true}).SetupWithManager(mgr)).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		<-done
		_ = h.c.Delete(context.Background(), &billingv1alpha1.StripeBillingReport{ObjectMeta: metav1.ObjectMeta{Name: h.ns}})
	})
	return client.ObjectKey{Name: h.ns}, rec
}

// auditNow asks for an audit through the annotation, as kubectl stripe
// audit --now does, and returns the report once it answered.
func (h *harness) auditNow(key client.ObjectKey, value string) *billingv1alpha1.StripeBillingReport {
	h.t.Helper()
	report := &billingv1alpha1.StripeBillingReport{ObjectMeta: metav1.ObjectMeta{Name: key.Name}}
	h.update(report, func() { report.SetAnnotations(map[string]string{billingv1alpha1.AnnotationAuditNow: value}) })
	NewWithT(h.t).Eventually(func() string {
		_ = h.c.Get(context.Background(), key, report)
		return report.Status.LastAuditRequest
	}, 30*time.Second, 100*time.Millisecond).Should(Equal(value))
	return report
}

func entryClasses(r *billingv1alpha1.StripeBillingReport) map[string]billingv1alpha1.BillingClass {
	out := map[string]billingv1alpha1.BillingClass{}
	for _, e := range r.Status.Entries {
		out[e.StripeID] = e.Class
	}
	return out
}

// TestBillingAuditSeededScenarios seeds the test-mode Stripe with each case
// the audit must recognise and checks the report, the events and the
// metrics.
func TestBillingAuditSeededScenarios(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := startHarness(t, harnessOptions{})
	key, rec := h.startAudit(time.Hour)

	// The first audit runs when the operator creates the report: nothing
	// declared, nothing in Stripe, Clean.
	report := &billingv1alpha1.StripeBillingReport{}
	g.Eventually(func() *metav1.Time { _ = h.c.Get(ctx, key, report); return report.Status.LastAuditTime }, 30*time.Second, 100*time.Millisecond).ShouldNot(BeNil())
	g.Expect(meta.IsStatusConditionTrue(report.Status.Conditions, billingv1alpha1.ConditionReady)).To(BeTrue())
	g.Expect(meta.IsStatusConditionTrue(report.Status.Conditions, billingv1alpha1.ConditionClean)).To(BeTrue())

	cus := h.billingSetup("pm_card_visa", map[string]int64{"pro": 1000})
	ok := newSub("s-ok", nil, planItem("pro", 1))
	h.create(ok)
	h.waitReady(ok)
	report = h.auditNow(key, "1")
	g.Expect(report.Status.Entries).To(BeEmpty())
	g.Expect(report.Status.Totals).To(Equal(billingv1alpha1.BillingCounts{Managed: 4}), "customer, product, price, subscription")
	g.Expect(meta.IsStatusConditionTrue(report.Status.Conditions, billingv1alpha1.ConditionClean)).To(BeTrue())

	// Orphaned/Unexplained: a customer created by hand with the operator's
	// metadata and no resource.
	ghost, err := h.stripe.CreateCustomer(ctx, stripe.Owner{Namespace: h.ns, Name: "ghost", UID: "hand-made"}, "", stripe.CustomerParams{})
	g.Expect(err).NotTo(HaveOccurred())

	// Orphaned/Expected: leftovers of deletions with policy Orphan.
	orphanSub := newSub("s-orphan", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.DeletionPolicy = billingv1alpha1.SubscriptionDeletionPolicyOrphan
	}, planItem("pro", 2))
	orphanCus := newCustomer("c-orphan", func(s *billingv1alpha1.StripeCustomerSpec) {
		s.DeletionPolicy = billingv1alpha1.CustomerDeletionPolicyOrphan
	})
	h.create(orphanSub)
	h.create(orphanCus)
	h.waitReady(orphanSub)
	h.waitReady(orphanCus)
	h.get(orphanSub)
	h.get(orphanCus)
	orphanSubID, orphanCusID := orphanSub.Status.SubscriptionID, orphanCus.Status.CustomerID
	h.delete(orphanSub)
	h.delete(orphanCus)
	h.waitGone(orphanSub)
	h.waitGone(orphanCus)

	// Missing: a customer deleted and a subscription canceled in the
	// Dashboard.
	goneCus := newCustomer("c-gone", nil)
	canceled := newSub("s-canceled", nil, planItem("pro", 3))
	h.create(goneCus)
	h.create(canceled)
	h.waitReady(goneCus)
	h.waitReady(canceled)
	h.get(goneCus)
	h.get(canceled)
	g.Expect(h.fake.DashboardDeleteCustomer(goneCus.Status.CustomerID)).To(Succeed())
	g.Expect(h.fake.DashboardCancelSubscription(canceled.Status.SubscriptionID)).To(Succeed())

	// Duplicate: a second subscription with s-ok's identity, created behind
	// the operator's back.
	h.get(ok)
	h.get(cus)
	plan := h.get(&billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "pro"}}).(*billingv1alpha1.StripePlan)
	dup, err := h.stripe.CreateSubscription(ctx, stripe.Owner{Namespace: h.ns, Name: "s-ok", UID: string(ok.UID)}, "", stripe.SubscriptionCreateParams{CustomerID: cus.Status.CustomerID, Items: []stripe.SubscriptionItemParams{{PriceID: plan.Status.PriceID, Quantity: 5}}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dup.Status).To(Equal("active"))

	// Drifted: an Observe-mode resource whose subscription's quantity is
	// edited in the Dashboard.
	observed, err := h.stripe.CreateSubscription(ctx, stripe.Owner{Namespace: h.ns, Name: "s-observe", UID: "hand-made-2"}, "", stripe.SubscriptionCreateParams{CustomerID: cus.Status.CustomerID, Items: []stripe.SubscriptionItemParams{{PriceID: plan.Status.PriceID, Quantity: 1}}})
	g.Expect(err).NotTo(HaveOccurred())
	obs := newSub("s-observe", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.ManagementPolicy = billingv1alpha1.ManagementPolicyObserve
		s.SubscriptionID = observed.ID
	}, planItem("pro", 1))
	h.create(obs)
	h.waitReady(obs)
	g.Expect(h.fake.DashboardSetItemQuantity(observed.ID, observed.Items[0].ID, 4)).To(Succeed())
	h.waitCondition(obs, billingv1alpha1.ConditionBillingDrift, "True", billingv1alpha1.ReasonDrifted)

	before := h.fake.Stats().TotalRequests()
	report = h.auditNow(key, "2")

	g.Expect(entryClasses(report)).To(Equal(map[string]billingv1alpha1.BillingClass{
		ghost.ID:                       billingv1alpha1.BillingClassOrphanedUnexplained,
		orphanSubID:                    billingv1alpha1.BillingClassOrphanedExpected,
		orphanCusID:                    billingv1alpha1.BillingClassOrphanedExpected,
		goneCus.Status.CustomerID:      billingv1alpha1.BillingClassMissing,
		canceled.Status.SubscriptionID: billingv1alpha1.BillingClassMissing,
		dup.ID:                         billingv1alpha1.BillingClassDuplicate,
		observed.ID:                    billingv1alpha1.BillingClassDrifted,
	}))
	for _, e := range report.Status.Entries {
		g.Expect(e.Since).NotTo(BeNil(), "%s since", e.StripeID)
		g.Expect(e.Message).NotTo(BeEmpty())
		if e.StripeID == dup.ID {
			g.Expect([]string{e.ResourceKind, e.Namespace, e.Name}).To(Equal([]string{"StripeSubscription", h.ns, "s-ok"}))
		}
	}
	counts := map[string]billingv1alpha1.BillingCounts{}
	for _, c := range report.Status.Counts {
		counts[c.Kind] = c.BillingCounts
	}
	g.Expect(counts).To(Equal(map[string]billingv1alpha1.BillingCounts{
		audit.KindCustomer:     {Managed: 1, OrphanedExpected: 1, OrphanedUnexplained: 1, Missing: 1},
		audit.KindProduct:      {Managed: 1},
		audit.KindPrice:        {Managed: 1},
		audit.KindSubscription: {Managed: 1, OrphanedExpected: 1, Missing: 1, Duplicate: 1, Drifted: 1},
	}))
	clean := meta.FindStatusCondition(report.Status.Conditions, billingv1alpha1.ConditionClean)
	g.Expect(clean.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(clean.Message).To(ContainSubstring("2 Missing, 1 Duplicate, 1 OrphanedUnexplained, 1 Drifted"))
	// Four lists of one page each, one read per Missing object to confirm
	// it, and the financial report's two lists (invoices and refunds) of
	// one page each.
	g.Expect(report.Status.LastAuditCalls).To(Equal(int64(8)))
	g.Expect(report.Status.Finance).NotTo(BeNil())
	g.Expect(report.Status.Finance.Calls).To(Equal(int64(2)))
	g.Expect(h.fake.Stats().TotalRequests() - before).To(BeNumerically(">=", 6))

	g.Expect(testutil.ToFloat64(billingObjects.WithLabelValues("subscription", "Duplicate"))).To(Equal(1.0))
	g.Expect(testutil.ToFloat64(billingObjects.WithLabelValues("customer", "Missing"))).To(Equal(1.0))
	g.Expect(testutil.ToFloat64(billingObjects.WithLabelValues("price", "Managed"))).To(Equal(1.0))

	events := drain(rec)
	g.Expect(events).To(ContainElement(ContainSubstring("Warning StripeObjectDuplicate")))
	g.Expect(countMatching(events, "StripeObjectMissing")).To(Equal(2))

	// The next audit keeps each entry's since and announces nothing again.
	since := map[string]metav1.Time{}
	for _, e := range report.Status.Entries {
		since[e.StripeID] = *e.Since
	}
	time.Sleep(1100 * time.Millisecond)
	report = h.auditNow(key, "3")
	for _, e := range report.Status.Entries {
		g.Expect(e.Since.Equal(&metav1.Time{Time: since[e.StripeID].Time})).To(BeTrue(), "%s keeps its since", e.StripeID)
	}
	g.Expect(drain(rec)).To(BeEmpty())
}

func drain(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func countMatching(ss []string, sub string) int {
	n := 0
	for _, s := range ss {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}
