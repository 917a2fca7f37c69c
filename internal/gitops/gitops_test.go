package gitops

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the health.lua scripts from their template and config/argocd/argocd-cm.yaml from the scripts")

// crdKinds lists the kinds of the generated CRDs.
func crdKinds(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("listing CRDs: %v (%d files)", err, len(files))
	}
	var kinds []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(b, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if crd.Spec.Group == billingv1alpha1.GroupVersion.Group {
			kinds = append(kinds, crd.Spec.Names.Kind)
		}
	}
	sort.Strings(kinds)
	return kinds
}

// TestArgoHealthTestsPass runs every kind's health_test.yaml as Argo CD's
// own test harness does; every CRD kind, including any added later, must
// ship a health check with tests.
func TestArgoHealthTestsPass(t *testing.T) {
	root := testenv.RepoRoot()
	for _, kind := range crdKinds(t) {
		t.Run(kind, func(t *testing.T) {
			script, err := LoadScript(root, kind)
			if err != nil {
				t.Fatalf("every kind needs an Argo CD health check: %v", err)
			}
			ht, err := LoadHealthTests(root, kind)
			if err != nil {
				t.Fatal(err)
			}
			if len(ht.Tests) == 0 {
				t.Fatal("health_test.yaml has no tests")
			}
			used := map[string]bool{}
			seen := map[string]bool{}
			for _, tc := range ht.Tests {
				used[filepath.Clean(tc.InputPath)] = true
				b, err := os.ReadFile(filepath.Join(KindDir(root, kind), tc.InputPath))
				if err != nil {
					t.Fatalf("reading %s: %v", tc.InputPath, err)
				}
				var obj map[string]any
				if err := yaml.Unmarshal(b, &obj); err != nil {
					t.Fatalf("%s: %v", tc.InputPath, err)
				}
				got, err := ArgoHealth(script, obj)
				if err != nil {
					t.Fatalf("%s: %v", tc.InputPath, err)
				}
				if got != tc.HealthStatus {
					t.Errorf("%s: health %+v, health_test.yaml expects %+v", tc.InputPath, got, tc.HealthStatus)
				}
				seen[got.Status] = true
			}
			for _, want := range []string{Progressing, Healthy} {
				if !seen[want] {
					t.Errorf("health_test.yaml has no %s case", want)
				}
			}
			data, _ := filepath.Glob(filepath.Join(KindDir(root, kind), "testdata", "*.yaml"))
			for _, f := range data {
				rel, _ := filepath.Rel(KindDir(root, kind), f)
				if !used[rel] {
					t.Errorf("%s is not used by health_test.yaml", rel)
				}
			}
		})
	}
}

// TestHealthScriptsAreRendered checks that every kind's shipped health.lua
// is what its one template renders.
func TestHealthScriptsAreRendered(t *testing.T) {
	root := testenv.RepoRoot()
	for _, kind := range crdKinds(t) {
		want, err := RenderScript(root, kind)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(KindDir(root, kind), "health.lua")
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from what %s renders: edit the template, then run go test ./internal/gitops -update", path, ScriptTemplate)
		}
	}
}

// TestArgoCDConfigMapSnippet checks that config/argocd/argocd-cm.yaml (the
// snippet docs/operations.md points to) carries exactly the shipped scripts.
func TestArgoCDConfigMapSnippet(t *testing.T) {
	root := testenv.RepoRoot()
	cm := corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "argocd-cm", Namespace: "argocd", Labels: map[string]string{"app.kubernetes.io/part-of": "argocd"}},
		Data:       map[string]string{},
	}
	for _, kind := range crdKinds(t) {
		script, err := LoadScript(root, kind)
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["resource.customizations.health."+billingv1alpha1.GroupVersion.Group+"_"+kind] = script
	}
	want, err := yaml.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}
	want = append([]byte("# Generated from resource_customizations/*/*/health.lua by\n# go test ./internal/gitops -run TestArgoCDConfigMapSnippet -update\n# Merge these keys into Argo CD's argocd-cm ConfigMap.\n"), want...)
	path := filepath.Join(root, "config", "argocd", "argocd-cm.yaml")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s is stale: run go test ./internal/gitops -run TestArgoCDConfigMapSnippet -update", path)
	}
}

// TestHealthEdgeCases covers states that the envtest-driven testdata does
// not reach on purpose: generation lag, deletion, a Ready left from an older
// generation, and a missing status.
func TestHealthEdgeCases(t *testing.T) {
	root := testenv.RepoRoot()
	script, err := LoadScript(root, "StripeSubscription")
	if err != nil {
		t.Fatal(err)
	}
	cond := func(typ, st string, gen int64, msg string) map[string]any {
		return map[string]any{"type": typ, "status": st, "observedGeneration": gen, "reason": "R", "message": msg, "lastTransitionTime": "2026-01-01T00:00:00Z"}
	}
	obj := func(gen, observed int64, conds ...map[string]any) map[string]any {
		cs := []any{}
		for _, c := range conds {
			cs = append(cs, c)
		}
		return map[string]any{
			"apiVersion": "billing.stripe-operator.io/v1alpha1", "kind": "StripeSubscription",
			"metadata": map[string]any{"name": "s", "namespace": "n", "generation": gen},
			"status":   map[string]any{"observedGeneration": observed, "conditions": cs},
		}
	}
	noStatus := map[string]any{"apiVersion": "billing.stripe-operator.io/v1alpha1", "kind": "StripeSubscription",
		"metadata": map[string]any{"name": "s", "namespace": "n", "generation": int64(1)}}
	deleting := obj(1, 1, cond("Ready", "True", 1, "ok"))
	deleting["metadata"].(map[string]any)["deletionTimestamp"] = "2026-01-01T00:00:00Z"
	cases := []struct {
		name    string
		obj     map[string]any
		argo    string
		kstatus status.Status
	}{
		{"no status at all", noStatus, Progressing, status.CurrentStatus}, // kstatus cannot tell: the CRD's status default prevents this shape
		{"defaulted status, not observed", obj(1, 0), Progressing, status.InProgressStatus},
		{"spec changed after Ready", obj(2, 1, cond("Ready", "True", 1, "ok")), Progressing, status.InProgressStatus},
		{"Ready from an older generation", obj(2, 2, cond("Ready", "True", 1, "ok")), Progressing, status.CurrentStatus},
		{"Ready", obj(2, 2, cond("Ready", "True", 2, "ok")), Healthy, status.CurrentStatus},
		{"Reconciling", obj(1, 1, cond("Reconciling", "True", 1, "busy"), cond("Ready", "False", 1, "busy")), Progressing, status.InProgressStatus},
		{"Stalled", obj(1, 1, cond("Stalled", "True", 1, "stuck"), cond("Ready", "False", 1, "stuck")), Degraded, status.FailedStatus},
		{"PaymentFailed with a retry", obj(1, 1, cond("PaymentFailed", "True", 1, "declined"), cond("Ready", "False", 1, "declined")), Degraded, status.InProgressStatus},
		{"deleting", deleting, Progressing, status.TerminatingStatus},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ArgoHealth(script, tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if h.Status != tc.argo {
				t.Errorf("Argo CD health %+v, want %s", h, tc.argo)
			}
			ks, msg, err := KStatus(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if ks != tc.kstatus {
				t.Errorf("kstatus %s (%s), want %s", ks, msg, tc.kstatus)
			}
			if strings.Contains(h.Message, "nil") {
				t.Errorf("message %q", h.Message)
			}
		})
	}
}
