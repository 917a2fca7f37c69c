// Package api_test proves the billing API against a real kube-apiserver
// (envtest): the samples apply, invalid manifests are refused with a message
// naming the field, the printer columns render, the kustomize tree renders
// and is accepted by the API server, and the credentials Role only grants the
// credentials Secret.
package api_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var (
	env        *testenv.Env
	kubeconfig string
	cacheDir   string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}()
	dir, err := os.MkdirTemp("", "stripe-operator-api-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "temp dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	kubeconfig = filepath.Join(dir, "kubeconfig")
	cacheDir = filepath.Join(dir, "kube-cache")
	if err := env.WriteKubeconfig(kubeconfig); err != nil {
		fmt.Fprintf(os.Stderr, "writing kubeconfig: %v\n", err)
		return 1
	}
	return m.Run()
}

// repo returns a path inside the repository.
func repo(elem ...string) string {
	return filepath.Join(append([]string{testenv.RepoRoot()}, elem...)...)
}

// kubectl runs envtest's kubectl against the test API server. Its discovery
// cache lives in a temp dir so categories and short names of freshly
// installed CRDs are found.
func kubectl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	args = append([]string{"--kubeconfig", kubeconfig, "--cache-dir", cacheDir}, args...)
	cmd := exec.CommandContext(ctx, env.KubectlPath(), args...)
	cmd.Dir = testenv.RepoRoot()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// decodeFile decodes every YAML document of a manifest into typed objects of
// the test scheme (core, RBAC, apps and billing).
func decodeFile(t *testing.T, path string) []client.Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []client.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading YAML from %s: %v", path, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decoding %s: %v", path, err)
		}
		co, ok := obj.(client.Object)
		if !ok {
			t.Fatalf("%s: %T is not a client.Object", path, obj)
		}
		objs = append(objs, co)
	}
	return objs
}

// decodeUnstructured decodes every YAML document of a manifest as written.
func decodeUnstructured(t *testing.T, path string) []client.Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []client.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading YAML from %s: %v", path, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatalf("decoding %s: %v", path, err)
		}
		objs = append(objs, u)
	}
	return objs
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}

// yamlFiles lists the *.yaml manifests of a directory, without
// kustomization.yaml.
func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") || e.Name() == "kustomization.yaml" {
			continue
		}
		files = append(files, e.Name())
	}
	sort.Strings(files)
	return files
}

// TestSamplesKustomizationListsEverySample checks config/samples/Kustomization
// (named so that `kubectl apply -f config/samples/` skips it) lists every
// sample and renders.
func TestSamplesKustomizationListsEverySample(t *testing.T) {
	g := gomega.NewWithT(t)
	data, err := os.ReadFile(repo("config", "samples", "Kustomization"))
	g.Expect(err).NotTo(gomega.HaveOccurred())
	var k struct {
		Resources []string `json:"resources"`
	}
	g.Expect(yaml.Unmarshal(data, &k)).To(gomega.Succeed())
	sort.Strings(k.Resources)
	g.Expect(k.Resources).To(gomega.Equal(yamlFiles(t, repo("config", "samples"))))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, errOut, err := kubectl(ctx, "kustomize", "config/samples")
	g.Expect(err).NotTo(gomega.HaveOccurred(), errOut)
	for _, kind := range []string{"kind: StripeCustomer", "kind: StripePlan", "kind: StripeSubscription"} {
		g.Expect(out).To(gomega.ContainSubstring(kind))
	}
}

// TestSamplesCreate creates every sample through the typed client.
func TestSamplesCreate(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "samples-typed")
	kinds := map[string]bool{}
	for _, f := range yamlFiles(t, repo("config", "samples")) {
		t.Run(f, func(t *testing.T) {
			for _, obj := range decodeFile(t, repo("config", "samples", f)) {
				obj.SetNamespace(ns)
				if err := env.Client.Create(ctx, obj); err != nil {
					t.Fatalf("creating %s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
				}
				kinds[fmt.Sprintf("%T", obj)] = true
			}
		})
	}
	for _, want := range []string{"*v1alpha1.StripeCustomer", "*v1alpha1.StripePlan", "*v1alpha1.StripeSubscription"} {
		if !kinds[want] {
			t.Errorf("config/samples has no %s", want)
		}
	}

	// Defaults from the CRD schema are applied by the API server.
	var sub billingv1alpha1.StripeSubscription
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-pro"}, &sub); err != nil {
		t.Fatalf("getting sample subscription: %v", err)
	}
	if sub.Spec.ManagementPolicy != billingv1alpha1.ManagementPolicyManage || sub.Spec.PaymentBehavior == "" {
		t.Errorf("defaults not applied: managementPolicy=%q paymentBehavior=%q", sub.Spec.ManagementPolicy, sub.Spec.PaymentBehavior)
	}
	if len(sub.Spec.Items) != 1 || sub.Spec.Items[0].Quantity != 2 {
		t.Errorf("items = %+v, want one item with quantity 2", sub.Spec.Items)
	}
}

// TestSamplesKubectlApply runs `kubectl apply -f config/samples/` and then
// checks the printer columns of `kubectl get`.
func TestSamplesKubectlApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := newNamespace(t, "samples-kubectl")

	out, errOut, err := kubectl(ctx, "apply", "-n", ns, "-f", "config/samples/")
	if err != nil {
		t.Fatalf("kubectl apply -f config/samples/: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for _, want := range []string{
		"stripecustomer.billing.stripe-operator.io/acme created",
		"stripeplan.billing.stripe-operator.io/pro-monthly created",
		"stripesubscription.billing.stripe-operator.io/acme-pro created",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply output lacks %q:\n%s", want, out)
		}
	}

	tests := []struct {
		name    string
		args    []string
		headers [][]string
	}{
		{
			name: "short names",
			args: []string{"get", "ssub,scus,splan"},
			headers: [][]string{
				{"NAME", "CUSTOMER", "STATUS", "READY", "DRIFT", "PAYMENT", "AGE"},
				{"NAME", "EMAIL", "CUSTOMER-ID", "READY", "AGE"},
				{"NAME", "AMOUNT", "CURRENCY", "INTERVAL", "PRICE-ID", "READY", "AGE"},
			},
		},
		{
			name: "plans wide: the subscription counts per price",
			args: []string{"get", "ssub,scus,splan", "-o", "wide"},
			headers: [][]string{
				{"NAME", "AMOUNT", "CURRENCY", "INTERVAL", "PRICE-ID", "READY", "AGE", "POLICY", "ON-CURRENT", "ON-EARLIER", "MOVING"},
			},
		},
		{
			name: "category stripe",
			args: []string{"get", "stripe"},
			headers: [][]string{
				{"NAME", "CUSTOMER", "STATUS", "READY", "DRIFT", "PAYMENT", "AGE"},
				{"NAME", "EMAIL", "CUSTOMER-ID", "READY", "AGE"},
				{"NAME", "AMOUNT", "CURRENCY", "INTERVAL", "PRICE-ID", "READY", "AGE"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := kubectl(ctx, append(tc.args, "-n", ns)...)
			if err != nil {
				t.Fatalf("kubectl %v: %v\n%s\n%s", tc.args, err, out, errOut)
			}
			var headerLines [][]string
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) > 0 && f[0] == "NAME" {
					headerLines = append(headerLines, f)
				}
			}
			for _, want := range tc.headers {
				found := false
				for _, h := range headerLines {
					if strings.Join(h, " ") == strings.Join(want, " ") {
						found = true
					}
				}
				if !found {
					t.Errorf("kubectl %v: no header line %v in:\n%s", tc.args, want, out)
				}
			}
			for _, name := range []string{"acme ", "pro-monthly ", "acme-pro "} {
				if !strings.Contains(out, "\n"+name) && !strings.Contains(out, "/"+name) {
					t.Errorf("kubectl %v: no row for %q in:\n%s", tc.args, name, out)
				}
			}
		})
	}
}

// TestPrinterColumnsTableAPI asks the API server for the Table rendering
// that kubectl get prints.
func TestPrinterColumnsTableAPI(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "table")
	for _, f := range yamlFiles(t, repo("config", "samples")) {
		for _, obj := range decodeFile(t, repo("config", "samples", f)) {
			obj.SetNamespace(ns)
			if err := env.Client.Create(ctx, obj); err != nil {
				t.Fatalf("creating sample: %v", err)
			}
		}
	}
	// Status the operator would write, so the cells are checked too.
	plan := &billingv1alpha1.StripePlan{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "pro-monthly"}, plan); err != nil {
		t.Fatal(err)
	}
	plan.Status.PriceID = "price_Test123"
	plan.Status.PreviousPriceIDs = []string{"price_Old1", "price_Old2"}
	plan.Status.Subscriptions = &billingv1alpha1.PlanSubscriptions{OnCurrentPrice: 7, OnPreviousPrices: 5, ScheduledToMove: 2,
		ByPreviousPrice: []billingv1alpha1.PriceSubscriptions{{PriceID: "price_Old1", Subscriptions: 1}, {PriceID: "price_Old2", Subscriptions: 4}}}
	plan.Status.Conditions = []metav1.Condition{{Type: billingv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: billingv1alpha1.ReasonAvailable, LastTransitionTime: metav1.Now()}}
	if err := env.Client.Status().Update(ctx, plan); err != nil {
		t.Fatal(err)
	}

	httpClient, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		resource string
		columns  []string
		row      string
		cells    []string
	}{
		{"stripesubscriptions", []string{"Name", "Customer", "Status", "Ready", "Drift", "Payment", "Age", "Reason", "Message"}, "acme-pro", nil},
		{"stripecoupons", []string{"Name", "Percent", "Amount", "Currency", "Duration", "Coupon-ID", "Redeemed", "Ready", "Age", "Months", "Valid"}, "launch",
			[]string{"launch", "20", "<nil>", "<nil>", "repeating"}},
		{"stripecustomers", []string{"Name", "Email", "Customer-ID", "Ready", "Age"}, "acme", []string{"acme", "billing@acme.example"}},
		{"stripeplans", []string{"Name", "Amount", "Currency", "Interval", "Price-ID", "Ready", "Age", "Policy", "On-Current", "On-Earlier", "Moving"}, "pro-monthly",
			[]string{"pro-monthly", "2000", "usd", "month", "price_Test123", "True", "*", "Keep", "7", "5", "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.resource, func(t *testing.T) {
			g := gomega.NewWithT(t)
			url := fmt.Sprintf("%s/apis/%s/%s/namespaces/%s/%s", strings.TrimSuffix(env.Config.Host, "/"),
				billingv1alpha1.GroupVersion.Group, billingv1alpha1.GroupVersion.Version, ns, tc.resource)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			req.Header.Set("Accept", "application/json;as=Table;g=meta.k8s.io;v=v1")
			resp, err := httpClient.Do(req)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(resp.StatusCode).To(gomega.Equal(http.StatusOK), string(body))
			var table metav1.Table
			g.Expect(yaml.Unmarshal(body, &table)).To(gomega.Succeed())
			var names []string
			for _, c := range table.ColumnDefinitions {
				names = append(names, c.Name)
			}
			g.Expect(names).To(gomega.Equal(tc.columns))
			// The samples hold several plans (one per price shape): the
			// row checked is the one named.
			var cells []string
			for _, r := range table.Rows {
				if len(r.Cells) > 0 && fmt.Sprint(r.Cells[0]) == tc.row {
					for _, c := range r.Cells {
						cells = append(cells, fmt.Sprint(c))
					}
				}
			}
			g.Expect(cells).NotTo(gomega.BeEmpty(), "no row named %s", tc.row)
			g.Expect(cells[0]).To(gomega.Equal(tc.row))
			for i, want := range tc.cells {
				if want == "*" { // any value (an age)
					continue
				}
				g.Expect(cells[i]).To(gomega.Equal(want), "cell %d (%s)", i, tc.columns[i])
			}
		})
	}
}

// invalidCases are the manifests in config/samples/invalid and what the API
// server's refusal must mention: the field path and, where it helps, the
// reason. In a multi-document file every document but the last is valid and
// applied first; the last one is the refused change.
var invalidCases = []struct {
	file string
	want []string
}{
	{"stripesubscription_customerref_and_customerid.yaml", []string{"spec", "customerRef", "customerID"}},
	{"stripesubscription_no_items.yaml", []string{"spec.items", "at least 1"}},
	{"stripesubscription_21_items.yaml", []string{"spec.items", "at most 20"}},
	{"stripesubscription_quantity_zero.yaml", []string{"spec.items[0].quantity"}},
	{"stripesubscription_send_invoice_without_days_until_due.yaml", []string{"spec.daysUntilDue", "send_invoice"}},
	{"stripesubscription_item_planref_and_priceid.yaml", []string{"spec.items[0]", "planRef", "priceID"}},
	{"stripeplan_uppercase_currency.yaml", []string{"spec.price.currency"}},
	{"stripeplan_unknown_price_change_policy.yaml", []string{"spec.priceChangePolicy", "Keep", "AtNextRenewal", "Immediately"}},
	{"stripecustomer_card_number_payment_method.yaml", []string{"spec.defaultPaymentMethod", "card number"}},
	{"stripecustomer_reserved_metadata_key.yaml", []string{"spec.metadata", "stripe-operator.io/"}},
	{"stripecustomer_customerid_change.yaml", []string{"spec.customerID", "immutable"}},
	{"stripecustomer_empty_metadata_value.yaml", []string{"spec.metadata", "must not be empty"}},
	{"stripecustomer_card_number_metadata.yaml", []string{"spec.metadata", "card number"}},
	{"stripecustomer_card_number_email.yaml", []string{"spec.email", "card number"}},
	{"stripecustomer_testclock_change.yaml", []string{"spec.testClock", "immutable"}},
	{"stripeplan_card_number_product_name.yaml", []string{"spec.product.name", "card number"}},
	{"stripeplan_card_number_lookup_key.yaml", []string{"spec.price.lookupKey", "card number"}},
	{"stripesubscription_card_number_metadata_key.yaml", []string{"spec.metadata", "card number"}},
	{"stripesubscription_44_metadata_keys.yaml", []string{"spec.metadata", "43"}},
	{"stripecustomer_long_metadata_key.yaml", []string{"spec.metadata", "40 characters"}},
	{"stripeplan_long_metadata_value.yaml", []string{"spec.product.metadata", "500"}},
	{"stripesubscription_trialend_and_trialperioddays.yaml", []string{"spec.trialEnd", "trialPeriodDays"}},
	{"stripesubscription_tax_rate_not_txr.yaml", []string{"spec.defaultTaxRates", "txr_"}},
	{"stripesubscription_automatic_tax_and_tax_rates.yaml", []string{"spec.defaultTaxRates", "automaticTax"}},
	{"stripesubscription_anchor_day_and_at.yaml", []string{"spec.billingCycleAnchor", "dayOfMonth"}},
	{"stripecustomer_tax_exempt_unknown.yaml", []string{"spec.taxExempt", "reverse"}},
	{"stripecustomer_lowercase_country.yaml", []string{"spec.address.country"}},
	{"stripebillingpreview_empty.yaml", []string{"spec", "at least one subscription or plan"}},
	{"stripebillingpreview_spec_change.yaml", []string{"spec", "immutable"}},
	{"stripecoupon_percent_and_amount.yaml", []string{"spec", "exactly one of percentOff or amountOff"}},
	{"stripecoupon_amount_without_currency.yaml", []string{"spec.currency", "currency is required with amountOff"}},
	{"stripecoupon_repeating_without_months.yaml", []string{"spec.durationInMonths", "repeating"}},
	{"stripecoupon_percent_three_decimals.yaml", []string{"spec.percentOff"}},
	{"stripecoupon_duplicate_codes.yaml", []string{"spec.promotionCodes", "distinct codes"}},
	{"stripesubscription_discount_two_sources.yaml", []string{"spec.discount", "exactly one of couponRef, couponID or promotionCode"}},
	{"stripeplan_tiered_without_tiers.yaml", []string{"spec.price.tiers", "required when price.billingScheme is tiered"}},
	{"stripeplan_tiers_without_tiered.yaml", []string{"spec.price.tiers", "allowed only then"}},
	{"stripeplan_tiers_upto_not_rising.yaml", []string{"spec.price.tiers", "upTo must rise"}},
	{"stripeplan_tiers_inf_not_last.yaml", []string{"spec.price.tiers", "last of price.tiers must have upTo: inf"}},
	{"stripeplan_unit_amount_and_decimal.yaml", []string{"spec.price.unitAmountDecimal", "mutually exclusive"}},
	{"stripeplan_tier_flat_amount_and_decimal.yaml", []string{"spec.price.tiers[0].flatAmountDecimal", "mutually exclusive"}},
	{"stripeplan_transform_quantity_with_tiered.yaml", []string{"spec.price.transformQuantity", "tiered"}},
	{"stripeplan_currency_option_repeats_currency.yaml", []string{"spec.price.currencyOptions", "must not repeat"}},
	{"stripeplan_aggregate_usage_without_metered.yaml", []string{"spec.price.aggregateUsage", "metered"}},
}

// cardDigits are the digits of the test card numbers in the invalid
// samples; a refusal must never repeat them.
var cardDigits = []string{"4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242"}

func TestEveryInvalidManifestHasACase(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range invalidCases {
		covered[tc.file] = true
	}
	for _, f := range yamlFiles(t, repo("config", "samples", "invalid")) {
		if !covered[f] {
			t.Errorf("config/samples/invalid/%s has no entry in invalidCases", f)
		}
	}
}

// TestInvalidManifestsRejectedByAPIServer sends each invalid manifest through
// a controller-runtime client and expects an Invalid error naming the field.
// The manifests are sent as unstructured objects, exactly as written: a typed
// object would drop zero values marked omitempty (quantity: 0 would be
// omitted and defaulted to 1).
func TestInvalidManifestsRejectedByAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "invalid-client")
	for _, tc := range invalidCases {
		t.Run(tc.file, func(t *testing.T) {
			objs := decodeUnstructured(t, repo("config", "samples", "invalid", tc.file))
			for _, obj := range objs[:len(objs)-1] {
				obj.SetNamespace(ns)
				if err := env.Client.Create(ctx, obj); err != nil {
					t.Fatalf("creating the valid first version: %v", err)
				}
			}
			last := objs[len(objs)-1]
			last.SetNamespace(ns)
			var err error
			if len(objs) > 1 {
				current := last.DeepCopyObject().(client.Object)
				if gerr := env.Client.Get(ctx, client.ObjectKeyFromObject(last), current); gerr != nil {
					t.Fatal(gerr)
				}
				last.SetResourceVersion(current.GetResourceVersion())
				err = env.Client.Update(ctx, last)
			} else {
				err = env.Client.Create(ctx, last)
			}
			if err == nil {
				t.Fatalf("the API server accepted %s", tc.file)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q: %v", w, err)
				}
			}
			for _, d := range cardDigits {
				if strings.Contains(err.Error(), d) {
					t.Errorf("the refusal repeats the card number: %v", err)
				}
			}
		})
	}
}

// TestInvalidManifestsRejectedKubectl applies each invalid manifest with
// kubectl, as a user would, and expects a refusal naming the field.
func TestInvalidManifestsRejectedKubectl(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := newNamespace(t, "invalid-kubectl")
	for _, tc := range invalidCases {
		t.Run(tc.file, func(t *testing.T) {
			out, errOut, err := kubectl(ctx, "apply", "-n", ns, "-f", filepath.Join("config", "samples", "invalid", tc.file))
			if err == nil {
				t.Fatalf("kubectl apply accepted %s:\n%s", tc.file, out)
			}
			t.Logf("refused: %s", strings.TrimSpace(errOut))
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("kubectl error does not mention %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestKustomizeDefaultRendersAndApplies renders config/default with
// envtest's kubectl, checks the manager Deployment and applies everything to
// the API server.
func TestKustomizeDefaultRendersAndApplies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, errOut, err := kubectl(ctx, "kustomize", "config/default")
	if err != nil {
		t.Fatalf("kubectl kustomize config/default: %v\n%s", err, errOut)
	}
	rendered := filepath.Join(t.TempDir(), "default.yaml")
	if err := os.WriteFile(rendered, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}

	var dep *appsv1.Deployment
	kinds := map[string]int{}
	for _, obj := range decodeFile(t, rendered) {
		kinds[obj.GetObjectKind().GroupVersionKind().Kind]++
		if ns := obj.GetNamespace(); ns != "" && ns != "stripe-operator-system" {
			t.Errorf("%s %s in namespace %q, want stripe-operator-system", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), ns)
		}
		if d, ok := obj.(*appsv1.Deployment); ok && d.Name == "stripe-operator-controller-manager" {
			dep = d
		}
	}
	// StripeCustomer, StripePlan, StripeCoupon, StripeSubscription,
	// StripeBillingReport, StripeWebhookEndpoint, StripeBillingPreview.
	if kinds["CustomResourceDefinition"] != 7 || kinds["Namespace"] != 1 || kinds["ServiceAccount"] < 1 {
		t.Errorf("rendered kinds = %v", kinds)
	}
	if dep == nil {
		t.Fatal("no Deployment rendered")
	}
	g := gomega.NewWithT(t)
	g.Expect(dep.Name).To(gomega.Equal("stripe-operator-controller-manager"))
	g.Expect(dep.Spec.Template.Spec.ServiceAccountName).To(gomega.Equal("stripe-operator-controller-manager"))
	c := dep.Spec.Template.Spec.Containers[0]
	g.Expect(c.Command).To(gomega.Equal([]string{"/manager"}))
	g.Expect(c.Args).To(gomega.ContainElements("--leader-elect", "--metrics-bind-address=:8443",
		"--health-probe-bind-address=:8081", "--webhook-bind-address=0"))
	sc := c.SecurityContext
	g.Expect(sc).NotTo(gomega.BeNil())
	g.Expect(*sc.RunAsNonRoot).To(gomega.BeTrue())
	g.Expect(*sc.ReadOnlyRootFilesystem).To(gomega.BeTrue())
	g.Expect(*sc.AllowPrivilegeEscalation).To(gomega.BeFalse())
	g.Expect(sc.Capabilities.Drop).To(gomega.ConsistOf(corev1.Capability("ALL")))
	g.Expect(sc.SeccompProfile.Type).To(gomega.Equal(corev1.SeccompProfileTypeRuntimeDefault))
	g.Expect(c.LivenessProbe.HTTPGet.Path).To(gomega.Equal("/healthz"))
	g.Expect(c.ReadinessProbe.HTTPGet.Path).To(gomega.Equal("/readyz"))

	// The real API server accepts every rendered object.
	out, errOut, err = kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", rendered)
	if err != nil {
		t.Fatalf("kubectl apply of config/default: %v\n%s\n%s", err, out, errOut)
	}
}

// TestCredentialsRoleGrantsOnlyTheCredentialsSecret binds the Role from
// config/rbac/credentials_secret_role.yaml to a user and checks what the API
// server lets it read: the stripe-credentials Secret by get, and by list and
// watch only with the field selector the manager's cache uses.
func TestCredentialsRoleGrantsOnlyTheCredentialsSecret(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "credentials")
	objs := decodeFile(t, repo("config", "rbac", "credentials_secret_role.yaml"))
	role, ok := objs[0].(*rbacv1.Role)
	if !ok || len(objs) != 1 {
		t.Fatalf("credentials_secret_role.yaml: want one Role, got %v", objs)
	}
	role.Namespace = ns
	mustCreate(t, role)
	mustCreate(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "credentials-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "credentials-reader"}},
	})
	for _, name := range []string{"stripe-credentials", "other-secret"} {
		mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{"apiKey": "sk_test_x"}})
	}
	other := newNamespace(t, "credentials-other")
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "stripe-credentials"}})

	user, err := env.ControlPlane.AddUser(envtest.User{Name: "credentials-reader"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(user.Config(), client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	byName := client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", "stripe-credentials")}
	tests := []struct {
		name    string
		do      func() error
		allowed bool
	}{
		{"get stripe-credentials", func() error {
			return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "stripe-credentials"}, &corev1.Secret{})
		}, true},
		{"get another secret", func() error {
			return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "other-secret"}, &corev1.Secret{})
		}, false},
		{"get stripe-credentials in another namespace", func() error {
			return c.Get(ctx, client.ObjectKey{Namespace: other, Name: "stripe-credentials"}, &corev1.Secret{})
		}, false},
		{"list field-selected to stripe-credentials", func() error {
			var l corev1.SecretList
			if err := c.List(ctx, &l, client.InNamespace(ns), byName); err != nil {
				return err
			}
			if len(l.Items) != 1 {
				return fmt.Errorf("listed %d secrets, want 1", len(l.Items))
			}
			return nil
		}, true},
		{"list all secrets in the namespace", func() error {
			return c.List(ctx, &corev1.SecretList{}, client.InNamespace(ns))
		}, false},
		{"list secrets cluster-wide", func() error {
			return c.List(ctx, &corev1.SecretList{}, byName)
		}, false},
		{"update stripe-credentials", func() error {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stripe-credentials"}}
			return c.Update(ctx, s)
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			switch {
			case tc.allowed && err != nil:
				t.Errorf("want allowed, got %v", err)
			case !tc.allowed && !apierrors.IsForbidden(err):
				t.Errorf("want Forbidden, got %v", err)
			}
		})
	}
}

// TestTaxDetailsReaderGrantsOnlyGetWhereBound binds the ClusterRole from
// config/rbac/tax_details_reader_role.yaml with a RoleBinding in one
// namespace, as a tenant does for spec.taxDetailsFrom, and checks that it
// allows a get of a Secret there and nothing else: no list, no watch, no
// other namespace, no write.
func TestTaxDetailsReaderGrantsOnlyGetWhereBound(t *testing.T) {
	ctx := context.Background()
	objs := decodeFile(t, repo("config", "rbac", "tax_details_reader_role.yaml"))
	role, ok := objs[0].(*rbacv1.ClusterRole)
	if !ok || len(objs) != 1 {
		t.Fatalf("tax_details_reader_role.yaml: want one ClusterRole, got %v", objs)
	}
	role.Name = "tax-details-reader-" + strings.ToLower(t.Name())
	mustCreate(t, role)
	ns := newNamespace(t, "tax-details")
	other := newNamespace(t, "tax-details-other")
	mustCreate(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tax-details"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "tax-details-reader"}},
	})
	for _, n := range []string{ns, other} {
		mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: "acme-tax"}, StringData: map[string]string{"address": "country: DE"}})
	}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "tax-details-reader"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(user.Config(), client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		do      func() error
		allowed bool
	}{
		{"get in the bound namespace", func() error {
			return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-tax"}, &corev1.Secret{})
		}, true},
		{"get in another namespace", func() error {
			return c.Get(ctx, client.ObjectKey{Namespace: other, Name: "acme-tax"}, &corev1.Secret{})
		}, false},
		{"list in the bound namespace", func() error {
			return c.List(ctx, &corev1.SecretList{}, client.InNamespace(ns))
		}, false},
		{"update in the bound namespace", func() error {
			return c.Update(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-tax"}})
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			switch {
			case tc.allowed && err != nil:
				t.Errorf("want allowed, got %v", err)
			case !tc.allowed && !apierrors.IsForbidden(err):
				t.Errorf("want Forbidden, got %v", err)
			}
		})
	}
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// cardRule is the CEL guard against card numbers in free text.
const cardRule = `matches('(?:[0-9][ -]?){12,18}[0-9]')`

// TestEveryFreeTextFieldRefusesCardNumbers walks every CRD's spec schema:
// each string field is either closed (an enum or a pattern) or carries the
// card-number rule, and each string map checks its keys and values. A field
// added later without the guard fails here.
func TestEveryFreeTextFieldRefusesCardNumbers(t *testing.T) {
	files, err := filepath.Glob(repo("config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Spec struct {
				Versions []struct {
					Name   string `json:"name"`
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatal(err)
		}
		for _, v := range crd.Spec.Versions {
			props, _ := v.Schema.OpenAPIV3Schema["properties"].(map[string]any)
			spec, ok := props["spec"].(map[string]any)
			if !ok {
				continue
			}
			checkCardGuard(t, filepath.Base(f)+" spec", spec, false)
		}
	}
}

func hasCardRule(schema map[string]any) bool {
	rules, _ := schema["x-kubernetes-validations"].([]any)
	for _, r := range rules {
		if m, ok := r.(map[string]any); ok && strings.Contains(fmt.Sprint(m["rule"]), cardRule) {
			return true
		}
	}
	return false
}

// checkCardGuard checks schema at path; guarded is true when an enclosing
// map's rule already checks this value.
func checkCardGuard(t *testing.T, path string, schema map[string]any, guarded bool) {
	t.Helper()
	switch schema["type"] {
	case "string":
		_, enum := schema["enum"]
		_, pattern := schema["pattern"]
		_, format := schema["format"]
		if !enum && !pattern && !format && !guarded && !hasCardRule(schema) {
			t.Errorf("%s is free text without the card-number rule", path)
		}
	case "object":
		// A rule on the object with fieldPath .name guards field name.
		guardedByParent := map[string]bool{}
		rules, _ := schema["x-kubernetes-validations"].([]any)
		for _, r := range rules {
			if m, ok := r.(map[string]any); ok && strings.Contains(fmt.Sprint(m["rule"]), cardRule) {
				if fp, ok := m["fieldPath"].(string); ok {
					guardedByParent[strings.TrimPrefix(fp, ".")] = true
				}
			}
		}
		if ap, ok := schema["additionalProperties"].(map[string]any); ok {
			if ap["type"] == "string" && !hasCardRule(schema) {
				t.Errorf("%s is a string map without the card-number rule over its keys and values", path)
			}
			checkCardGuard(t, path+"[*]", ap, hasCardRule(schema))
		}
		props, _ := schema["properties"].(map[string]any)
		for name, p := range props {
			if m, ok := p.(map[string]any); ok {
				checkCardGuard(t, path+"."+name, m, guardedByParent[name])
			}
		}
	case "array":
		if items, ok := schema["items"].(map[string]any); ok {
			checkCardGuard(t, path+"[]", items, false)
		}
	}
}
