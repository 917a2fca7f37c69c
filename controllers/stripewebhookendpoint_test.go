package controllers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// signedReceiver accepts deliveries whose Stripe-Signature verifies with
// one of the secrets currently in the webhook Secret, as the webhook server
// does, and counts them per event ID.
type signedReceiver struct {
	c        client.Client
	key      client.ObjectKey
	mu       sync.Mutex
	verified map[string]int
	refused  int
}

func (s *signedReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var sec corev1.Secret
	_ = s.c.Get(r.Context(), s.key, &sec)
	ts, sigs := "", []string{}
	for _, part := range strings.Split(r.Header.Get("Stripe-Signature"), ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	ok := false
	for _, secret := range strings.Fields(string(sec.Data["webhookSigningSecrets"])) {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		want := hex.EncodeToString(mac.Sum(nil))
		for _, sig := range sigs {
			ok = ok || hmac.Equal([]byte(sig), []byte(want))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.refused++
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	var id string
	if i := strings.Index(string(body), `"id":"evt_`); i >= 0 {
		id = string(body[i+6 : i+6+strings.Index(string(body[i+6:]), `"`)])
	}
	s.verified[id]++
}

func (s *signedReceiver) counts() (verified map[string]int, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.verified {
		out[k] = v
	}
	return out, s.refused
}

// startEndpointManager runs the StripeWebhookEndpoint reconciler for ns
// against the fake.
func startEndpointManager(t *testing.T, ns string, sc *stripe.Client) {
	t.Helper()
	g := NewWithT(t)
	mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{
		Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect((&StripeWebhookEndpointReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Stripe: sc,
		Namespace: ns, ResyncPeriod: time.Hour, SkipNameValidation: true}).SetupWithManager(mgr)).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// makeEvents makes the fake emit subscription and invoice events.
func makeEvents(t *testing.T, sc *stripe.Client, n int) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	owner := stripe.Owner{Namespace: "x", Name: "events", UID: "u-events"}
	name := "P"
	prod, err := sc.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: &name})
	g.Expect(err).NotTo(HaveOccurred())
	price, err := sc.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "usd", UnitAmount: 100, Interval: "month", IntervalCount: 1})
	g.Expect(err).NotTo(HaveOccurred())
	for i := 0; i < n; i++ {
		email := "e@example.com"
		cus, err := sc.CreateCustomer(ctx, owner, "", stripe.CustomerParams{Email: &email})
		g.Expect(err).NotTo(HaveOccurred())
		_, err = sc.CreateSubscription(ctx, owner, "", stripe.SubscriptionCreateParams{CustomerID: cus.ID,
			Items: []stripe.SubscriptionItemParams{{PriceID: price.ID, Quantity: 1}}, PaymentBehavior: "allow_incomplete"})
		g.Expect(err).NotTo(HaveOccurred())
	}
}

// TestWebhookEndpointLifecycle: the operator creates the endpoint with the
// operator's events and API version, writes its secret into the Secret the
// webhook server reads (deliveries verify), rotates it on request with both
// endpoints delivering and both secrets accepted during the overlap, then
// removes the old one; spec changes reach Stripe; deletion deletes it and
// its secrets.
func TestWebhookEndpointLifecycle(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	sc, err := stripe.New(stripe.Config{APIKey: "sk_test_endpoints", BaseURL: fake.URL(), RateLimit: 1000})
	g.Expect(err).NotTo(HaveOccurred())
	c := testClient()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stripe-webhook-secrets"},
		Data: map[string][]byte{"extraSigningSecrets": []byte("whsec_handmade\n")}}
	g.Expect(c.Create(ctx, secret)).To(Succeed())
	recv := &signedReceiver{c: c, key: client.ObjectKeyFromObject(secret), verified: map[string]int{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	startEndpointManager(t, ns, sc)

	ep := &billingv1alpha1.StripeWebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"},
		Spec: billingv1alpha1.StripeWebhookEndpointSpec{URL: srv.URL + "/webhooks/stripe", Description: "billing",
			SecretRef: billingv1alpha1.SecretKeySelector{Name: "stripe-webhook-secrets"}, SecretOverlap: metav1.Duration{Duration: 3 * time.Second}}}
	g.Expect(c.Create(ctx, ep)).To(Succeed())
	g.Expect(ep.Spec.EnabledEvents).To(Equal(billingv1alpha1.DefaultWebhookEvents), "enabledEvents default to the operator's events")
	g.Expect(ep.Spec.APIVersion).To(Equal(billingv1alpha1.OperatorAPIVersion))
	waitReady := func() {
		t.Helper()
		g.Eventually(func() bool {
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(ep), ep)).To(Succeed())
			r := findCondition(ep.Status.Conditions, billingv1alpha1.ConditionReady)
			return r != nil && r.Status == metav1.ConditionTrue && r.ObservedGeneration == ep.Generation
		}, 30*time.Second, 100*time.Millisecond).Should(BeTrue(), "%+v", ep.Status)
	}
	waitReady()
	first := ep.Status.EndpointID
	g.Expect(first).To(HavePrefix("we_"))
	g.Expect(ep.Status.APIVersion).To(Equal("2023-10-16"))
	g.Expect(ep.Status.EnabledEvents).To(ConsistOf(billingv1alpha1.DefaultWebhookEvents))
	got, err := sc.GetWebhookEndpoint(ctx, first)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.URL).To(Equal(ep.Spec.URL))
	g.Expect(got.Secret).To(BeEmpty(), "Stripe shows the secret only on create")
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
	lines := strings.Fields(string(secret.Data["webhookSigningSecrets"]))
	g.Expect(lines).To(HaveLen(2), "the endpoint's secret and the hand-made one")
	g.Expect(lines).To(ContainElement("whsec_handmade"))

	// Deliveries are signed with the endpoint's own secret.
	makeEvents(t, sc, 1)
	g.Expect(fake.FlushEvents(ctx)).To(Succeed())
	verified, refused := recv.counts()
	g.Expect(refused).To(BeZero())
	g.Expect(verified).NotTo(BeEmpty())

	// Rotation: a new endpoint and secret; both deliver during the overlap.
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(ep), ep)).To(Succeed())
	ep.Annotations = map[string]string{billingv1alpha1.AnnotationRotateSecret: "1"}
	g.Expect(c.Update(ctx, ep)).To(Succeed())
	g.Eventually(func() string {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(ep), ep)).To(Succeed())
		return ep.Status.PreviousEndpointID
	}, 30*time.Second, 50*time.Millisecond).Should(Equal(first))
	g.Expect(ep.Status.EndpointID).NotTo(Equal(first))
	g.Expect(ep.Status.LastRotation).NotTo(BeNil())
	g.Expect(ep.Status.OverlapEnd).NotTo(BeNil())
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
	g.Expect(strings.Fields(string(secret.Data["webhookSigningSecrets"]))).To(HaveLen(3), "old, new and hand-made secrets during the overlap")
	enabled, _ := fake.WebhookEndpointCount()
	g.Expect(enabled).To(Equal(2))
	before, _ := recv.counts()
	makeEvents(t, sc, 1)
	g.Expect(fake.FlushEvents(ctx)).To(Succeed())
	after, refused := recv.counts()
	g.Expect(refused).To(BeZero())
	for id, n := range after {
		if before[id] == 0 {
			g.Expect(n).To(Equal(2), "event %s is delivered by both endpoints during the overlap", id)
		}
	}

	// The overlap ends: the old endpoint and secret go.
	g.Eventually(func() string {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(ep), ep)).To(Succeed())
		return ep.Status.PreviousEndpointID
	}, 30*time.Second, 100*time.Millisecond).Should(BeEmpty())
	enabled, _ = fake.WebhookEndpointCount()
	g.Expect(enabled).To(Equal(1))
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
	g.Expect(strings.Fields(string(secret.Data["webhookSigningSecrets"]))).To(HaveLen(2))
	_, err = sc.GetWebhookEndpoint(ctx, first)
	g.Expect(stripe.ClassOf(err)).To(Equal(stripe.ClassNotFound))

	// A spec change reaches Stripe in place.
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(ep), ep)).To(Succeed())
	ep.Spec.EnabledEvents = []string{"invoice.paid", "customer.subscription.updated"}
	g.Expect(c.Update(ctx, ep)).To(Succeed())
	waitReady()
	got, err = sc.GetWebhookEndpoint(ctx, ep.Status.EndpointID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.EnabledEvents).To(ConsistOf("invoice.paid", "customer.subscription.updated"))

	// Deletion deletes the endpoint and its secret, keeps the hand-made one.
	id := ep.Status.EndpointID
	g.Expect(c.Delete(ctx, ep)).To(Succeed())
	g.Eventually(func() error { return c.Get(ctx, client.ObjectKeyFromObject(ep), ep) }, 30*time.Second).ShouldNot(Succeed())
	_, err = sc.GetWebhookEndpoint(ctx, id)
	g.Expect(stripe.ClassOf(err)).To(Equal(stripe.ClassNotFound))
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
	g.Expect(strings.Fields(string(secret.Data["webhookSigningSecrets"]))).To(Equal([]string{"whsec_handmade"}))
}
