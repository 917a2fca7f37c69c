package webhookserver

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	corev1 "k8s.io/api/core/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"k8s.io/client-go/tools/record"
	"strings"
)

var (
	env *testenv.Env
	mgr ctrl.Manager
)

func TestMain(m *testing.M) {
	flag.Parse()
	// Fuzzing (go test -fuzz, and its worker processes) needs no API server.
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		os.Exit(m.Run())
	}
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mgr, err = ctrl.NewManager(env.Config, ctrl.Options{Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err == nil {
		err = SetupIndexes(context.Background(), mgr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = mgr.Start(ctx) }()
	mgr.GetCache().WaitForCacheSync(ctx)
	code := m.Run()
	cancel()
	_ = env.Stop()
	os.Exit(code)
}

// countingClient counts the writes the webhook server makes: status
// writes (writes) and writes of the resource, its event-ID annotations
// (metaWrites).
type countingClient struct {
	client.Client
	writes     atomic.Int64
	metaWrites atomic.Int64
	conflicts  atomic.Int64
}

func (f *countingClient) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	err := f.Client.Patch(ctx, o, p, opts...)
	switch {
	case err == nil:
		f.metaWrites.Add(1)
	case apierrors.IsConflict(err):
		f.conflicts.Add(1)
	}
	return err
}

func (f *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{f.Client.Status(), f}
}

type countingStatus struct {
	client.SubResourceWriter
	f *countingClient
}

// Update counts persisted status writes (a conflicting attempt persists
// nothing).
func (s *countingStatus) Update(ctx context.Context, o client.Object, opts ...client.SubResourceUpdateOption) error {
	err := s.SubResourceWriter.Update(ctx, o, opts...)
	switch {
	case err == nil:
		s.f.writes.Add(1)
	case apierrors.IsConflict(err):
		s.f.conflicts.Add(1)
	}
	return err
}

func (s *countingStatus) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	err := s.SubResourceWriter.Patch(ctx, o, p, opts...)
	switch {
	case err == nil:
		s.f.writes.Add(1)
	case apierrors.IsConflict(err):
		s.f.conflicts.Add(1)
	}
	return err
}

type rig struct {
	t        *testing.T
	c        *countingClient
	reader   client.Reader
	srv      *httptest.Server
	now      time.Time
	recorder *record.FakeRecorder
}

func newRig(t *testing.T) *rig {
	return newRigWith(t, func(c client.Client) client.Client { return c })
}

// newRigWith runs a webhook server whose client is wrap(counting client).
func newRigWith(t *testing.T, wrap func(client.Client) client.Client) *rig {
	c := &countingClient{Client: mgr.GetClient()}
	reader := env.Client
	r := &rig{t: t, c: c, reader: reader, now: time.Now(), recorder: record.NewFakeRecorder(1000)}
	s := New(Options{Secrets: staticSecrets{[]byte(secretA)}, Client: wrap(c), Cache: mgr.GetCache(), APIReader: reader, Recorder: r.recorder, Now: func() time.Time { return r.now }})
	r.srv = httptest.NewServer(s.Handler())
	t.Cleanup(r.srv.Close)
	return r
}

// warnings drains the recorded Events and returns the Warning ones.
func (r *rig) warnings() []string {
	var out []string
	for {
		select {
		case e := <-r.recorder.Events:
			if strings.HasPrefix(e, corev1.EventTypeWarning) {
				out = append(out, e)
			}
		default:
			return out
		}
	}
}

func (r *rig) newSubscription(subID string) *billingv1alpha1.StripeSubscription {
	r.t.Helper()
	g := NewWithT(r.t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "wh-" + rand.String(6)}}
	g.Expect(env.Client.Create(ctx, ns)).To(Succeed())
	obj := &billingv1alpha1.StripeSubscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "sub"},
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerID: "cus_test1",
			Items: []billingv1alpha1.SubscriptionItem{{PriceID: "price_test1", Quantity: 1}}},
	}
	g.Expect(env.Client.Create(ctx, obj)).To(Succeed())
	// Unique per run, so that go test -count=N never finds two resources
	// with one subscription ID in the shared API server.
	subID += "_" + rand.String(6)
	obj.Status.SubscriptionID = subID
	g.Expect(env.Client.Status().Update(ctx, obj)).To(Succeed())
	// Wait for the cache (and its index) to see the status.
	g.Eventually(func() string {
		var got billingv1alpha1.StripeSubscription
		_ = mgr.GetClient().Get(ctx, client.ObjectKeyFromObject(obj), &got)
		return got.Status.SubscriptionID
	}).Should(Equal(subID))
	return obj
}

func (r *rig) get(obj *billingv1alpha1.StripeSubscription) *billingv1alpha1.StripeSubscription {
	var got billingv1alpha1.StripeSubscription
	NewWithT(r.t).Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), &got)).To(Succeed())
	return &got
}

func (r *rig) post(body []byte) int {
	code, _ := r.postOutcome(body)
	return code
}

// postOutcome posts a signed event and returns the status code and the
// outcome the server answered.
func (r *rig) postOutcome(body []byte) (int, string) {
	req, _ := http.NewRequest("POST", r.srv.URL+Path, bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", stripefake.Sign(body, secretA, r.now))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Errorf("post: %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	var out struct {
		Outcome string `json:"outcome"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Outcome
}

// waitCached waits until the informer cache holds obj's current
// resourceVersion, so that a check of writes is not blurred by a lagging
// cache.
func (r *rig) waitCached(obj *billingv1alpha1.StripeSubscription) {
	r.t.Helper()
	rv := r.get(obj).ResourceVersion
	NewWithT(r.t).Eventually(func() string {
		var c billingv1alpha1.StripeSubscription
		_ = mgr.GetClient().Get(context.Background(), client.ObjectKeyFromObject(obj), &c)
		return c.ResourceVersion
	}).Should(Equal(rv))
}

func subEvent(id, typ string, created int64, obj *billingv1alpha1.StripeSubscription, status string, qty int64, withMetadata bool, apiVersion string) []byte {
	md := map[string]string{}
	if withMetadata {
		md = map[string]string{billingv1alpha1.StripeMetadataNamespace: obj.Namespace, billingv1alpha1.StripeMetadataName: obj.Name, billingv1alpha1.StripeMetadataUID: string(obj.UID)}
	}
	ev := map[string]any{"id": id, "object": "event", "api_version": apiVersion, "created": created, "type": typ,
		"data": map[string]any{"object": map[string]any{
			"id": obj.Status.SubscriptionID, "object": "subscription", "customer": "cus_test1", "status": status,
			"items":                map[string]any{"data": []any{map[string]any{"id": "si_1", "price": map[string]any{"id": "price_test1", "unit_amount": 500, "currency": "usd"}, "quantity": qty}}},
			"current_period_start": 1700000000, "current_period_end": 1702592000, "cancel_at_period_end": false,
			"metadata": md, "latest_invoice": "in_1",
		}, "previous_attributes": map[string]any{"status": "trialing"}}}
	b, _ := json.Marshal(ev)
	return b
}

func invoiceEvent(id, typ string, created int64, obj *billingv1alpha1.StripeSubscription, status string, piStatus, code string, attempts, next int64) []byte {
	return invoiceEventFor("in_1", created-3600, id, typ, created, obj, status, piStatus, code, attempts, next)
}

// invoiceEventFor is an event about invoice invID created at invCreated.
func invoiceEventFor(invID string, invCreated int64, id, typ string, created int64, obj *billingv1alpha1.StripeSubscription, status string, piStatus, code string, attempts, next int64) []byte {
	ev := map[string]any{"id": id, "object": "event", "api_version": "2023-10-16", "created": created, "type": typ,
		"data": map[string]any{"object": map[string]any{
			"id": invID, "object": "invoice", "subscription": obj.Status.SubscriptionID, "status": status, "created": invCreated,
			"amount_due": 4000, "amount_paid": 0, "currency": "usd", "attempt_count": attempts, "next_payment_attempt": next,
			"billing_reason": "subscription_cycle", "hosted_invoice_url": "https://invoice.example/in_1",
			// As Stripe sends it: never expanded. piStatus and code are
			// what a read of the payment intent would give; the event
			// carries neither.
			"payment_intent": "pi_1",
		}}}
	b, _ := json.Marshal(ev)
	return b
}
