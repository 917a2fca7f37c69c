package devenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDevRunsTheSamples runs `make dev`'s entry point and checks that the
// sample subscription becomes Ready with signed webhooks flowing, then that
// it shuts down when its context ends.
func TestDevRunsTheSamples(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	logs := &syncBuffer{}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(logs)))
	defer func() {
		if t.Failed() {
			t.Logf("manager logs:\n%s", logs.String())
		}
	}()
	ready := make(chan *Env, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Dir: t.TempDir(), StripeAddr: freeAddr(t), WebhookAddr: freeAddr(t), AdminAddr: freeAddr(t), MetricsAddr: freeAddr(t),
			SamplesDir: filepath.Join(testenv.RepoRoot(), "config", "samples"), ResyncPeriod: 5 * time.Second, Out: out,
		}, func(e *Env) { ready <- e })
	}()
	var env *Env
	select {
	case env = <-ready:
	case err := <-done:
		t.Fatalf("dev stopped early: %v\n%s", err, out.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("dev did not start:\n%s", out.String())
	}
	g.Expect(out.String()).To(ContainSubstring("kubectl get stripe"))
	// The banner's metrics URL serves the manager's metrics.
	g.Expect(env.MetricsURL).NotTo(BeEmpty())
	g.Expect(out.String()).To(ContainSubstring("Manager metrics:  " + env.MetricsURL))
	g.Eventually(func() (string, error) {
		resp, err := http.Get(env.MetricsURL)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}, 30*time.Second, 200*time.Millisecond).Should(ContainSubstring("controller_runtime_reconcile_total"))

	key := types.NamespacedName{Namespace: "default", Name: "acme-pro"}
	g.Eventually(func() error {
		var sub billingv1alpha1.StripeSubscription
		if err := env.Client.Get(ctx, key, &sub); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(sub.Status.Conditions, billingv1alpha1.ConditionReady) {
			return fmt.Errorf("not Ready yet: %+v", sub.Status.Conditions)
		}
		if sub.Status.StripeStatus != "active" {
			return fmt.Errorf("stripeStatus %q", sub.Status.StripeStatus)
		}
		return nil
	}, 90*time.Second, 500*time.Millisecond).Should(Succeed())
	// Webhooks flowed: the fake delivered signed events that were applied,
	// or recorded for the operator to read again (events it could not
	// order against its own read); either way their IDs are recorded in
	// the event-ID annotations.
	g.Eventually(func() string {
		var sub billingv1alpha1.StripeSubscription
		_ = env.Client.Get(ctx, key, &sub)
		return sub.Annotations[billingv1alpha1.AnnotationRecentEventIDs]
	}, 30*time.Second).Should(ContainSubstring("evt_"))

	// One Created Event naming the subscription's Stripe ID, whichever of
	// the webhook server and the reconciler recorded the ID first.
	var sub billingv1alpha1.StripeSubscription
	g.Expect(env.Client.Get(ctx, key, &sub)).To(Succeed())
	created := func() []corev1.Event {
		var list corev1.EventList
		g.Expect(env.Client.List(ctx, &list, client.InNamespace("default"))).To(Succeed())
		var out []corev1.Event
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == "StripeSubscription" && e.InvolvedObject.Name == "acme-pro" && e.Reason == "Created" {
				out = append(out, e)
			}
		}
		return out
	}
	g.Eventually(func() int { return len(created()) }, 30*time.Second).Should(Equal(1))
	g.Consistently(func() int { return len(created()) }, 2*time.Second).Should(Equal(1))
	g.Expect(created()[0].Message).To(ContainSubstring(sub.Status.SubscriptionID))
	g.Expect(created()[0].Count).To(BeNumerically("<=", 1))

	cancel()
	select {
	case err := <-done:
		g.Expect(err).NotTo(HaveOccurred())
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not shut down")
	}
}

// TestDevRefusesABusyPortBeforeStarting checks every port first and names
// the flag to change, before the API server or anything else starts.
func TestDevRefusesABusyPortBeforeStarting(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		flag string
		o    func(addr string) Options
	}{
		{"--webhook-addr", func(a string) Options { return Options{WebhookAddr: a} }},
		{"--metrics-addr", func(a string) Options { return Options{MetricsAddr: a} }},
		{"--stripe-addr", func(a string) Options { return Options{StripeAddr: a} }},
		{"--admin-addr", func(a string) Options { return Options{AdminAddr: a} }},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			out := &syncBuffer{}
			o := Options{Dir: t.TempDir(), StripeAddr: freeAddr(t), WebhookAddr: freeAddr(t), AdminAddr: freeAddr(t), MetricsAddr: freeAddr(t), Out: out}
			b := tc.o(busy.Addr().String())
			switch {
			case b.WebhookAddr != "":
				o.WebhookAddr = b.WebhookAddr
			case b.MetricsAddr != "":
				o.MetricsAddr = b.MetricsAddr
			case b.StripeAddr != "":
				o.StripeAddr = b.StripeAddr
			case b.AdminAddr != "":
				o.AdminAddr = b.AdminAddr
			}
			start := time.Now()
			err := Run(context.Background(), o, nil)
			if err == nil || !strings.Contains(err.Error(), tc.flag+" "+busy.Addr().String()) || !strings.Contains(err.Error(), "DEV_ARGS") {
				t.Fatalf("want an error naming %s and DEV_ARGS, got %v", tc.flag, err)
			}
			if strings.Contains(out.String(), "kube-apiserver") || time.Since(start) > 5*time.Second {
				t.Errorf("started something before checking ports:\n%s", out.String())
			}
		})
	}
}
