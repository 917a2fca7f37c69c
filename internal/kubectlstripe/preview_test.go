package kubectlstripe

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// startOperator runs the operator's reconcilers for ns against a test-mode
// Stripe, as `make dev` does.
func startOperator(t *testing.T, ns string) *stripefake.Server {
	t.Helper()
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	sc, err := stripe.New(stripe.Config{APIKey: "sk_test_plugin", BaseURL: fake.URL(), RateLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(10000)
	c := mgr.GetClient()
	for _, err := range []error{
		(&controllers.StripeCustomerReconciler{Client: c, Stripe: sc, Instance: ns, Recorder: rec, SkipNameValidation: true}).SetupWithManager(mgr),
		(&controllers.StripePlanReconciler{Client: c, Stripe: sc, Instance: ns, Recorder: rec, SkipNameValidation: true}).SetupWithManager(mgr),
		(&controllers.StripeSubscriptionReconciler{Client: c, Stripe: sc, Instance: ns, Recorder: rec, SkipNameValidation: true, Now: fake.Now}).SetupWithManager(mgr),
		// The preview's own clock is the wall clock, as in production: the
		// proration date comes from Stripe's answers.
		(&controllers.StripeBillingPreviewReconciler{Client: c, Stripe: sc, SkipNameValidation: true}).SetupWithManager(mgr),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return fake
}

func waitReady(t *testing.T, obj client.Object, conds func() []metav1.Condition) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatal(err)
		}
		if meta.IsStatusConditionTrue(conds(), billingv1alpha1.ConditionReady) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never became Ready: %v", obj.GetName(), conds())
}

func writeManifest(t *testing.T, dir, name string, obj any) {
	t.Helper()
	b, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPreview runs `kubectl stripe preview` against a running operator: a
// quantity change that invoices at once, a plan's price change, the JSON
// output, --fail-over, and the preview object is deleted afterwards.
func TestPreview(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	fake := startOperator(t, ns)
	cus := &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"},
		Spec: billingv1alpha1.StripeCustomerSpec{Email: "billing@acme.example", Name: "Acme", DefaultPaymentMethod: "pm_card_visa"}}
	plan := &billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pro"},
		Spec: billingv1alpha1.StripePlanSpec{Product: billingv1alpha1.ProductSpec{Name: "Pro"},
			Price:             billingv1alpha1.PriceSpec{Currency: "usd", UnitAmount: 2000, Interval: "month", IntervalCount: 1},
			PriceChangePolicy: billingv1alpha1.PriceChangePolicyAtNextRenewal}}
	sub := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-pro"},
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerRef: &billingv1alpha1.LocalObjectReference{Name: "acme"},
			Items:             []billingv1alpha1.SubscriptionItem{{PlanRef: &billingv1alpha1.LocalObjectReference{Name: "pro"}, Quantity: 1}},
			ProrationBehavior: billingv1alpha1.ProrationBehaviorAlwaysInvoice}}
	for _, o := range []client.Object{cus, plan, sub} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitReady(t, cus, func() []metav1.Condition { return cus.Status.Conditions })
	waitReady(t, plan, func() []metav1.Condition { return plan.Status.Conditions })
	waitReady(t, sub, func() []metav1.Condition { return sub.Status.Conditions })
	fake.AdvanceClock(10 * 24 * time.Hour)

	dir := t.TempDir()
	changed := sub.DeepCopy()
	changed.TypeMeta = metav1.TypeMeta{APIVersion: billingv1alpha1.GroupVersion.String(), Kind: "StripeSubscription"}
	changed.ObjectMeta = metav1.ObjectMeta{Name: sub.Name}
	changed.Status = billingv1alpha1.StripeSubscriptionStatus{}
	changed.Spec.Items[0].Quantity = 3
	writeManifest(t, dir, "subscription.yaml", changed)
	newPlan := plan.DeepCopy()
	newPlan.TypeMeta = metav1.TypeMeta{APIVersion: billingv1alpha1.GroupVersion.String(), Kind: "StripePlan"}
	newPlan.ObjectMeta = metav1.ObjectMeta{Name: plan.Name}
	newPlan.Status = billingv1alpha1.StripePlanStatus{}
	newPlan.Spec.Price.UnitAmount = 2500
	writeManifest(t, dir, "plan.yaml", newPlan)

	for file, wants := range map[string][]string{
		"subscription.yaml": {"Nothing was written to Stripe", "StripeSubscription acme-pro (sub_", "Charged now: ", "(proration)",
			"Next invoice: 60.00 USD on ", "Charged now in total, per currency: "},
		"plan.yaml": {"StripePlan pro (new price replaces price_", "priceChangePolicy AtNextRenewal", "USD", "+5.00 USD",
			"Charged now in total, per currency: 0.00 USD"},
	} {
		out, err := run(t, "preview", "-n", ns, "-f", filepath.Join(dir, file))
		if err != nil {
			t.Fatalf("preview: %v\n%s", err, out)
		}
		t.Logf("kubectl stripe preview -f %s\n%s", file, out)
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("table output lacks %q:\n%s", want, out)
			}
		}
	}
	// Both in one directory: the subscription follows the plan's policy.
	out, err := run(t, "preview", "-n", ns, "-f", dir)
	if err != nil {
		t.Fatalf("preview -f DIR: %v\n%s", err, out)
	}
	t.Logf("kubectl stripe preview -f DIR\n%s", out)
	if !strings.Contains(out, "without proration (priceChangePolicy AtNextRenewal)") || !strings.Contains(out, "Next invoice: 75.00 USD on ") {
		t.Errorf("-f DIR: the subscription does not follow the plan's policy:\n%s", out)
	}

	out, err = run(t, "preview", "-n", ns, "-f", filepath.Join(dir, "subscription.yaml"), "-o", "json")
	if err != nil {
		t.Fatalf("preview -o json: %v\n%s", err, out)
	}
	var p billingv1alpha1.StripeBillingPreview
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("-o json is not a StripeBillingPreview: %v\n%s", err, out)
	}
	if len(p.Status.Subscriptions) != 1 || p.Status.Subscriptions[0].Immediate == nil {
		t.Fatalf("-o json: no immediate charge: %s", out)
	}
	now := p.Status.Subscriptions[0].Immediate.AmountDue
	if now <= 0 || now >= 4000 {
		t.Fatalf("charged now %d: want the proration of two more seats for two thirds of a month", now)
	}

	// --fail-over: a limit below the charge holds the change (exit code
	// 2); one above it passes.
	_, err = run(t, "preview", "-n", ns, "-f", filepath.Join(dir, "subscription.yaml"), "--fail-over", "1.00", "usd")
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != ExitCodeOverLimit {
		t.Fatalf("--fail-over 1.00 usd: want exit code %d, got %v", ExitCodeOverLimit, err)
	}
	if !strings.Contains(err.Error(), "StripeSubscription "+ns+"/acme-pro charges ") {
		t.Errorf("--fail-over message: %v", err)
	}
	if out, err := run(t, "preview", "-n", ns, "-f", filepath.Join(dir, "subscription.yaml"), "--fail-over", "40.00 USD"); err != nil {
		t.Fatalf("--fail-over 40.00 USD: %v\n%s", err, out)
	}
	if _, err := run(t, "preview", "-n", ns, "-f", filepath.Join(dir, "subscription.yaml"), "--fail-over", "1.001", "usd"); err == nil || !strings.Contains(err.Error(), "more decimals") {
		t.Errorf("--fail-over 1.001 usd: want a refusal of the third decimal, got %v", err)
	}

	// A manifest naming another tenant's customer is refused, with the
	// operator's reason.
	foreign := changed.DeepCopy()
	foreign.Name = "foreign"
	foreign.Spec.CustomerRef, foreign.Spec.CustomerID = nil, "cus_ofAnotherTenant"
	foreignDir := t.TempDir()
	writeManifest(t, foreignDir, "foreign.yaml", foreign)
	if out, err := run(t, "preview", "-n", ns, "-f", foreignDir); err == nil || !strings.Contains(err.Error(), "refused the preview") || !strings.Contains(err.Error(), billingv1alpha1.ReasonNotInNamespace) {
		t.Errorf("a foreign customer: want a refusal naming %s, got %v\n%s", billingv1alpha1.ReasonNotInNamespace, err, out)
	}

	// The plugin deleted its previews; Stripe holds what it held.
	var list billingv1alpha1.StripeBillingPreviewList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, it := range list.Items {
		if it.DeletionTimestamp == nil {
			t.Errorf("preview %s left behind", it.Name)
		}
	}
	snap, _ := fake.Subscription(sub.Status.SubscriptionID)
	if len(snap.Invoices) != 1 || snap.Items[0].Quantity != 1 {
		t.Errorf("the preview changed Stripe: %+v", snap)
	}
}

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in, cur string
		want    int64
		bad     bool
	}{
		{"100.00", "usd", 10000, false}, {"100", "usd", 10000, false}, {"0.5", "eur", 50, false},
		{"500", "jpy", 500, false}, {"500.5", "jpy", 0, true}, {"1.500", "kwd", 1500, false},
		{"-1", "usd", 0, true}, {"1e3", "usd", 0, true}, {"abc", "usd", 0, true},
	} {
		got, err := parseAmount(tc.in, tc.cur)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseAmount(%q, %s) = %d, %v", tc.in, tc.cur, got, err)
		}
	}
}

// A StripePlan manifest is checked against the StripePlan CRD by a
// server-side dry-run before any preview is created (the preview embeds plan
// specs without their CEL rules): the user gets the CRD's own message and
// nothing is persisted.
func TestPreviewRefusesAPlanTheCRDRefuses(t *testing.T) {
	ns := namespace(t)
	out, err := run(t, "preview", "-n", ns, "-f", filepath.Join("..", "..", "config", "samples", "invalid", "stripeplan_tiers_upto_not_rising.yaml"), "--timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), "upTo must rise") || !strings.Contains(err.Error(), "dry-run") {
		t.Fatalf("preview of an invalid plan: err = %v, output %s; want the CRD's refusal from the dry-run", err, out)
	}
	ctx := context.Background()
	var previews billingv1alpha1.StripeBillingPreviewList
	var plans billingv1alpha1.StripePlanList
	if err := env.Client.List(ctx, &previews, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.List(ctx, &plans, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(previews.Items) != 0 || len(plans.Items) != 0 {
		t.Errorf("after a refused dry-run: %d previews, %d plans in %s; want none", len(previews.Items), len(plans.Items), ns)
	}
}
