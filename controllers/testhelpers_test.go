package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	corev1 "k8s.io/api/core/v1"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
	"github.com/stripe-operator/stripe-operator/webhookserver"
)

// harness runs the three reconcilers (and optionally the webhook server)
// in a manager against the real API server, with the real Stripe client
// talking HTTP to the stateful fake.
type harness struct {
	t        *testing.T
	ns       string
	fake     *stripefake.Server
	stripe   *stripe.Client
	c        client.Client // uncached, for assertions
	recorder *record.FakeRecorder
	mu       sync.Mutex
	seen     []string
	outcomes map[string][]string // event type -> the webhook server's answers
}

type harnessOptions struct {
	// wrapClient wraps the reconcilers' client (failure injection).
	wrapClient func(client.Client) client.Client
	// webhooks runs the webhook server and registers it with the fake.
	webhooks bool
	// webhookAPIVersion is the webhook endpoint's API version (default:
	// the fake's own).
	webhookAPIVersion string
	// resync is the reconcilers' resync period (default 2s).
	resync time.Duration
	// fakeRateLimit is the fake's rate limit (default unlimited).
	fakeRateLimit float64
	// callTimeout is the Stripe client's per-call deadline (default 20s).
	callTimeout time.Duration
	// instance is the operator instance (default: the test's namespace).
	instance string
	// fake shares another harness's test-mode Stripe.
	fake *stripefake.Server
	// lists turns on the resync by listing (as the manager does); off, every
	// resync reads each object on its own, which tests count as a sign that
	// the resync ran.
	lists bool
	// maxChargeAttempts is the subscription reconciler's limit (0: its
	// default).
	maxChargeAttempts int
	// clock is the subscription reconciler's clock for the charge window
	// (default: the test-mode Stripe's).
	clock func() time.Time
}

const harnessWebhookSecret = "whsec_harnessSecret0000000000"

type staticSecrets [][]byte

func (s staticSecrets) WebhookSecrets() [][]byte { return s }

func startHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	g := NewWithT(t)
	if o.resync == 0 {
		o.resync = 2 * time.Second
	}
	if o.fakeRateLimit == 0 {
		o.fakeRateLimit = -1
	}
	h := &harness{t: t, ns: newNamespace(t), c: testClient(), recorder: record.NewFakeRecorder(100000)}
	h.fake = o.fake
	if h.fake == nil {
		h.fake = stripefake.NewTestServer(t, stripefake.Options{RateLimit: o.fakeRateLimit})
	}
	if o.instance == "" {
		o.instance = h.ns
	}
	sc, err := stripe.New(stripe.Config{APIKey: "sk_test_harness", BaseURL: h.fake.URL(), RateLimit: 1000, CallTimeout: o.callTimeout})
	g.Expect(err).NotTo(HaveOccurred())
	h.stripe = sc
	mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{
		Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{h.ns: {}}},
	})
	g.Expect(err).NotTo(HaveOccurred())
	c := mgr.GetClient()
	if o.wrapClient != nil {
		c = o.wrapClient(c)
	}
	// With o.lists, as in the manager: one set of whole lists for the
	// resync of every kind (resync_lists.go).
	var lists *ResyncLists
	if o.lists {
		lists = &ResyncLists{Lister: sc, MinRefresh: o.resync / 2}
	}
	g.Expect((&StripeCustomerReconciler{Client: c, Stripe: sc, Instance: o.instance, Recorder: h.recorder, ResyncPeriod: o.resync, SkipNameValidation: true, Lists: lists}).SetupWithManager(mgr)).To(Succeed())
	g.Expect((&StripePlanReconciler{Client: c, Stripe: sc, Instance: o.instance, Recorder: h.recorder, ResyncPeriod: o.resync, SkipNameValidation: true, Lists: lists}).SetupWithManager(mgr)).To(Succeed())
	g.Expect((&StripeCouponReconciler{Client: c, Stripe: sc, Instance: o.instance, Recorder: h.recorder, ResyncPeriod: o.resync, SkipNameValidation: true}).SetupWithManager(mgr)).To(Succeed())
	if o.clock == nil {
		o.clock = h.fake.Now
	}
	g.Expect((&StripeSubscriptionReconciler{Client: c, Stripe: sc, Instance: o.instance, Recorder: h.recorder, ResyncPeriod: o.resync, SkipNameValidation: true,
		MaxChargeAttempts: o.maxChargeAttempts, Now: o.clock, Lists: lists}).SetupWithManager(mgr)).To(Succeed())
	if o.webhooks {
		g.Expect(webhookserver.SetupIndexes(context.Background(), mgr)).To(Succeed())
		ws := webhookserver.New(webhookserver.Options{Secrets: staticSecrets{[]byte(harnessWebhookSecret)},
			Client: mgr.GetClient(), Cache: mgr.GetCache(), APIReader: mgr.GetAPIReader(), Recorder: h.recorder})
		srv := httptest.NewServer(h.recordOutcomes(ws.Handler()))
		t.Cleanup(srv.Close)
		if o.webhookAPIVersion == "" {
			o.webhookAPIVersion = stripefake.DefaultAPIVersion
		}
		h.fake.AddWebhookEndpointWithVersion(srv.URL+webhookserver.Path, harnessWebhookSecret, o.webhookAPIVersion)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

func (h *harness) create(obj client.Object) {
	h.t.Helper()
	obj.SetNamespace(h.ns)
	NewWithT(h.t).Expect(h.c.Create(context.Background(), obj)).To(Succeed())
}

func (h *harness) get(obj client.Object) client.Object {
	h.t.Helper()
	NewWithT(h.t).Expect(h.c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	return obj
}

// update re-reads obj, applies mutate and updates it (retrying conflicts).
func (h *harness) update(obj client.Object, mutate func()) {
	h.t.Helper()
	NewWithT(h.t).Eventually(func() error {
		if err := h.c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate()
		return h.c.Update(context.Background(), obj)
	}, 10*time.Second).Should(Succeed())
}

func (h *harness) delete(obj client.Object) {
	h.t.Helper()
	NewWithT(h.t).Expect(h.c.Delete(context.Background(), obj)).To(Succeed())
}

func (h *harness) waitGone(obj client.Object) {
	h.t.Helper()
	NewWithT(h.t).Eventually(func() bool {
		return apierrors.IsNotFound(h.c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj))
	}, 30*time.Second, 100*time.Millisecond).Should(BeTrue())
}

// waitCondition waits until obj has the condition with status (and reason,
// when not empty) for its current generation.
func (h *harness) waitCondition(obj conditioned, condType string, status, reason string) {
	h.t.Helper()
	NewWithT(h.t).Eventually(func() error {
		if err := h.c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(obj.GetConditions(), condType)
		if c == nil || string(c.Status) != status || (reason != "" && c.Reason != reason) || c.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("%s: want %s/%s, have %+v", condType, status, reason, obj.GetConditions())
		}
		return nil
	}, 45*time.Second, 100*time.Millisecond).Should(Succeed())
}

func (h *harness) waitReady(obj conditioned) {
	h.t.Helper()
	h.waitCondition(obj, billingv1alpha1.ConditionReady, "True", "")
}

// events returns every Kubernetes Event recorded so far.
func (h *harness) events() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		select {
		case e := <-h.recorder.Events:
			h.seen = append(h.seen, e)
		default:
			return append([]string(nil), h.seen...)
		}
	}
}

func (h *harness) waitEvent(substr string) {
	h.t.Helper()
	NewWithT(h.t).Eventually(func() string { return strings.Join(h.events(), "\n") }, 30*time.Second).Should(ContainSubstring(substr))
}

// crashingClient fails the first status patches for which match returns
// true (failures of them, default 1), as if the operator died after the
// Stripe call and before any status write of that pass landed.
type crashingClient struct {
	client.Client
	mu       sync.Mutex
	match    func(client.Object) bool
	failures int
	failed   int
}

func (c *crashingClient) Status() client.SubResourceWriter {
	return &crashingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type crashingStatus struct {
	client.SubResourceWriter
	c *crashingClient
}

func (w *crashingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	w.c.mu.Lock()
	crash := w.c.failed < max(1, w.c.failures) && w.c.match(obj)
	if crash {
		w.c.failed++
	}
	w.c.mu.Unlock()
	if crash {
		return apierrors.NewServiceUnavailable("injected crash before the status write")
	}
	return w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func (c *crashingClient) didCrash() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed > 0
}

// allowAdoption labels ns so that Stripe objects made outside the operator
// may be adopted there (DefaultAdoptionSelector).
func allowAdoption(t *testing.T, ns string) {
	t.Helper()
	var n corev1.Namespace
	ctx := context.Background()
	if err := testClient().Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
		t.Fatal(err)
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels["billing.stripe-operator.io/adoption"] = "allowed"
	if err := testClient().Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) allowAdoption() { allowAdoption(h.t, h.ns) }

// recordOutcomes wraps the webhook server's handler and records, per event
// type, the outcome it answered (applied, duplicate, out_of_order, ...).
func (h *harness) recordOutcomes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &answerRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		var ev struct{ Type string }
		var ans struct{ Outcome string }
		_ = json.Unmarshal(body, &ev)
		_ = json.Unmarshal(rec.body.Bytes(), &ans)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.outcomes == nil {
			h.outcomes = map[string][]string{}
		}
		h.outcomes[ev.Type] = append(h.outcomes[ev.Type], ans.Outcome)
	})
}

type answerRecorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (a *answerRecorder) Write(b []byte) (int, error) {
	a.body.Write(b)
	return a.ResponseWriter.Write(b)
}

// placedOutcomes are the answers of an event the webhook server matched
// to its subscription and judged: applied, or recorded against what
// status already showed.
var placedOutcomes = []string{webhookserver.OutcomeApplied, webhookserver.OutcomeDuplicate,
	webhookserver.OutcomeOutOfOrder, webhookserver.OutcomeDeferred, webhookserver.OutcomeSuperseded}

// outcomesOf returns the webhook server's answers to events of type typ.
func (h *harness) outcomesOf(typ string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.outcomes[typ]...)
}
