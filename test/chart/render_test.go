// Package chart_test proves the Helm chart in charts/stripe-operator: it
// lints through Helm's SDK, renders, applies to a real API server
// (envtest), grants exactly the RBAC that config/default grants, and its
// ValidatingAdmissionPolicy (like config/policy's) confines the webhook
// server's service account to event-ID annotations and status.
package chart_test

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

const (
	releaseName = "stripe-operator"
	releaseNS   = "stripe-operator-system"
)

func chartDir() string { return filepath.Join(testenv.RepoRoot(), "charts", "stripe-operator") }

// render renders the chart with Helm's SDK as `helm template` does.
func render(t *testing.T, namespace string, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	ch, err := loader.Load(chartDir())
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	install := action.NewInstall(&action.Configuration{})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.IncludeCRDs = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.KubeVersion = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
	rel, err := install.Run(ch, values)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	return decode(t, rel.Manifest)
}

func decode(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewBufferString(manifest), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := d.Decode(&u.Object); err != nil {
			if err == io.EOF {
				break
			}
			t.Fatalf("decoding rendered manifests: %v", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		objs = append(objs, u)
	}
	return objs
}

// kustomizeDefault builds config/default as `kubectl kustomize` does.
func kustomizeDefault(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(testenv.RepoRoot(), "config", "default"))
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, string(out))
}

func kinds(objs []*unstructured.Unstructured) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		m[o.GetKind()]++
	}
	return m
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// rbacSummary reduces every Role, ClusterRole and binding to comparable
// lines: "<kind> <namespace>/<name>: <apiGroup> <resource> <resourceName>
// <verb>" for each expanded rule, and the subjects of each binding.
func rbacSummary(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	var lines []string
	for _, o := range objs {
		id := fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
		switch o.GetKind() {
		case "Role", "ClusterRole":
			rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
			for _, r := range rules {
				rm := r.(map[string]any)
				strs := func(k string) []string {
					v, _, _ := unstructured.NestedStringSlice(rm, k)
					if len(v) == 0 {
						return []string{"-"}
					}
					return v
				}
				for _, g := range strs("apiGroups") {
					for _, res := range strs("resources") {
						for _, rn := range strs("resourceNames") {
							for _, u := range strs("nonResourceURLs") {
								for _, v := range strs("verbs") {
									lines = append(lines, fmt.Sprintf("%s: group=%s resource=%s name=%s url=%s verb=%s", id, g, res, rn, u, v))
								}
							}
						}
					}
				}
			}
		case "RoleBinding", "ClusterRoleBinding":
			ref, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			for _, s := range subjects {
				sm := s.(map[string]any)
				lines = append(lines, fmt.Sprintf("%s: role=%s subject=%s %s/%s", id, ref, sm["kind"], sm["namespace"], sm["name"]))
			}
		}
	}
	sort.Strings(lines)
	return lines
}

func TestChartRBACMatchesKustomize(t *testing.T) {
	chart := rbacSummary(t, render(t, releaseNS, nil))
	kust := rbacSummary(t, kustomizeDefault(t))
	if strings.Join(chart, "\n") != strings.Join(kust, "\n") {
		only := func(a, b []string) []string {
			in := map[string]bool{}
			for _, x := range b {
				in[x] = true
			}
			var d []string
			for _, x := range a {
				if !in[x] {
					d = append(d, x)
				}
			}
			return d
		}
		t.Errorf("the chart and config/default grant different RBAC.\nonly in the chart:\n  %s\nonly in config/default:\n  %s",
			strings.Join(only(chart, kust), "\n  "), strings.Join(only(kust, chart), "\n  "))
	}
	if len(chart) < 20 {
		t.Errorf("suspiciously little RBAC rendered: %v", chart)
	}
}

func TestChartRendersEveryOptionalPart(t *testing.T) {
	base := kinds(render(t, releaseNS, nil))
	// One CRD per file the chart ships (make chart-files), not a count kept
	// by hand: a new kind adds one.
	crds, err := filepath.Glob(filepath.Join(chartDir(), "files", "crds", "*.yaml"))
	if err != nil || len(crds) == 0 {
		t.Fatalf("listing the chart's CRDs: %v (%d files)", err, len(crds))
	}
	for kind, n := range map[string]int{"CustomResourceDefinition": len(crds), "Deployment": 2, "Service": 2, "PodDisruptionBudget": 1,
		"ValidatingAdmissionPolicy": 1, "ValidatingAdmissionPolicyBinding": 1} {
		if base[kind] != n {
			t.Errorf("default render has %d %s, want %d (all: %v)", base[kind], kind, n, base)
		}
	}
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "ConfigMap"} {
		if base[kind] != 0 {
			t.Errorf("%s rendered by default", kind)
		}
	}
	all := render(t, releaseNS, map[string]any{
		"metrics":       map[string]any{"serviceMonitor": map[string]any{"enabled": true}, "prometheusRule": map[string]any{"enabled": true}, "dashboard": map[string]any{"enabled": true}},
		"networkPolicy": map[string]any{"enabled": true},
	})
	k := kinds(all)
	for kind, n := range map[string]int{"ServiceMonitor": 1, "PrometheusRule": 1, "NetworkPolicy": 2, "ConfigMap": 1} {
		if k[kind] != n {
			t.Errorf("render with everything enabled has %d %s, want %d", k[kind], kind, n)
		}
	}
	rule := find(all, "PrometheusRule", releaseName)
	if groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups"); len(groups) == 0 {
		t.Errorf("PrometheusRule without groups")
	}

	// Without the separate webhook server, the manager serves webhooks
	// and holds the webhook server's role.
	inproc := render(t, releaseNS, map[string]any{"webhookServer": map[string]any{"enabled": false}})
	if kinds(inproc)["Deployment"] != 1 || kinds(inproc)["ValidatingAdmissionPolicy"] != 0 {
		t.Errorf("in-process render: %v", kinds(inproc))
	}
	dep := find(inproc, "Deployment", releaseName+"-controller-manager")
	args, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if !strings.Contains(fmt.Sprint(args), "--webhook-bind-address=:8090") {
		t.Errorf("in-process manager args: %v", args)
	}
}

func TestChartValuesReachTheDeployments(t *testing.T) {
	objs := render(t, "billing", map[string]any{
		"fullnameOverride": "acme-billing",
		"image":            map[string]any{"repository": "registry.example/stripe-operator", "tag": "v1.2.3"},
		"credentials":      map[string]any{"secretName": "acme-stripe"},
		"operator":         map[string]any{"resyncPeriod": "5m", "stripeRateLimit": 15, "instanceName": "acme", "auditPeriod": "30m"},
		"manager":          map[string]any{"extraArgs": []any{"--zap-devel"}},
		"webhookServer":    map[string]any{"replicas": 3},
	})
	mgr := find(objs, "Deployment", "acme-billing-controller-manager")
	wh := find(objs, "Deployment", "acme-billing-webhook-server")
	if mgr == nil || wh == nil {
		t.Fatalf("deployments not found: %v", kinds(objs))
	}
	mgrS := fmt.Sprint(mgr.Object)
	for _, want := range []string{"registry.example/stripe-operator:v1.2.3", "--credentials-secret-name=acme-stripe", "--resync-period=5m",
		"--stripe-rate-limit=15", "--instance-name=acme", "--audit-period=30m", "--max-charge-attempts=3", "--zap-devel", "--leader-elect", "--webhook-bind-address=0", "readOnlyRootFilesystem:true", "namespace:billing"} {
		if !strings.Contains(mgrS, want) {
			t.Errorf("manager Deployment lacks %q", want)
		}
	}
	if r, _, _ := unstructured.NestedFieldNoCopy(wh.Object, "spec", "replicas"); fmt.Sprint(r) != "3" {
		t.Errorf("webhook replicas %v", r)
	}
	role := find(objs, "Role", "acme-billing-credentials-reader")
	if role == nil || !strings.Contains(fmt.Sprint(role.Object), "acme-stripe") {
		t.Errorf("credentials Role does not name the Secret: %v", role)
	}
	vap := find(objs, "ValidatingAdmissionPolicy", "acme-billing-webhook-server-scope")
	if vap == nil || !strings.Contains(fmt.Sprint(vap.Object), "system:serviceaccount:billing:acme-billing-webhook-server") {
		t.Errorf("the policy does not match the webhook server's service account: %v", vap)
	}
}

// TestChartShipsTheGoRuntimeSettingsOfConfigManager checks that the chart
// gives the manager the same Go runtime environment (GOGC, GOMEMLIMIT from
// the memory limit) as config/manager, which the RSS benchmark
// (test/memory) runs the manager with.
func TestChartShipsTheGoRuntimeSettingsOfConfigManager(t *testing.T) {
	goEnv := func(objs []*unstructured.Unstructured, name string) []string {
		t.Helper()
		d := find(objs, "Deployment", name)
		if d == nil {
			t.Fatalf("Deployment %s not found: %v", name, kinds(objs))
		}
		cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		var out []string
		for _, c := range cs {
			c := c.(map[string]any)
			if c["name"] != "manager" {
				continue
			}
			env, _, _ := unstructured.NestedSlice(c, "env")
			for _, e := range env {
				e := e.(map[string]any)
				if n := fmt.Sprint(e["name"]); strings.HasPrefix(n, "GO") {
					out = append(out, fmt.Sprintf("%s=%v%v", n, e["value"], e["valueFrom"]))
				}
			}
		}
		sort.Strings(out)
		return out
	}
	chart := goEnv(render(t, releaseNS, nil), releaseName+"-controller-manager")
	kustomize := goEnv(kustomizeDefault(t), "stripe-operator-controller-manager")
	if len(chart) == 0 || strings.Join(chart, "\n") != strings.Join(kustomize, "\n") {
		t.Errorf("the manager's Go runtime environment differs:\nchart:     %v\nkustomize: %v", chart, kustomize)
	}
}
