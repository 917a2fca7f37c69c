// Package gitops evaluates the health that GitOps tools report for the
// operator's resources: Argo CD, through the health.lua scripts shipped in
// config/argocd/resource_customizations (run in the same Lua VM and with the
// same libraries as Argo CD runs an argocd-cm customization), and Flux,
// through kstatus.
package gitops

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// CustomizationsDir is the Argo CD resource_customizations tree, relative to
// the repository root.
const CustomizationsDir = "config/argocd/resource_customizations"

// Argo CD health status codes.
const (
	Healthy     = "Healthy"
	Progressing = "Progressing"
	Degraded    = "Degraded"
	Suspended   = "Suspended"
	Missing     = "Missing"
	Unknown     = "Unknown"
)

// Health is what a health.lua returns.
type Health struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// KindDir is the directory of one kind's health check, in Argo CD's
// resource_customizations/<group>/<kind> layout, under root.
func KindDir(root, kind string) string {
	return filepath.Join(root, CustomizationsDir, billingv1alpha1.GroupVersion.Group, kind)
}

// ScriptTemplate is the one source of every kind's health.lua, relative to
// the repository root. Argo CD wants a script per kind; RenderScript makes
// them, and a test keeps the shipped files equal to what it renders.
const ScriptTemplate = "config/argocd/health.lua.tmpl"

// RenderScript renders kind's health.lua from ScriptTemplate. A subscription
// adds Suspended (paused in Stripe, or payment collection paused as
// declared); every other kind's script is the common one.
func RenderScript(root, kind string) ([]byte, error) {
	t, err := template.ParseFiles(filepath.Join(root, ScriptTemplate))
	if err != nil {
		return nil, fmt.Errorf("reading the health check template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, struct{ Suspended bool }{Suspended: kind == "StripeSubscription"}); err != nil {
		return nil, fmt.Errorf("rendering the health check of %s: %w", kind, err)
	}
	return b.Bytes(), nil
}

// LoadScript reads the health.lua of kind.
func LoadScript(root, kind string) (string, error) {
	b, err := os.ReadFile(filepath.Join(KindDir(root, kind), "health.lua"))
	if err != nil {
		return "", fmt.Errorf("reading the Argo CD health check of %s: %w", kind, err)
	}
	return string(b), nil
}

// ArgoHealth runs a health.lua against obj the way Argo CD runs a health
// customization from argocd-cm: gopher-lua without the standard libraries
// except package, base and table, obj as a global converted like Argo CD's
// decodeValue, a one-second limit, and the returned table's status checked
// against Argo CD's status codes.
func ArgoHealth(script string, obj map[string]any) (Health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.fn), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return Health{}, fmt.Errorf("opening Lua library %s: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return Health{}, fmt.Errorf("running health.lua: %w", err)
	}
	ret := l.Get(-1)
	tbl, ok := ret.(*lua.LTable)
	if !ok {
		return Health{}, fmt.Errorf("health.lua returned %s, not a table", ret.Type())
	}
	h := Health{}
	if s, ok := tbl.RawGetString("status").(lua.LString); ok {
		h.Status = string(s)
	}
	if m, ok := tbl.RawGetString("message").(lua.LString); ok {
		h.Message = string(m)
	}
	switch h.Status {
	case Healthy, Progressing, Degraded, Suspended, Missing, Unknown:
	default:
		return Health{}, fmt.Errorf("health.lua returned status %q, which Argo CD turns into Unknown", h.Status)
	}
	return h, nil
}

// decodeValue converts an unstructured value into Lua as Argo CD does.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for k, item := range v {
			tbl.RawSetH(lua.LString(k), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// KStatus computes the kstatus status (InProgress, Current, Failed,
// Terminating) Flux and kubectl-based tools read.
func KStatus(obj map[string]any) (status.Status, string, error) {
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		return "", "", fmt.Errorf("computing kstatus: %w", err)
	}
	return res.Status, res.Message, nil
}

// HealthTest is one case of Argo CD's health_test.yaml.
type HealthTest struct {
	HealthStatus Health `json:"healthStatus"`
	InputPath    string `json:"inputPath"`
}

// HealthTests is Argo CD's health_test.yaml.
type HealthTests struct {
	Tests []HealthTest `json:"tests"`
}

// LoadHealthTests reads kind's health_test.yaml.
func LoadHealthTests(root, kind string) (HealthTests, error) {
	var ht HealthTests
	b, err := os.ReadFile(filepath.Join(KindDir(root, kind), "health_test.yaml"))
	if err != nil {
		return ht, fmt.Errorf("reading health_test.yaml of %s: %w", kind, err)
	}
	if err := yaml.UnmarshalStrict(b, &ht); err != nil {
		return ht, fmt.Errorf("parsing health_test.yaml of %s: %w", kind, err)
	}
	return ht, nil
}
