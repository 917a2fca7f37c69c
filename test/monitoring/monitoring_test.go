// Package monitoring_test checks the shipped alert rules and dashboard
// against the metrics the operator registers, and the metrics table and
// runbooks of docs/operations.md against both.
package monitoring_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/webhookserver"
)

func repo(p ...string) string { return filepath.Join(append([]string{testenv.RepoRoot()}, p...)...) }

// operatorCollectors are the collectors the operator's own packages
// register in controller-runtime's registry.
func operatorCollectors() []prometheus.Collector {
	var cs []prometheus.Collector
	cs = append(cs, stripe.Collectors()...)
	cs = append(cs, webhookserver.Collectors()...)
	cs = append(cs, controllers.MetricCollectors(nil)...)
	cs = append(cs, controllers.AuditCollectors()...)
	cs = append(cs, controllers.FinanceCollectors()...)
	cs = append(cs, controllers.ChargeCollectors()...)
	return cs
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// operatorMetricNames lists the metric names the operator itself defines.
func operatorMetricNames(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range operatorCollectors() {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			seen[m[1]] = true
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// registerAll registers the operator's collectors as the running manager
// and webhook server do.
func registerAll(t *testing.T) {
	t.Helper()
	for _, c := range operatorCollectors() {
		if err := metrics.Registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				t.Fatalf("registering: %v", err)
			}
		}
	}
}

// isRegistered tells whether controller-runtime's registry (the one the
// manager serves) holds a metric of that name: registering a probe of the
// same name fails exactly then.
func isRegistered(name string) bool {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		name = strings.TrimSuffix(name, suffix)
	}
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
	if err := metrics.Registry.Register(probe); err != nil {
		return true
	}
	metrics.Registry.Unregister(probe)
	return false
}

// metricsIn returns the metric names a PromQL expression selects.
func metricsIn(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("parsing %q: %v", expr, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				t.Errorf("%q selects a series without a metric name", expr)
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

type alertRule struct{ name, expr string }

func loadRules(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile(repo("config", "prometheus", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Kind string         `json:"kind"`
		Spec map[string]any `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Kind != "PrometheusRule" {
		t.Fatalf("kind %q", pr.Kind)
	}
	spec, err := yaml.Marshal(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("rulefmt: %v", errs)
	}
	var rules []alertRule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule that is not an alert: %+v", g.Name, r)
				continue
			}
			if r.Annotations["runbook_url"] == "" || r.Labels["severity"] == "" {
				t.Errorf("alert %s needs a runbook_url annotation and a severity label", r.Alert)
			}
			rules = append(rules, alertRule{r.Alert, r.Expr})
		}
	}
	if len(rules) == 0 {
		t.Fatal("no alert rules")
	}
	return rules
}

func TestAlertRulesReferenceOnlyRegisteredMetrics(t *testing.T) {
	registerAll(t)
	for _, r := range loadRules(t) {
		for _, m := range metricsIn(t, r.expr) {
			if !isRegistered(m) {
				t.Errorf("alert %s uses %s, which the operator does not register", r.name, m)
			}
		}
	}
}

func TestDashboardQueriesReferenceOnlyRegisteredMetrics(t *testing.T) {
	registerAll(t)
	b, err := os.ReadFile(repo("config", "prometheus", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatal("dashboard without uid or panels")
	}
	grafanaVars := strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*")
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range metricsIn(t, grafanaVars.Replace(tg.Expr)) {
				if !isRegistered(m) {
					t.Errorf("panel %q uses %s, which the operator does not register", p.Title, m)
				}
			}
		}
	}
}

// operationsDoc is the page that holds the metrics table and the runbooks
// (the alert rules' runbook_url points into it).
const operationsDoc = "docs/operations.md"

// docSection returns the text of operationsDoc under the heading, up to the
// next heading of the same or a higher level.
func docSection(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile(repo(operationsDoc))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("%s has no heading %q", operationsDoc, heading)
	}
	level := strings.Index(heading, " ")
	rest := s[i+len(heading)+2:]
	for _, line := range strings.Split(rest, "\n") {
		if strings.HasPrefix(line, "#") && strings.Index(line, " ") <= level {
			return rest[:strings.Index(rest, line)]
		}
	}
	return rest
}

func TestEveryRegisteredMetricIsInTheMetricsTable(t *testing.T) {
	section := docSection(t, "## Metrics, dashboard and alerts")
	inTable := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| `([a-z_:]+)` \\|")
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		inTable[m[1]] = true
	}
	// The financial report's metrics are in its own page's table.
	fin, err := os.ReadFile(repo("docs", "financial-reporting.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, finTable, _ := strings.Cut(string(fin), "\n## Metrics and dashboard\n")
	finTable, _, _ = strings.Cut(finTable, "\n## ")
	for _, m := range row.FindAllStringSubmatch(finTable, -1) {
		inTable[m[1]] = true
	}
	for _, name := range operatorMetricNames(t) {
		if !inTable[name] {
			t.Errorf("metric %s is registered but not in the metrics table of %s", name, operationsDoc)
		}
		delete(inTable, name)
	}
	registerAll(t)
	for name := range inTable {
		if !isRegistered(name) {
			t.Errorf("the metrics table of %s lists %s, which is not registered", operationsDoc, name)
		}
	}
}

func TestEveryAlertHasARunbook(t *testing.T) {
	section := docSection(t, "## Metrics, dashboard and alerts")
	for _, r := range loadRules(t) {
		if !strings.Contains(section, "#### Runbook: "+r.name+"\n") {
			t.Errorf("alert %s has no '#### Runbook: %s' paragraph in %s", r.name, r.name, operationsDoc)
		}
	}
}

// TestUndecodableEventAlertWatchesItsSeries: StripeWebhookEventsUndecodable
// selects exactly the series the webhook server counts an undecodable event
// in (stripe_webhook_events_ignored_total{reason="undecodable_object"},
// which the server creates at start so that increase() sees the first
// one), compares with > 0 and has no "for": it fires on the first
// undecodable event. webhookserver's TestUndecodableEventIsCounted
// proves the counting.
func TestUndecodableEventAlertWatchesItsSeries(t *testing.T) {
	var expr string
	for _, r := range loadRules(t) {
		if r.name == "StripeWebhookEventsUndecodable" {
			expr = r.expr
		}
	}
	if expr == "" {
		t.Fatal("no StripeWebhookEventsUndecodable alert")
	}
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || vs.Name != "stripe_webhook_events_ignored_total" {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == "reason" && m.Matches("undecodable_object") && !m.Matches("unmanaged") {
				found = true
			}
		}
		return nil
	})
	if !found {
		t.Errorf("%q does not select the undecodable_object series alone", expr)
	}
	if !strings.Contains(strings.ReplaceAll(expr, " ", ""), ">0") {
		t.Errorf("%q does not fire on any increase", expr)
	}
	b, err := os.ReadFile(repo("config", "prometheus", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rule := string(b)[strings.Index(string(b), "alert: StripeWebhookEventsUndecodable"):]
	if next := strings.Index(rule[1:], "- alert:"); next > 0 {
		rule = rule[:next]
	}
	if strings.Contains(rule, "for:") {
		t.Errorf("StripeWebhookEventsUndecodable waits (for:) before firing:\n%s", rule)
	}
}
