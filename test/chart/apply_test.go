package chart_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
	}
	os.Exit(code)
}

// apply server-side applies objs (namespaced ones into their namespace).
func apply(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Patch(context.Background(), o, client.Apply, client.FieldOwner("chart-test"), client.ForceOwnership); err != nil {
			t.Fatalf("applying %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// TestChartAppliesToAnAPIServer applies the default render and the render
// with every optional part the API server knows (NetworkPolicy, dashboard
// ConfigMap; ServiceMonitor and PrometheusRule need the Prometheus
// Operator's CRDs) to envtest.
func TestChartAppliesToAnAPIServer(t *testing.T) {
	ensureNamespace(t, "chart-default")
	apply(t, render(t, "chart-default", nil))
	ensureNamespace(t, "chart-all")
	var objs []*unstructured.Unstructured
	for _, o := range render(t, "chart-all", map[string]any{
		"fullnameOverride": "all",
		"metrics":          map[string]any{"serviceMonitor": map[string]any{"enabled": true}, "prometheusRule": map[string]any{"enabled": true}, "dashboard": map[string]any{"enabled": true}},
		"networkPolicy":    map[string]any{"enabled": true, "apiServerCIDRs": []any{"10.0.0.1/32"}},
	}) {
		if o.GetAPIVersion() != "monitoring.coreos.com/v1" {
			objs = append(objs, o)
		}
	}
	apply(t, objs)
	var crd unstructured.Unstructured
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	if err := env.Client.Get(context.Background(), types.NamespacedName{Name: "stripesubscriptions.billing.stripe-operator.io"}, &crd); err != nil {
		t.Fatal(err)
	}
	if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Errorf("CRD annotations %v: want helm.sh/resource-policy=keep", crd.GetAnnotations())
	}
}

// asServiceAccount returns a client that acts as ns/name (impersonation).
func asServiceAccount(t *testing.T, ns, name string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkWebhookServerConfined proves, as the webhook server's service
// account, that it can change on a StripeSubscription what it writes and
// nothing else: through the status subresource (patch only) the fields
// Stripe's events show, and on the resource the two event-ID annotations.
// RBAC grants patch on the resource, so the ValidatingAdmissionPolicy is
// what refuses the rest.
func checkWebhookServerConfined(t *testing.T, ns, serviceAccount string) {
	t.Helper()
	g := gomega.NewWithT(t)
	ctx := context.Background()
	sub := &billingv1alpha1.StripeSubscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s-" + strings.ReplaceAll(serviceAccount, "-", "")[:6], Labels: map[string]string{"team": "a"}},
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerID: "cus_A",
			Items: []billingv1alpha1.SubscriptionItem{{PriceID: "price_A", Quantity: 1}}},
	}
	g.Expect(env.Client.Create(ctx, sub)).To(gomega.Succeed())
	// The reconciler's part of status, as it would have written it.
	sub.Status.SubscriptionID = "sub_A"
	sub.Status.ObservedGeneration = sub.Generation
	sub.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Active", Message: "m", LastTransitionTime: metav1.Now()}}
	g.Expect(env.Client.Status().Update(ctx, sub)).To(gomega.Succeed())
	ws := asServiceAccount(t, ns, serviceAccount)
	merge := func(patch string) error {
		return ws.Patch(ctx, sub.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))
	}
	status := func(patch string) error {
		return ws.Status().Patch(ctx, sub.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))
	}

	// Its own RBAC: status may be patched (as the server writes it, with
	// the resourceVersion as a precondition) but not replaced.
	fresh := &billingv1alpha1.StripeSubscription{}
	g.Expect(ws.Get(ctx, client.ObjectKeyFromObject(sub), fresh)).To(gomega.Succeed())
	g.Expect(ws.Status().Patch(ctx, fresh, client.RawPatch(types.MergePatchType,
		[]byte(`{"metadata":{"resourceVersion":"`+fresh.ResourceVersion+`"},"status":{"stripeStatus":"active"}}`)))).To(gomega.Succeed(), "status patch")
	fresh.Status.StripeStatus = "past_due"
	g.Expect(apierrors.IsForbidden(ws.Status().Update(ctx, fresh))).To(gomega.BeTrue(), "RBAC refuses a status update")

	// Wait until the API server has loaded the policy: the first refusal
	// of a spec change by the policy.
	g.Eventually(func() error {
		err := merge(`{"spec":{"items":[{"priceID":"price_B","quantity":2}]}}`)
		switch {
		case err == nil:
			// The policy was not loaded yet: undo and try again.
			g.Expect(env.Client.Patch(ctx, sub.DeepCopy(), client.RawPatch(types.MergePatchType,
				[]byte(`{"spec":{"items":[{"priceID":"price_A","quantity":1}]}}`)))).To(gomega.Succeed())
			return fmt.Errorf("spec patch allowed")
		case strings.Contains(err.Error(), "cannot patch resource"):
			return fmt.Errorf("RBAC not granted yet: %w", err)
		}
		return nil
	}, 20*time.Second, 200*time.Millisecond).Should(gomega.Succeed())
	// The status rule too (the policy is loaded whole, but a status write
	// is a request of its own).
	g.Eventually(func() error {
		if err := status(`{"status":{"observedGeneration":99}}`); err == nil {
			return fmt.Errorf("observedGeneration patch allowed")
		}
		return nil
	}, 20*time.Second, 200*time.Millisecond).Should(gomega.Succeed())

	for _, tc := range []struct {
		name    string
		patch   string
		allowed bool
		says    string
	}{
		{"status of an event", `{"status":{"stripeStatus":"past_due","lastEvent":{"id":"evt_1","type":"customer.subscription.updated","created":1700000000}}}`, true, ""},
		{"the PaymentFailed condition", `{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Active","message":"m","lastTransitionTime":"` + sub.Status.Conditions[0].LastTransitionTime.UTC().Format(time.RFC3339) + `"},{"type":"PaymentFailed","status":"True","reason":"PaymentDeclined","message":"declined","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`, true, ""},
		{"observedGeneration", `{"status":{"observedGeneration":7}}`, false, "observedGeneration"},
		{"readAt", `{"status":{"readAt":"2026-01-01T00:00:00Z"}}`, false, "readAt"},
		{"the Ready condition", `{"status":{"conditions":[{"type":"Ready","status":"False","reason":"X","message":"m","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`, false, "condition"},
		{"a recorded subscriptionID", `{"status":{"subscriptionID":"sub_B"}}`, false, "subscriptionID"},
		{"the charge record", `{"status":{"charges":{"attempts":["2026-01-01T00:00:00Z"]}}}`, false, "charges"},
		{"who ended it", `{"status":{"cancellation":{"endedBy":"CanceledByOperator"}}}`, false, "cancellation"},
		{"the expected amount", `{"status":{"expectedAmount":{"amount":1,"currency":"usd"}}}`, false, "expectedAmount"},
	} {
		err := status(tc.patch)
		switch {
		case tc.allowed && err != nil:
			t.Errorf("status %s: want allowed, got %v", tc.name, err)
		case !tc.allowed && err == nil:
			t.Errorf("status %s: want refused, was allowed", tc.name)
		case !tc.allowed && !(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)):
			t.Errorf("status %s: want Forbidden, got %v", tc.name, err)
		case !tc.allowed && !strings.Contains(err.Error(), tc.says):
			t.Errorf("status %s: refusal %q does not mention %q", tc.name, err, tc.says)
		}
	}

	cases := []struct {
		name    string
		patch   string
		allowed bool
		says    string
	}{
		{"last-event-id annotation", `{"metadata":{"annotations":{"billing.stripe-operator.io/last-event-id":"evt_1"}}}`, true, ""},
		{"recent-event-ids annotation", `{"metadata":{"annotations":{"billing.stripe-operator.io/recent-event-ids":"evt_0,evt_1"}}}`, true, ""},
		{"spec", `{"spec":{"cancelAtPeriodEnd":true}}`, false, "spec"},
		{"another annotation", `{"metadata":{"annotations":{"billing.stripe-operator.io/recreate":"true"}}}`, false, "annotations"},
		{"a label", `{"metadata":{"labels":{"team":"b"}}}`, false, "labels"},
		{"the finalizers", `{"metadata":{"finalizers":["example.com/x"]}}`, false, "finalizers"},
	}
	for _, tc := range cases {
		err := merge(tc.patch)
		switch {
		case tc.allowed && err != nil:
			t.Errorf("%s: want allowed, got %v", tc.name, err)
		case !tc.allowed && err == nil:
			t.Errorf("%s: want refused, was allowed", tc.name)
		case !tc.allowed && !(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)):
			t.Errorf("%s: want Forbidden, got %v", tc.name, err)
		case !tc.allowed && !strings.Contains(err.Error(), tc.says):
			t.Errorf("%s: refusal %q does not mention %q", tc.name, err, tc.says)
		}
	}
	// It reads the signing secrets' Secret and nothing else: not the API
	// key, not another Secret.
	for _, name := range []string{"stripe-credentials", "stripe-webhook-secrets", "other"} {
		err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{"k": "v"}})
		g.Expect(err == nil || apierrors.IsAlreadyExists(err)).To(gomega.BeTrue(), "%v", err)
	}
	g.Expect(ws.Get(ctx, client.ObjectKey{Namespace: ns, Name: "stripe-webhook-secrets"}, &corev1.Secret{})).To(gomega.Succeed())
	g.Expect(apierrors.IsForbidden(ws.Get(ctx, client.ObjectKey{Namespace: ns, Name: "stripe-credentials"}, &corev1.Secret{}))).To(gomega.BeTrue(),
		"the webhook server must not read the API key's Secret")
	g.Expect(apierrors.IsForbidden(ws.Get(ctx, client.ObjectKey{Namespace: ns, Name: "other"}, &corev1.Secret{}))).To(gomega.BeTrue())
	g.Expect(apierrors.IsForbidden(ws.List(ctx, &corev1.SecretList{}, client.InNamespace(ns)))).To(gomega.BeTrue())

	// Creating or deleting is refused by RBAC already.
	g.Expect(apierrors.IsForbidden(ws.Delete(ctx, sub.DeepCopy()))).To(gomega.BeTrue())
	// Anyone else (here the test's admin) may still change the spec.
	g.Expect(env.Client.Patch(ctx, sub.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"cancelAtPeriodEnd":true}}`)))).To(gomega.Succeed())
}

func TestChartPolicyConfinesTheWebhookServer(t *testing.T) {
	ns := "chart-policy"
	ensureNamespace(t, ns)
	apply(t, render(t, ns, map[string]any{"fullnameOverride": "pol"}))
	checkWebhookServerConfined(t, ns, "pol-webhook-server")
}

func TestKustomizePolicyConfinesTheWebhookServer(t *testing.T) {
	ensureNamespace(t, "stripe-operator-system")
	apply(t, kustomizeDefault(t))
	checkWebhookServerConfined(t, "stripe-operator-system", "stripe-operator-webhook-server")
}
