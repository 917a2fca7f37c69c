package controllers

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// testEnv is the real kube-apiserver + etcd shared by the package's tests.
// It is started on first use, by the first test that needs an API server
// (newNamespace, testClient or requireEnv start it), and shared by every
// later one; each test works in its own namespace (newNamespace) and starts
// the manager and fake Stripe it needs. Code that reads testEnv directly
// (testEnv.Config) runs after one of those. Tests of pure functions never
// start it, so `go test -run TestDiffSubscription ./controllers/` runs
// without KUBEBUILDER_ASSETS or envtest binaries, and
// `go test -short ./controllers/` runs only the tests that need no API
// server (the others are skipped by requireEnv). TestMain stops envtest if
// it started.
var testEnv *testenv.Env

var (
	envOnce sync.Once
	envErr  error
)

// startEnv starts the shared envtest once; later calls return the same
// environment or the same error.
func startEnv() (*testenv.Env, error) {
	envOnce.Do(func() {
		testEnv, envErr = testenv.Start()
		if envErr != nil {
			envErr = fmt.Errorf("starting envtest (KUBEBUILDER_ASSETS=%q): %w", os.Getenv("KUBEBUILDER_ASSETS"), envErr)
		}
	})
	return testEnv, envErr
}

// requireEnv returns the shared envtest, starting it on first use; it fails
// the test if envtest cannot start, and skips it under -short.
func requireEnv(t testing.TB) *testenv.Env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs envtest (a real API server); -short runs only the tests without one")
	}
	env, err := startEnv()
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestMain(m *testing.M) {
	logf.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	code := m.Run()
	if testEnv != nil {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}
	os.Exit(code)
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "t-" + rand.String(8)}}
	if err := requireEnv(t).Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// testClient is the uncached client tests use for assertions.
// It starts envtest on first use and panics if envtest cannot start (tests
// call newNamespace, which fails them cleanly, first).
func testClient() client.Client {
	env, err := startEnv()
	if err != nil {
		panic(err)
	}
	return env.Client
}

func zapLevel() zapcore.Level {
	if os.Getenv("TEST_VERBOSE_LOGS") != "" {
		return -1
	}
	return 2 // errors only unless asked
}
