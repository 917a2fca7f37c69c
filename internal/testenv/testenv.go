// Package testenv starts a real kube-apiserver and etcd (envtest) with the
// project's CRDs for tests and for `make dev`. The binaries come from
// KUBEBUILDER_ASSETS or, when that is unset, from hack/envtest-assets.sh,
// which finds, downloads or builds them from source (see that script).
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// Env is a running API server with the CRDs installed.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// K8sVersion derives the Kubernetes version for the envtest binaries from
// go.mod's k8s.io/api version (v0.37.2 -> 1.37.2), as kubebuilder does.
func K8sVersion() (string, error) {
	data, err := os.ReadFile(filepath.Join(RepoRoot(), "go.mod"))
	if err != nil {
		return "", fmt.Errorf("reading go.mod: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "k8s.io/api" && strings.HasPrefix(f[1], "v0.") {
			return "1." + strings.TrimPrefix(f[1], "v0."), nil
		}
	}
	return "", fmt.Errorf("k8s.io/api not found in go.mod")
}

// AssetsDir returns the directory with kube-apiserver, etcd and kubectl.
func AssetsDir() (string, error) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, nil
	}
	ver, err := K8sVersion()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(RepoRoot(), "hack", "envtest-assets.sh"), ver)
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/envtest-assets.sh %s: %w", ver, err)
	}
	return strings.TrimSpace(out.String()), nil
}

// Start starts envtest with the generated CRDs and returns a client with the
// billing scheme registered. Call Stop when done.
func Start() (*Env, error) { return start(false) }

// StartForScale starts an API server for benchmarks with 100,000 objects:
// etcd may grow to 8 GiB (its default quota is 2 GiB) and does not fsync.
// Never for tests of durability.
func StartForScale() (*Env, error) { return start(true) }

func start(scale bool) (*Env, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	if err := billingv1alpha1.AddToScheme(scheme.Scheme); err != nil {
		return nil, err
	}
	te := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	if scale {
		te.ControlPlane.Etcd = &envtest.Etcd{}
		te.ControlPlane.Etcd.Configure().
			Set("quota-backend-bytes", strconv.FormatInt(8<<30, 10)).
			Set("unsafe-no-fsync", "true")
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		_ = te.Stop()
		return nil, err
	}
	return &Env{Environment: te, Config: cfg, Client: c}, nil
}

// KubectlPath returns the kubectl next to the envtest binaries.
func (e *Env) KubectlPath() string { return filepath.Join(e.BinaryAssetsDirectory, "kubectl") }

// WriteKubeconfig writes a kubeconfig for the env's admin user to path.
func (e *Env) WriteKubeconfig(path string) error {
	user, err := e.ControlPlane.AddUser(envtest.User{Name: "envtest-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// GVK is a helper for tests.
func GVK(kind string) schema.GroupVersionKind { return billingv1alpha1.GroupVersion.WithKind(kind) }
