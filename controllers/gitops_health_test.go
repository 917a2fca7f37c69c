package controllers

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/gitops"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var updateHealthTestdata = flag.Bool("update-health-testdata", false,
	"rewrite the Argo CD health testdata and health_test.yaml files from the objects this test reads back")

// healthCase is one state a resource was driven into, read back from the
// API server, with the health Argo CD and kstatus (Flux) must report.
type healthCase struct {
	kind    string
	file    string // testdata file name
	obj     map[string]any
	argo    string
	kstatus status.Status
}

// readBack returns obj as the API server serves it.
func readBack(t *testing.T, obj client.Object, kind string) map[string]any {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(testenv.GVK(kind))
	NewWithT(t).Expect(testClient().Get(context.Background(), client.ObjectKeyFromObject(obj), u)).To(Succeed())
	return u.Object
}

// TestGitOpsHealthOfEachState drives resources through the states a
// platform team sees (not yet observed, Ready, paused collection, a
// declined first payment, past_due with a retry, unpaid, ended) against
// the real API server and the fake Stripe, and checks on the objects read
// back what Argo CD's health.lua and kstatus report. With
// -update-health-testdata it writes those objects as the health checks'
// testdata and health_test.yaml.
func TestGitOpsHealthOfEachState(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{webhooks: true})
	var cases []healthCase
	add := func(kind, file string, obj client.Object, argo string, ks status.Status) {
		cases = append(cases, healthCase{kind: kind, file: file, obj: readBack(t, obj, kind), argo: argo, kstatus: ks})
	}

	// Not yet observed: a namespace the manager does not watch stands for
	// the moment between kubectl apply and the operator's first status write.
	unwatched := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unwatched-" + rand.String(6)}}
	g.Expect(testClient().Create(context.Background(), unwatched)).To(Succeed())
	for _, o := range []struct {
		kind string
		obj  client.Object
	}{
		{"StripeCustomer", newCustomer("cus", nil)},
		{"StripePlan", newPlan("pro", 2000, nil)},
		{"StripeCoupon", newCoupon("launch", nil)},
		{"StripeSubscription", newSub("s", nil, planItem("pro", 1))},
		{"StripeWebhookEndpoint", newWebhookEndpoint("http://127.0.0.1:9/webhooks/stripe")}, // never reconciled
	} {
		o.obj.SetNamespace(unwatched.Name)
		g.Expect(testClient().Create(context.Background(), o.obj)).To(Succeed())
		add(o.kind, "progressing_not_observed.yaml", o.obj, gitops.Progressing, status.InProgressStatus)
	}
	// The billing report is cluster-scoped: one no audit answers.
	unaudited := &billingv1alpha1.StripeBillingReport{ObjectMeta: metav1.ObjectMeta{Name: unwatched.Name}}
	g.Expect(testClient().Create(context.Background(), unaudited)).To(Succeed())
	t.Cleanup(func() { _ = testClient().Delete(context.Background(), unaudited) })
	add("StripeBillingReport", "progressing_not_observed.yaml", unaudited, gitops.Progressing, status.InProgressStatus)

	// Ready.
	cus := h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	add("StripeCustomer", "healthy_ready.yaml", cus, gitops.Healthy, status.CurrentStatus)
	plan := &billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Name: "pro", Namespace: h.ns}}
	h.get(plan)
	add("StripePlan", "healthy_ready.yaml", plan, gitops.Healthy, status.CurrentStatus)
	coupon := newCoupon("launch", func(s *billingv1alpha1.StripeCouponSpec) {
		s.PromotionCodes = []billingv1alpha1.PromotionCodeSpec{{Code: "LAUNCH"}}
	})
	h.create(coupon)
	h.waitReady(coupon)
	add("StripeCoupon", "healthy_ready.yaml", coupon, gitops.Healthy, status.CurrentStatus)
	// A coupon for a plan that does not exist: a person has to act.
	orphan := newCoupon("for-missing-plan", func(s *billingv1alpha1.StripeCouponSpec) {
		s.AppliesTo = &billingv1alpha1.CouponAppliesTo{PlanRefs: []billingv1alpha1.LocalObjectReference{{Name: "missing"}}}
	})
	h.create(orphan)
	h.waitCondition(orphan, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonReferenceNotFound)
	add("StripeCoupon", "degraded_plan_missing.yaml", orphan, gitops.Degraded, status.FailedStatus)
	active := newSub("active", nil, planItem("pro", 1))
	h.create(active)
	h.waitReady(active)
	add("StripeSubscription", "healthy_active.yaml", active, gitops.Healthy, status.CurrentStatus)

	g.Expect(testClient().Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "stripe-webhook-secrets"}})).To(Succeed())
	startEndpointManager(t, h.ns, h.stripe)
	// Deliveries to this endpoint go to a local receiver that answers 200.
	sink := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(sink.Close)
	endpoint := newWebhookEndpoint(sink.URL + "/webhooks/stripe")
	h.create(endpoint)
	h.waitReady(endpoint)
	add("StripeWebhookEndpoint", "healthy_ready.yaml", endpoint, gitops.Healthy, status.CurrentStatus)

	reportKey, _ := h.startAudit(time.Hour)
	report := &billingv1alpha1.StripeBillingReport{}
	g.Eventually(func() *metav1.Time {
		_ = testClient().Get(context.Background(), reportKey, report)
		return report.Status.LastAuditTime
	}, 30*time.Second, 100*time.Millisecond).ShouldNot(BeNil())
	add("StripeBillingReport", "healthy_audited.yaml", report, gitops.Healthy, status.CurrentStatus)

	// Paused collection: Suspended for Argo CD, Current for kstatus (it is
	// what the spec asks for).
	paused := newSub("paused", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.PauseCollection = &billingv1alpha1.PauseCollection{Behavior: "void"}
	}, planItem("pro", 1))
	h.create(paused)
	h.waitReady(paused)
	g.Eventually(func() string { h.get(paused); return paused.Status.PauseCollection }, 20*time.Second).Should(Equal("void"))
	add("StripeSubscription", "suspended_collection_paused.yaml", paused, gitops.Suspended, status.CurrentStatus)

	// A declined card at creation: incomplete, Stripe does not retry the
	// first invoice. Needs a person: Stalled.
	declinedCus := newCustomer("declined", func(s *billingv1alpha1.StripeCustomerSpec) { s.DefaultPaymentMethod = "pm_card_chargeCustomerFail" })
	h.create(declinedCus)
	h.waitReady(declinedCus)
	incomplete := newSub("incomplete", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.CustomerRef = &billingv1alpha1.LocalObjectReference{Name: "declined"}
	}, planItem("pro", 1))
	h.create(incomplete)
	h.waitCondition(incomplete, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonPaymentDeclined)
	g.Expect(incomplete.Status.StripeStatus).To(Equal("incomplete"))
	add("StripeSubscription", "degraded_incomplete_declined.yaml", incomplete, gitops.Degraded, status.FailedStatus)

	// A renewal declined with retries scheduled: past_due, Stripe is still
	// working on it (InProgress), Argo CD shows the failed payment.
	renewCus := newCustomer("renew", nil)
	h.create(renewCus)
	h.waitReady(renewCus)
	pastDue := newSub("past-due", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.CustomerRef = &billingv1alpha1.LocalObjectReference{Name: "renew"}
	}, planItem("pro", 1))
	h.create(pastDue)
	h.waitReady(pastDue)
	h.update(renewCus, func() { renewCus.Spec.DefaultPaymentMethod = "pm_card_chargeCustomerFail" })
	g.Eventually(func() string { return h.defaultPMToken(renewCus.Status.CustomerID) }, 20*time.Second).Should(Equal("pm_card_chargeCustomerFail"))
	h.waitReady(renewCus)
	h.advance(32 * day)
	h.waitStripeStatus(pastDue, "past_due")
	h.waitCondition(pastDue, billingv1alpha1.ConditionPaymentFailed, "True", billingv1alpha1.ReasonPaymentDeclined)
	h.waitCondition(pastDue, billingv1alpha1.ConditionReady, "False", billingv1alpha1.ReasonPaymentDeclined)
	g.Expect(condOf(pastDue, billingv1alpha1.ConditionStalled)).To(BeNil())
	add("StripeSubscription", "degraded_past_due_retrying.yaml", pastDue, gitops.Degraded, status.InProgressStatus)

	// Retries exhausted: unpaid (the account's dunning setting), Stalled.
	g.Expect(h.fake.SetDunningEnd(stripefake.DunningUnpaid)).To(Succeed())
	for i := 0; i < 3; i++ {
		h.advance(3*day + time.Hour)
	}
	h.waitStripeStatus(pastDue, "unpaid")
	h.waitCondition(pastDue, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonUnpaid)
	add("StripeSubscription", "degraded_unpaid.yaml", pastDue, gitops.Degraded, status.FailedStatus)

	// Canceled in the Dashboard: ended, not recreated without a person.
	g.Expect(h.fake.DashboardCancelSubscription(active.Status.SubscriptionID)).To(Succeed())
	h.waitCondition(active, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonCanceledOutsideOperator)
	add("StripeSubscription", "degraded_ended.yaml", active, gitops.Degraded, status.FailedStatus)

	root := testenv.RepoRoot()
	tests := map[string]*gitops.HealthTests{}
	for _, tc := range cases {
		script, err := gitops.LoadScript(root, tc.kind)
		g.Expect(err).NotTo(HaveOccurred())
		argo, err := gitops.ArgoHealth(script, tc.obj)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(argo.Status).To(Equal(tc.argo), "%s %s: Argo CD health %+v", tc.kind, tc.file, argo)
		g.Expect(argo.Message).NotTo(BeEmpty(), "%s %s", tc.kind, tc.file)
		ks, msg, err := gitops.KStatus(tc.obj)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ks).To(Equal(tc.kstatus), "%s %s: kstatus %s (%s)", tc.kind, tc.file, ks, msg)
		if tests[tc.kind] == nil {
			tests[tc.kind] = &gitops.HealthTests{}
		}
		tests[tc.kind].Tests = append(tests[tc.kind].Tests, gitops.HealthTest{HealthStatus: argo, InputPath: "testdata/" + tc.file})
		if *updateHealthTestdata {
			writeHealthTestdata(t, filepath.Join(gitops.KindDir(root, tc.kind), "testdata", tc.file), tc.obj)
		}
	}
	if *updateHealthTestdata {
		for kind, ht := range tests {
			b, err := yaml.Marshal(ht)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(os.WriteFile(filepath.Join(gitops.KindDir(root, kind), "health_test.yaml"), b, 0o644)).To(Succeed())
		}
	}
}

// writeHealthTestdata writes obj without the fields that differ on every
// run and say nothing about health.
func writeHealthTestdata(t *testing.T, path string, obj map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{Object: obj}
	u = u.DeepCopy()
	u.SetManagedFields(nil)
	u.SetUID("")
	u.SetResourceVersion("")
	if u.GetNamespace() != "" {
		u.SetNamespace("billing")
	}
	u.SetCreationTimestamp(metav1.Time{})
	b, err := yaml.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(fmt.Errorf("writing %s: %w", path, err))
	}
}

func newWebhookEndpoint(url string) *billingv1alpha1.StripeWebhookEndpoint {
	return &billingv1alpha1.StripeWebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Name: "main"},
		Spec: billingv1alpha1.StripeWebhookEndpointSpec{URL: url, SecretRef: billingv1alpha1.SecretKeySelector{Name: "stripe-webhook-secrets"}}}
}
