package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// The billing-scenario set: controllers/testdata/billing/*.yaml, each a
// scenario of manifests, Stripe-side actions and the conditions expected
// after each step (the format is described in
// controllers/testdata/billing/README.md). TestBillingScenarios runs them
// all against envtest and the test-mode Stripe and prints a results table:
// per scenario, how often BillingDrift flagged drift that was there (true
// flags), flagged drift that was not (false flags) and missed drift that
// was there (missed). Every scenario must end with 0 false and 0 missed.
//
// Other files extend the format by adding entries to scenarioActions (a
// new Stripe-side or Kubernetes action), scenarioKinds (a new subject
// kind) and scenarioRefs (a new ${kind:name} reference) in an init func.

// scenario is one file of the set.
type scenario struct {
	// Name is a short title; the file name is the test name.
	Name string `json:"name"`
	// Description says what the scenario checks and why.
	Description string `json:"description,omitempty"`
	// Issue is the issue that added it.
	Issue int `json:"issue,omitempty"`
	// Tags group scenarios in the results table (price shapes, discounts,
	// tax...).
	Tags []string `json:"tags,omitempty"`
	// Subject is the resource whose drift flags are counted, "Kind/name"
	// (default StripeSubscription/sub).
	Subject string `json:"subject,omitempty"`
	// Webhooks runs the webhook server and delivers Stripe events to it.
	Webhooks bool `json:"webhooks,omitempty"`
	// Setup are actions run before the manifests are applied (Stripe-side
	// objects made outside the operator, such as a price pinned by
	// priceID).
	Setup []scenarioAction `json:"setup,omitempty"`
	// Manifests are applied, in order, in the scenario's own namespace
	// before the first step. ${kind:name} references are resolved first.
	Manifests string `json:"manifests"`
	// Steps run in order.
	Steps []scenarioStep `json:"steps"`
}

// scenarioStep is what happens, whether it is drift, and what must follow.
type scenarioStep struct {
	Name string `json:"name"`
	// Actions run in order (each an object with exactly one key, the action
	// name; see scenarioActions).
	Actions []scenarioAction `json:"actions,omitempty"`
	// Drift is the ground truth: after this step's actions, Stripe bills or
	// holds something other than the declaration (drift the operator must
	// flag: BillingDrift True, or a DriftCorrected correction).
	Drift bool `json:"drift"`
	// Expect are the resources' expected state at the end of the step.
	Expect []scenarioExpect `json:"expect,omitempty"`
}

// applies reports whether the step changes resources (apply or delete).
func (st *scenarioStep) applies() bool {
	for _, a := range st.Actions {
		for name := range a {
			if name == "apply" || name == "delete" {
				return true
			}
		}
	}
	return false
}

// scenarioAction is {name: argument}.
type scenarioAction map[string]json.RawMessage

// scenarioExpect is the expected state of one resource.
type scenarioExpect struct {
	// Resource is "Kind/name".
	Resource string `json:"resource"`
	// Conditions must all hold (for the current generation).
	Conditions []scenarioCondition `json:"conditions,omitempty"`
	// Fields maps a dotted path (status.expectedAmount.amount) to its value
	// rendered as text; "" means absent.
	Fields map[string]string `json:"fields,omitempty"`
}

// scenarioCondition is an expected condition; empty fields are not checked.
type scenarioCondition struct {
	Type   string `json:"type"`
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
	// MessageContains are substrings of the message.
	MessageContains []string `json:"messageContains,omitempty"`
	// MessageExcludes are substrings the message must not contain.
	MessageExcludes []string `json:"messageExcludes,omitempty"`
}

// scenarioKind is how the runner judges a subject kind.
type scenarioKind struct {
	// what is the word the core's DriftCorrected Event uses ("Stripe
	// subscription differed from the spec and was corrected").
	what string
	// reads are the fake's routes that read the kind's Stripe object; two
	// more of them after a step's actions show a whole pass ran.
	reads []string
}

// scenarioKinds are the kinds a scenario can judge.
var scenarioKinds = map[string]scenarioKind{
	"StripeSubscription": {what: "subscription", reads: []string{"GET /v1/subscriptions/{id}", "GET /v1/subscriptions"}},
	"StripePlan":         {what: "product", reads: []string{"GET /v1/products/{id}"}},
	"StripeCustomer":     {what: "customer", reads: []string{"GET /v1/customers/{id}", "GET /v1/customers"}},
}

// scenarioActions are the actions a step can take. Each gets the
// argument's JSON (references already resolved).
var scenarioActions = map[string]func(r *scenarioRun, arg json.RawMessage) error{
	// apply: manifests (a YAML string) created, or updated in place.
	"apply": func(r *scenarioRun, arg json.RawMessage) error {
		var text string
		if err := json.Unmarshal(arg, &text); err != nil {
			return err
		}
		return r.apply(text)
	},
	// delete: "Kind/name".
	"delete": func(r *scenarioRun, arg json.RawMessage) error {
		var ref string
		if err := json.Unmarshal(arg, &ref); err != nil {
			return err
		}
		obj, err := r.object(ref)
		if err != nil {
			return err
		}
		return r.h.c.Delete(context.Background(), obj)
	},
	// advanceClock: a duration ("31d", "36h"): the test clock moves,
	// running renewals, retries and the rest on the way.
	"advanceClock": func(r *scenarioRun, arg json.RawMessage) error {
		var s string
		if err := json.Unmarshal(arg, &s); err != nil {
			return err
		}
		d, err := parseScenarioDuration(s)
		if err != nil {
			return err
		}
		r.h.fake.AdvanceClock(d)
		if r.sc.Webhooks {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return r.h.fake.FlushEvents(ctx)
		}
		return nil
	},
	// dashboardSetItemQuantity: {subscription: name, item: 1, quantity: 5},
	// a quantity edited in the Stripe Dashboard (item is the position in
	// Stripe, from 1).
	"dashboardSetItemQuantity": func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Subscription string `json:"subscription"`
			Item         int    `json:"item"`
			Quantity     int64  `json:"quantity"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		subID, itemID, err := r.stripeItem(a.Subscription, a.Item)
		if err != nil {
			return err
		}
		return r.h.fake.DashboardSetItemQuantity(subID, itemID, a.Quantity)
	},
	// dashboardSwapPrice: {subscription: name, item: 1, price: price_...},
	// an item moved to another price in the Dashboard (use ${plan:name} or
	// ${price:key} for the price).
	"dashboardSwapPrice": func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Subscription string `json:"subscription"`
			Item         int    `json:"item"`
			Price        string `json:"price"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		subID, itemID, err := r.stripeItem(a.Subscription, a.Item)
		if err != nil {
			return err
		}
		return r.h.fake.DashboardSwapItemPrice(subID, itemID, a.Price)
	},
	// setDefaultPaymentMethod: {customer: name, paymentMethod: pm_card_...},
	// the customer's card changed in the Dashboard.
	"setDefaultPaymentMethod": func(r *scenarioRun, arg json.RawMessage) error {
		var a struct {
			Customer      string `json:"customer"`
			PaymentMethod string `json:"paymentMethod"`
		}
		if err := strictJSON(arg, &a); err != nil {
			return err
		}
		var c billingv1alpha1.StripeCustomer
		if err := r.h.c.Get(context.Background(), client.ObjectKey{Namespace: r.h.ns, Name: a.Customer}, &c); err != nil {
			return err
		}
		_, err := r.h.fake.DashboardSetDefaultPaymentMethod(c.Status.CustomerID, a.PaymentMethod)
		return err
	},
	// waitFor: {resource: Kind/name, conditions: [...], fields: {...}}, an
	// expectation that must hold before the next action runs.
	"waitFor": func(r *scenarioRun, arg json.RawMessage) error {
		var e scenarioExpect
		if err := strictJSON(arg, &e); err != nil {
			return err
		}
		return r.waitExpect(e)
	},
}

// scenarioRefs resolve ${kind:name} in manifests and action arguments.
var scenarioRefs = map[string]func(r *scenarioRun, name string) (string, error){
	// ${plan:name}: the StripePlan's current price (status.priceID).
	"plan": func(r *scenarioRun, name string) (string, error) {
		return r.statusField("StripePlan/"+name, "status", "priceID")
	},
	// ${product:name}: the StripePlan's product (status.productID).
	"product": func(r *scenarioRun, name string) (string, error) {
		return r.statusField("StripePlan/"+name, "status", "productID")
	},
	// ${subscription:name}: the StripeSubscription's Stripe ID.
	"subscription": func(r *scenarioRun, name string) (string, error) {
		return r.statusField("StripeSubscription/"+name, "status", "subscriptionID")
	},
	// ${customer:name}: the StripeCustomer's Stripe ID.
	"customer": func(r *scenarioRun, name string) (string, error) {
		return r.statusField("StripeCustomer/"+name, "status", "customerID")
	},
	// ${var:name}: a value an action stored (such as a price it created).
	"var": func(r *scenarioRun, name string) (string, error) {
		v, ok := r.vars[name]
		if !ok {
			return "", fmt.Errorf("no variable %q", name)
		}
		return v, nil
	},
}

// scenarioResult is one row of the results table.
type scenarioResult struct {
	file, name, tags                                 string
	steps, driftSteps, trueFlags, falseFlags, missed int
	failed                                           bool
}

// scenarioRun is one scenario being run.
type scenarioRun struct {
	t    *testing.T
	h    *harness
	sc   *scenario
	vars map[string]string
	res  *scenarioResult
}

func TestBillingScenarios(t *testing.T) {
	dir := filepath.Join("testdata", "billing")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no scenarios in %s", dir)
	}
	sort.Strings(files)
	if f := os.Getenv("BILLING_SCENARIO"); f != "" {
		// One scenario by file name pattern, when working on it.
		var keep []string
		for _, p := range files {
			if ok, _ := filepath.Match(f, filepath.Base(p)); ok || strings.Contains(filepath.Base(p), f) {
				keep = append(keep, p)
			}
		}
		files = keep
	}
	var results []*scenarioResult
	for _, path := range files {
		sc, err := loadScenario(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		res := &scenarioResult{file: strings.TrimSuffix(filepath.Base(path), ".yaml"), name: sc.Name, tags: strings.Join(sc.Tags, ",")}
		results = append(results, res)
		t.Run(res.file, func(t *testing.T) {
			defer func() { res.failed = t.Failed() }()
			runScenario(t, sc, res)
		})
	}
	table := scenarioTable(results)
	t.Log("\n" + table)
	if out := os.Getenv("BILLING_SCENARIO_REPORT"); out != "" {
		_ = os.MkdirAll(filepath.Dir(out), 0o755)
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Errorf("writing %s: %v", out, err)
		}
	}
	for _, r := range results {
		if r.falseFlags != 0 || r.missed != 0 {
			t.Errorf("scenario %s: %d false and %d missed drift flags; every scenario must end with 0 and 0", r.file, r.falseFlags, r.missed)
		}
	}
}

// loadScenario reads and checks one scenario file.
func loadScenario(path string) (*scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sc scenario
	if err := yaml.UnmarshalStrict(data, &sc); err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	if sc.Name == "" || strings.TrimSpace(sc.Manifests) == "" || len(sc.Steps) == 0 {
		return nil, errors.New("a scenario needs a name, manifests and at least one step")
	}
	if sc.Subject == "" {
		sc.Subject = "StripeSubscription/sub"
	}
	kind, _, ok := strings.Cut(sc.Subject, "/")
	if _, known := scenarioKinds[kind]; !ok || !known {
		return nil, fmt.Errorf("subject %q: want Kind/name of a kind in scenarioKinds", sc.Subject)
	}
	for i, st := range sc.Steps {
		for _, a := range append(append([]scenarioAction(nil), sc.Setup...), st.Actions...) {
			if len(a) != 1 {
				return nil, fmt.Errorf("step %d: an action is an object with one key, got %d", i+1, len(a))
			}
			for name := range a {
				if _, ok := scenarioActions[name]; !ok {
					return nil, fmt.Errorf("step %d: unknown action %q", i+1, name)
				}
			}
		}
	}
	return &sc, nil
}

func runScenario(t *testing.T, sc *scenario, res *scenarioResult) {
	h := startHarness(t, harnessOptions{webhooks: sc.Webhooks, resync: time.Second})
	r := &scenarioRun{t: t, h: h, sc: sc, vars: map[string]string{}, res: res}
	for _, a := range sc.Setup {
		if err := r.run(a); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	text, err := r.resolve(sc.Manifests)
	if err != nil {
		t.Fatalf("manifests: %v", err)
	}
	if err := r.apply(text); err != nil {
		t.Fatalf("manifests: %v", err)
	}
	kind, _, _ := strings.Cut(sc.Subject, "/")
	sk := scenarioKinds[kind]
	for i, st := range sc.Steps {
		label := fmt.Sprintf("step %d (%s)", i+1, st.Name)
		corrections := h.countEvents(" DriftCorrected ", "Stripe "+sk.what+" differed")
		reads := r.reads(sk)
		// A step that changes a spec is judged on conditions for the new
		// generation, a positive sign in itself; one that only acts on
		// Stripe waits for reads.
		bound := r.subjectBound() && !st.applies()
		for _, a := range st.Actions {
			if err := r.run(a); err != nil {
				t.Fatalf("%s: %v", label, err)
			}
		}
		if bound {
			// A positive sign that a whole pass ran after the actions: two
			// more reads of the subject (passes of one object never
			// overlap, so the first one's status is written).
			if err := eventually(30*time.Second, func() error {
				if n := r.reads(sk); n < reads+2 {
					return fmt.Errorf("%d reads of the subject since the actions, 2 wanted", n-reads)
				}
				return nil
			}); err != nil {
				t.Errorf("%s: %v", label, err)
			}
		}
		for _, e := range st.Expect {
			if err := r.waitExpect(e); err != nil {
				t.Errorf("%s: %v", label, err)
			}
		}
		flagged, how := r.flagged(sk, corrections)
		res.steps++
		switch {
		case st.Drift && flagged:
			res.driftSteps++
			res.trueFlags++
		case st.Drift:
			res.driftSteps++
			res.missed++
			t.Errorf("%s: drift missed: BillingDrift did not flag it and nothing was corrected", label)
		case flagged:
			res.falseFlags++
			t.Errorf("%s: false drift flag: %s", label, how)
		}
	}
}

// run runs one action.
func (r *scenarioRun) run(a scenarioAction) error {
	for name, arg := range a {
		resolved, err := r.resolve(string(arg))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := scenarioActions[name](r, json.RawMessage(resolved)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

var scenarioRefRE = regexp.MustCompile(`\$\{([a-zA-Z]+):([^}]+)\}`)

// resolve replaces ${kind:name} references, waiting (briefly) for a
// reference that is not there yet, such as a plan's price.
func (r *scenarioRun) resolve(s string) (string, error) {
	var firstErr error
	out := scenarioRefRE.ReplaceAllStringFunc(s, func(m string) string {
		parts := scenarioRefRE.FindStringSubmatch(m)
		f, ok := scenarioRefs[parts[1]]
		if !ok {
			firstErr = fmt.Errorf("unknown reference kind in %s", m)
			return m
		}
		var v string
		err := eventually(30*time.Second, func() error {
			var err error
			v, err = f(r, parts[2])
			if err == nil && v == "" {
				err = fmt.Errorf("%s is not set yet", m)
			}
			return err
		})
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	})
	return out, firstErr
}

// apply creates each object of a multi-document manifest in the scenario's
// namespace, or replaces the spec (and labels and annotations) of one that
// exists.
func (r *scenarioRun) apply(text string) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(text), 4096)
	ctx := context.Background()
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(m) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: m}
		obj.SetNamespace(r.h.ns)
		existing := &unstructured.Unstructured{}
		existing.SetGroupVersionKind(obj.GroupVersionKind())
		err := r.h.c.Get(ctx, client.ObjectKeyFromObject(obj), existing)
		switch {
		case apierrors.IsNotFound(err):
			if err := r.h.c.Create(ctx, obj); err != nil {
				return fmt.Errorf("creating %s/%s: %w", obj.GetKind(), obj.GetName(), err)
			}
		case err != nil:
			return err
		default:
			if err := eventually(10*time.Second, func() error {
				if err := r.h.c.Get(ctx, client.ObjectKeyFromObject(obj), existing); err != nil {
					return err
				}
				existing.Object["spec"] = obj.Object["spec"]
				if l := obj.GetLabels(); l != nil {
					existing.SetLabels(l)
				}
				if a := obj.GetAnnotations(); a != nil {
					ann := existing.GetAnnotations()
					if ann == nil {
						ann = map[string]string{}
					}
					for k, v := range a {
						ann[k] = v
					}
					existing.SetAnnotations(ann)
				}
				return r.h.c.Update(ctx, existing)
			}); err != nil {
				return fmt.Errorf("updating %s/%s: %w", obj.GetKind(), obj.GetName(), err)
			}
		}
	}
}

// object reads "Kind/name" of the billing group.
func (r *scenarioRun) object(ref string) (*unstructured.Unstructured, error) {
	kind, name, ok := strings.Cut(ref, "/")
	if !ok {
		return nil, fmt.Errorf("%q is not Kind/name", ref)
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(schema.GroupVersionKind{Group: billingv1alpha1.GroupVersion.Group, Version: billingv1alpha1.GroupVersion.Version, Kind: kind})
	err := r.h.c.Get(context.Background(), client.ObjectKey{Namespace: r.h.ns, Name: name}, obj)
	return obj, err
}

func (r *scenarioRun) statusField(ref string, path ...string) (string, error) {
	obj, err := r.object(ref)
	if err != nil {
		return "", err
	}
	v, _, err := unstructured.NestedString(obj.Object, path...)
	return v, err
}

// stripeItem returns the Stripe subscription ID of a StripeSubscription and
// the ID of its item at position n (from 1) in Stripe.
func (r *scenarioRun) stripeItem(name string, n int) (string, string, error) {
	subID, err := r.statusField("StripeSubscription/"+name, "status", "subscriptionID")
	if err != nil || subID == "" {
		return "", "", fmt.Errorf("StripeSubscription %s has no Stripe subscription (%v)", name, err)
	}
	snap, ok := r.h.fake.Subscription(subID)
	if !ok || n < 1 || n > len(snap.Items) {
		return "", "", fmt.Errorf("subscription %s has no item %d", subID, n)
	}
	return subID, snap.Items[n-1].ID, nil
}

// subjectBound reports whether the subject has its Stripe object.
func (r *scenarioRun) subjectBound() bool {
	obj, err := r.object(r.sc.Subject)
	if err != nil {
		return false
	}
	st, _, _ := unstructured.NestedMap(obj.Object, "status")
	for k, v := range st {
		if strings.HasSuffix(k, "ID") && k != "customerID" && v != "" {
			return true
		}
	}
	return false
}

func (r *scenarioRun) reads(k scenarioKind) int {
	st := r.h.fake.Stats()
	n := 0
	for _, route := range k.reads {
		n += st.Requests[route]
	}
	return n
}

// flagged reports whether the subject flags drift at the end of a step:
// BillingDrift True, Ready False for drift (Observe mode), or a
// DriftCorrected correction during the step.
func (r *scenarioRun) flagged(k scenarioKind, correctionsBefore int) (bool, string) {
	if n := r.h.countEvents(" DriftCorrected ", "Stripe "+k.what+" differed"); n > correctionsBefore {
		return true, "a DriftCorrected Event"
	}
	obj, err := r.object(r.sc.Subject)
	if err != nil {
		return false, ""
	}
	for _, c := range objConditions(obj) {
		if c.Type == billingv1alpha1.ConditionBillingDrift && c.Status == "True" {
			return true, "BillingDrift True: " + c.Message
		}
		if c.Type == billingv1alpha1.ConditionReady && c.Status == "False" && c.Reason == billingv1alpha1.ReasonDrifted {
			return true, "Ready False (Drifted): " + c.Message
		}
	}
	return false, ""
}

type scenarioObservedCondition struct {
	Type, Status, Reason, Message string
	ObservedGeneration            int64
}

func objConditions(obj *unstructured.Unstructured) []scenarioObservedCondition {
	list, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	var out []scenarioObservedCondition
	for _, x := range list {
		m, _ := x.(map[string]any)
		c := scenarioObservedCondition{}
		c.Type, _ = m["type"].(string)
		c.Status, _ = m["status"].(string)
		c.Reason, _ = m["reason"].(string)
		c.Message, _ = m["message"].(string)
		switch g := m["observedGeneration"].(type) {
		case int64:
			c.ObservedGeneration = g
		case float64:
			c.ObservedGeneration = int64(g)
		}
		out = append(out, c)
	}
	return out
}

// waitExpect waits until e holds.
func (r *scenarioRun) waitExpect(e scenarioExpect) error {
	var last string
	err := eventually(45*time.Second, func() error {
		obj, err := r.object(e.Resource)
		if err != nil {
			return err
		}
		last = ""
		var problems []string
		conds := objConditions(obj)
		for _, want := range e.Conditions {
			var have *scenarioObservedCondition
			for i := range conds {
				if conds[i].Type == want.Type {
					have = &conds[i]
				}
			}
			switch {
			case have == nil && (want.Status == "" || want.Status == "Absent"):
				if want.Status == "" {
					problems = append(problems, want.Type+" absent")
				}
				continue
			case have == nil:
				problems = append(problems, want.Type+" absent")
				continue
			case want.Status == "Absent":
				problems = append(problems, fmt.Sprintf("%s present (%s)", want.Type, have.Status))
				continue
			}
			if have.ObservedGeneration != obj.GetGeneration() {
				problems = append(problems, fmt.Sprintf("%s is for generation %d, not %d", want.Type, have.ObservedGeneration, obj.GetGeneration()))
			}
			if want.Status != "" && have.Status != want.Status {
				problems = append(problems, fmt.Sprintf("%s is %s, %s wanted", want.Type, have.Status, want.Status))
			}
			if want.Reason != "" && have.Reason != want.Reason {
				problems = append(problems, fmt.Sprintf("%s reason is %s, %s wanted", want.Type, have.Reason, want.Reason))
			}
			for _, s := range want.MessageContains {
				if !strings.Contains(have.Message, s) {
					problems = append(problems, fmt.Sprintf("%s message lacks %q", want.Type, s))
				}
			}
			for _, s := range want.MessageExcludes {
				if strings.Contains(have.Message, s) {
					problems = append(problems, fmt.Sprintf("%s message has %q", want.Type, s))
				}
			}
			last += fmt.Sprintf("%s=%s/%s %q; ", have.Type, have.Status, have.Reason, have.Message)
		}
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			have := fieldText(obj.Object, strings.Split(k, "."))
			want, err := r.resolve(e.Fields[k])
			if err != nil {
				return err
			}
			if have != want {
				problems = append(problems, fmt.Sprintf("%s is %q, %q wanted", k, have, want))
			}
		}
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "; "))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w (last seen: %s)", e.Resource, err, last)
	}
	return nil
}

// fieldText renders the value at a dotted path ("" when absent); a path
// element may index a list (items.0.quantity).
func fieldText(obj any, path []string) string {
	cur := obj
	for _, p := range path {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(c) {
				return ""
			}
			cur = c[i]
		default:
			return ""
		}
	}
	switch v := cur.(type) {
	case nil:
		return ""
	case string:
		return v
	case map[string]any, []any:
		b, _ := json.Marshal(v)
		return string(b)
	default:
		return fmt.Sprint(v)
	}
}

// parseScenarioDuration is time.ParseDuration plus whole days ("31d").
func parseScenarioDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// eventually retries f every 100ms until it succeeds or d passed.
func eventually(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scenarioTable renders the results table.
func scenarioTable(results []*scenarioResult) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SCENARIO\tTAGS\tSTEPS\tDRIFT STEPS\tTRUE FLAGS\tFALSE FLAGS\tMISSED\tRESULT")
	var tot scenarioResult
	for _, r := range results {
		result := "ok"
		if r.failed {
			result = "FAIL"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.file, r.tags, r.steps, r.driftSteps, r.trueFlags, r.falseFlags, r.missed, result)
		tot.steps += r.steps
		tot.driftSteps += r.driftSteps
		tot.trueFlags += r.trueFlags
		tot.falseFlags += r.falseFlags
		tot.missed += r.missed
	}
	fmt.Fprintf(w, "TOTAL (%d scenarios)\t\t%d\t%d\t%d\t%d\t%d\t\n", len(results), tot.steps, tot.driftSteps, tot.trueFlags, tot.falseFlags, tot.missed)
	_ = w.Flush()
	return b.String()
}
