package kubectlstripe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var (
	env        *testenv.Env
	kubeconfig string
)

// TestMain starts a real API server with the CRDs and writes a kubeconfig
// for it, which the plugin reads as kubectl would.
func TestMain(m *testing.M) {
	e, err := testenv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		os.Exit(1)
	}
	env = e
	dir, err := os.MkdirTemp("", "kubectl-stripe")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kubeconfig = filepath.Join(dir, "kubeconfig")
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	_ = env.Stop()
	os.Exit(code)
}

// run runs `kubectl stripe args...` against envtest.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := "k-" + rand.String(8)
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// seedReport creates a report named name with an audit result in status.
func seedReport(t *testing.T, name string) *billingv1alpha1.StripeBillingReport {
	t.Helper()
	ctx := context.Background()
	r := &billingv1alpha1.StripeBillingReport{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), r) })
	// 30 minutes, which HumanDuration prints as "30m" for a whole minute (3m
	// became "3m1s" on a busy machine).
	at := metav1.NewTime(time.Now().Add(-30 * time.Minute).Truncate(time.Second))
	r.Status = billingv1alpha1.StripeBillingReportStatus{
		Totals: billingv1alpha1.BillingCounts{Managed: 40, Missing: 1, Duplicate: 1},
		Counts: []billingv1alpha1.BillingKindCounts{
			{Kind: "customer", BillingCounts: billingv1alpha1.BillingCounts{Managed: 10, Missing: 1}},
			{Kind: "subscription", BillingCounts: billingv1alpha1.BillingCounts{Managed: 30, Duplicate: 1}},
		},
		Entries: []billingv1alpha1.BillingReportEntry{
			{Kind: "customer", StripeID: "cus_gone", ResourceKind: "StripeCustomer", Namespace: "team-a", Name: "acme",
				Class: billingv1alpha1.BillingClassMissing, Since: &at, Message: "StripeCustomer team-a/acme records customer cus_gone, which no longer exists in Stripe."},
			{Kind: "subscription", StripeID: "sub_two", ResourceKind: "StripeSubscription", Namespace: "team-a", Name: "acme-pro",
				Class: billingv1alpha1.BillingClassDuplicate, Since: &at, Message: "A second live subscription."},
		},
		LastAuditTime: &at, LastAuditCalls: 7,
		CommonStatus: billingv1alpha1.CommonStatus{Conditions: []metav1.Condition{
			{Type: billingv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: billingv1alpha1.ReasonAudited, Message: "The last billing audit completed.", LastTransitionTime: at},
			{Type: billingv1alpha1.ConditionClean, Status: metav1.ConditionFalse, Reason: billingv1alpha1.ReasonFindings, Message: "1 Missing, 1 Duplicate.", LastTransitionTime: at},
		}},
	}
	if err := env.Client.Status().Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReport(t *testing.T) {
	name := "r-" + rand.String(6)
	seedReport(t, name)

	out, err := run(t, "report", "--instance", name)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	for _, want := range []string{
		"last audit 30m ago, 7 Stripe calls",
		"Clean: False (Findings) 1 Missing, 1 Duplicate.",
		"KIND", "MANAGED", "customer", "subscription", "total",
		"Missing", "cus_gone", "StripeCustomer team-a/acme",
		"Duplicate", "sub_two", "StripeSubscription team-a/acme-pro",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table output lacks %q:\n%s", want, out)
		}
	}

	out, err = run(t, "report", "--instance", name, "-o", "json")
	if err != nil {
		t.Fatalf("report -o json: %v\n%s", err, out)
	}
	var asJSON billingv1alpha1.StripeBillingReport
	if err := json.Unmarshal([]byte(out), &asJSON); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if asJSON.Kind != "StripeBillingReport" || asJSON.Status.Totals.Duplicate != 1 || len(asJSON.Status.Entries) != 2 {
		t.Errorf("json output: kind %q, totals %+v, %d entries", asJSON.Kind, asJSON.Status.Totals, len(asJSON.Status.Entries))
	}

	out, err = run(t, "report", "--instance", name, "-o", "yaml")
	if err != nil {
		t.Fatalf("report -o yaml: %v\n%s", err, out)
	}
	var asYAML billingv1alpha1.StripeBillingReport
	if err := yaml.Unmarshal([]byte(out), &asYAML); err != nil || asYAML.APIVersion != "billing.stripe-operator.io/v1alpha1" || asYAML.Status.LastAuditCalls != 7 {
		t.Errorf("yaml output (%v):\n%s", err, out)
	}

	if out, err := run(t, "report", "--instance", name, "-o", "wide"); err == nil || !strings.Contains(out, `unsupported output format "wide"`) {
		t.Errorf("-o wide: %v\n%s", err, out)
	}
	if out, err := run(t, "report", "--instance", "nope-"+name); err == nil || !strings.Contains(out, "--instance-name=nope-") {
		t.Errorf("missing report: %v\n%s", err, out)
	}
}

func setConditions(t *testing.T, obj client.Object, set func()) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	set()
	if err := env.Client.Status().Update(ctx, obj); err != nil {
		t.Fatal(err)
	}
}

func cond(t, status, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionStatus(status), Reason: reason, Message: msg, LastTransitionTime: metav1.Now()}
}

func TestDrift(t *testing.T) {
	a, b := namespace(t), namespace(t)
	item := []billingv1alpha1.SubscriptionItem{{PriceID: "price_1", Quantity: 1}}
	drifted := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: a, Name: "drifted"},
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerID: "cus_1", Items: item}}
	setConditions(t, drifted, func() {
		drifted.Status.Conditions = []metav1.Condition{
			cond(billingv1alpha1.ConditionBillingDrift, "True", billingv1alpha1.ReasonDrifted, "Stripe differs from the declaration: item 1 quantity is 4 in Stripe, 1 declared."),
			cond(billingv1alpha1.ConditionPaymentFailed, "False", billingv1alpha1.ReasonPaid, "No invoice is owed."),
		}
	})
	fine := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: a, Name: "fine"},
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerID: "cus_1", Items: item}}
	setConditions(t, fine, func() {
		fine.Status.Conditions = []metav1.Condition{cond(billingv1alpha1.ConditionBillingDrift, "False", billingv1alpha1.ReasonInSync, "Stripe matches the declaration.")}
	})
	unpaid := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: b, Name: "unpaid"},
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerID: "cus_2", Items: item}}
	setConditions(t, unpaid, func() {
		unpaid.Status.Conditions = []metav1.Condition{cond(billingv1alpha1.ConditionPaymentFailed, "True", billingv1alpha1.ReasonPaymentDeclined, "The card was declined.")}
	})
	observed := &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: b, Name: "observed"},
		Spec: billingv1alpha1.StripeCustomerSpec{ManagementPolicy: billingv1alpha1.ManagementPolicyObserve, CustomerID: "cus_3"}}
	setConditions(t, observed, func() {
		observed.Status.Conditions = []metav1.Condition{cond(billingv1alpha1.ConditionReady, "False", billingv1alpha1.ReasonDrifted, "Stripe customer cus_3 differs from the spec in: email.")}
	})

	out, err := run(t, "drift", "-n", a)
	if err != nil {
		t.Fatalf("drift -n: %v\n%s", err, out)
	}
	if !strings.Contains(out, "drifted") || !strings.Contains(out, "item 1 quantity is 4 in Stripe") || strings.Contains(out, "fine") || strings.Contains(out, "unpaid") {
		t.Errorf("drift -n %s:\n%s", a, out)
	}

	out, err = run(t, "drift", "-A", "-o", "json")
	if err != nil {
		t.Fatalf("drift -A: %v\n%s", err, out)
	}
	var rows []driftRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("drift json: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, r := range rows {
		if r.Namespace == a || r.Namespace == b {
			got[r.Namespace+"/"+r.Name] = r.Condition + "/" + r.Reason
		}
	}
	want := map[string]string{
		a + "/drifted":  "BillingDrift/Drifted",
		b + "/unpaid":   "PaymentFailed/PaymentDeclined",
		b + "/observed": "Ready/Drifted",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("drift -A rows = %v, want %v", got, want)
	}

	empty := namespace(t)
	if out, err := run(t, "drift", "-n", empty); err != nil || !strings.Contains(out, "No drift and no failed payments.") {
		t.Errorf("drift in an empty namespace: %v\n%s", err, out)
	}
}

func TestAuditNow(t *testing.T) {
	name := "r-" + rand.String(6)
	seedReport(t, name)
	ctx := context.Background()

	if out, err := run(t, "audit", "--instance", name); err == nil || !strings.Contains(out, "audit needs --now") {
		t.Errorf("audit without --now: %v\n%s", err, out)
	}
	out, err := run(t, "audit", "--now", "--instance", name)
	if err != nil {
		t.Fatalf("audit --now: %v\n%s", err, out)
	}
	r := &billingv1alpha1.StripeBillingReport{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, r); err != nil {
		t.Fatal(err)
	}
	first := r.Annotations[billingv1alpha1.AnnotationAuditNow]
	if first == "" || !strings.Contains(out, first) {
		t.Fatalf("annotation %q, output:\n%s", first, out)
	}

	// --wait returns once the operator answered the new request: here a
	// stand-in copies the annotation into status.lastAuditRequest.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			r := &billingv1alpha1.StripeBillingReport{}
			if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, r); err != nil {
				continue
			}
			if v := r.Annotations[billingv1alpha1.AnnotationAuditNow]; v != first && v != r.Status.LastAuditRequest {
				r.Status.LastAuditRequest = v
				_ = env.Client.Status().Update(ctx, r)
			}
		}
	}()
	out, err = run(t, "audit", "--now", "--wait", "--timeout", "30s", "--instance", name)
	if err != nil {
		t.Fatalf("audit --now --wait: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Billing report") || !strings.Contains(out, "cus_gone") {
		t.Errorf("audit --now --wait prints the report:\n%s", out)
	}
}
