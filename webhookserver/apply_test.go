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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
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

// countingClient counts the writes the webhook server makes.
type countingClient struct {
	client.Client
	writes atomic.Int64
}

func (f *countingClient) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	f.writes.Add(1)
	return f.Client.Patch(ctx, o, p, opts...)
}

func (f *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{f.Client.Status(), f}
}

type countingStatus struct {
	client.SubResourceWriter
	f *countingClient
}

func (s *countingStatus) Update(ctx context.Context, o client.Object, opts ...client.SubResourceUpdateOption) error {
	s.f.writes.Add(1)
	return s.SubResourceWriter.Update(ctx, o, opts...)
}

func (s *countingStatus) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	s.f.writes.Add(1)
	return s.SubResourceWriter.Patch(ctx, o, p, opts...)
}

type rig struct {
	t      *testing.T
	c      *countingClient
	reader client.Reader
	srv    *httptest.Server
	now    time.Time
}

func newRig(t *testing.T) *rig {
	c := &countingClient{Client: mgr.GetClient()}
	reader := env.Client
	r := &rig{t: t, c: c, reader: reader, now: time.Now()}
	s := New(Options{Secrets: staticSecrets{[]byte(secretA)}, Client: c, APIReader: reader, Now: func() time.Time { return r.now }})
	r.srv = httptest.NewServer(s.Handler())
	t.Cleanup(r.srv.Close)
	return r
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
	req, _ := http.NewRequest("POST", r.srv.URL+Path, bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", stripefake.Sign(body, secretA, r.now))
	resp, err := http.DefaultClient.Do(req)
	NewWithT(r.t).Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	return resp.StatusCode
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
	ev := map[string]any{"id": id, "object": "event", "api_version": "2023-10-16", "created": created, "type": typ,
		"data": map[string]any{"object": map[string]any{
			"id": "in_1", "object": "invoice", "subscription": obj.Status.SubscriptionID, "status": status,
			"amount_due": 4000, "amount_paid": 0, "currency": "usd", "attempt_count": attempts, "next_payment_attempt": next,
			"billing_reason": "subscription_cycle", "hosted_invoice_url": "https://invoice.example/in_1",
			"payment_intent": map[string]any{"id": "pi_1", "status": piStatus, "last_payment_error": map[string]any{"code": code}},
		}}}
	b, _ := json.Marshal(ev)
	return b
}

func TestSubscriptionEventAppliesOnceAndInOrder(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_apply1")
	t0 := r.now.Unix()

	// A signed customer.subscription.updated changes status.
	g.Expect(r.post(subEvent("evt_a1", "customer.subscription.updated", t0, obj, "active", 2, true, "2023-10-16"))).To(Equal(200))
	got := r.get(obj)
	g.Expect(got.Status.StripeStatus).To(Equal("active"))
	g.Expect(got.Status.Items).To(ConsistOf(billingv1alpha1.ObservedItem{ItemID: "si_1", PriceID: "price_test1", Quantity: 2}))
	g.Expect(got.Status.LastEvent).To(Equal(&billingv1alpha1.EventRef{ID: "evt_a1", Type: "customer.subscription.updated", Created: t0}))
	g.Expect(got.Annotations[billingv1alpha1.AnnotationLastEventID]).To(Equal("evt_a1"))
	rv := got.ResourceVersion

	// The same event again, and five duplicates at once: no write at all.
	g.Eventually(func() bool {
		var c billingv1alpha1.StripeSubscription
		_ = mgr.GetClient().Get(context.Background(), client.ObjectKeyFromObject(obj), &c)
		return c.ResourceVersion == rv
	}).Should(BeTrue())
	before := r.c.writes.Load()
	g.Expect(r.post(subEvent("evt_a1", "customer.subscription.updated", t0, obj, "active", 2, true, "2023-10-16"))).To(Equal(200))
	var wg sync.WaitGroup
	codes := make(chan int, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- r.post(subEvent("evt_a1", "customer.subscription.updated", t0, obj, "active", 2, true, "2023-10-16"))
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		g.Expect(c).To(Equal(200))
	}
	g.Expect(r.c.writes.Load()).To(Equal(before), "duplicates must not write")
	g.Expect(r.get(obj).ResourceVersion).To(Equal(rv))

	// An older event after a newer one changes no state.
	g.Expect(r.post(subEvent("evt_old", "customer.subscription.updated", t0-10, obj, "trialing", 1, true, "2023-10-16"))).To(Equal(200))
	got = r.get(obj)
	g.Expect(got.Status.StripeStatus).To(Equal("active"))
	g.Expect(got.Status.LastEvent.ID).To(Equal("evt_a1"))
	g.Expect(got.Annotations[billingv1alpha1.AnnotationRecentEventIDs]).To(ContainSubstring("evt_old"))

	// Two events in the same second both apply, in arrival order.
	g.Expect(r.post(subEvent("evt_b1", "customer.subscription.updated", t0+5, obj, "active", 3, true, "2023-10-16"))).To(Equal(200))
	g.Expect(r.post(subEvent("evt_b2", "customer.subscription.updated", t0+5, obj, "past_due", 3, true, "2023-10-16"))).To(Equal(200))
	got = r.get(obj)
	g.Expect(got.Status.StripeStatus).To(Equal("past_due"))
	g.Expect(got.Status.Items[0].Quantity).To(Equal(int64(3)))
	g.Expect(got.Status.LastEvent.ID).To(Equal("evt_b2"))
	g.Expect(got.Annotations[billingv1alpha1.AnnotationRecentEventIDs]).To(ContainSubstring("evt_b1"))

	// A same-second event never brings a deleted subscription back.
	g.Expect(r.post(subEvent("evt_c1", "customer.subscription.deleted", t0+9, obj, "canceled", 3, true, "2023-10-16"))).To(Equal(200))
	g.Expect(r.post(subEvent("evt_c2", "customer.subscription.updated", t0+9, obj, "active", 3, true, "2023-10-16"))).To(Equal(200))
	g.Expect(r.get(obj).Status.StripeStatus).To(Equal("canceled"))
}

func TestAdoptedSubscriptionFoundByIndexAndOtherAPIVersion(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_adopted1")
	// No operator metadata (an adopted subscription) and a newer API version.
	g.Expect(r.post(subEvent("evt_d1", "customer.subscription.updated", r.now.Unix(), obj, "active", 7, false, "2024-06-20"))).To(Equal(200))
	g.Expect(r.get(obj).Status.Items[0].Quantity).To(Equal(int64(7)))

	// A subscription nobody manages is acknowledged and ignored.
	other := obj.DeepCopy()
	other.Status.SubscriptionID = "sub_unmanaged"
	before := r.c.writes.Load()
	g.Expect(r.post(subEvent("evt_d2", "customer.subscription.updated", r.now.Unix(), other, "active", 1, false, "2023-10-16"))).To(Equal(200))
	g.Expect(r.c.writes.Load()).To(Equal(before))
}

func TestPaymentEvents(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_pay1")
	t0 := r.now.Unix()
	next := t0 + 3*86400
	g.Expect(r.post(invoiceEvent("evt_p1", "invoice.payment_failed", t0, obj, "open", "requires_payment_method", "card_declined", 1, next))).To(Equal(200))
	got := r.get(obj)
	cond := findCond(got, billingv1alpha1.ConditionPaymentFailed)
	g.Expect(cond).NotTo(BeNil())
	g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond.Reason).To(Equal(billingv1alpha1.ReasonPaymentDeclined))
	g.Expect(cond.Message).To(ContainSubstring("1 attempt"))
	g.Expect(got.Status.LatestInvoice.Status).To(Equal("open"))
	g.Expect(got.Status.LatestInvoice.PaymentError).To(Equal("card_declined"))

	g.Expect(r.post(invoiceEvent("evt_p2", "invoice.payment_action_required", t0+1, obj, "open", "requires_action", "authentication_required", 2, next))).To(Equal(200))
	g.Expect(findCond(r.get(obj), billingv1alpha1.ConditionPaymentFailed).Reason).To(Equal(billingv1alpha1.ReasonAuthenticationRequired))

	g.Expect(r.post(invoiceEvent("evt_p3", "invoice.paid", t0+2, obj, "paid", "succeeded", "", 3, 0))).To(Equal(200))
	got = r.get(obj)
	cond = findCond(got, billingv1alpha1.ConditionPaymentFailed)
	g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(cond.Reason).To(Equal(billingv1alpha1.ReasonPaid))
	// A same-second replay of an older "open" state does not unpay it.
	g.Expect(r.post(invoiceEvent("evt_p4", "invoice.finalized", t0+2, obj, "open", "requires_payment_method", "", 3, 0))).To(Equal(200))
	g.Expect(r.get(obj).Status.LatestInvoice.Status).To(Equal("paid"))
}

func findCond(obj *billingv1alpha1.StripeSubscription, typ string) *metav1.Condition {
	for i := range obj.Status.Conditions {
		if obj.Status.Conditions[i].Type == typ {
			return &obj.Status.Conditions[i]
		}
	}
	return nil
}
