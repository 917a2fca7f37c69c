package app

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
	}
	os.Exit(code)
}

// revokedKey is a key the proxy in front of the fake answers with Stripe's
// 401 for an invalid API key.
const revokedKey = "sk_test_revoked0000"

// TestCredentialsProblemsAreNamedAndHealItself runs the manager as
// cmd/manager does, without a credentials Secret, then with a live key,
// then a good key, then a key Stripe rejects, then a good key again: no
// Stripe request is made while the key is missing or refused, every
// resource is Stalled with the reason and a message that names the Secret
// but not the key, and it recovers by itself.
func TestCredentialsProblemsAreNamedAndHealItself(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := env.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "creds"}}
	g.Expect(c.Create(ctx, ns)).To(Succeed())

	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	direct, err := stripe.New(stripe.Config{APIKey: "sk_test_direct", BaseURL: fake.URL(), RateLimit: 1000})
	g.Expect(err).NotTo(HaveOccurred())
	var requests atomic.Int64
	target, _ := url.Parse(fake.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Authorization") == "Bearer "+revokedKey {
			// Stripe's answer to an invalid or revoked key
			// (https://docs.stripe.com/api/errors: 401 Unauthorized).
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****0000"}}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()

	t.Setenv("STRIPE_API_KEY", "")
	var o Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.BindFlags(fs)
	g.Expect(fs.Parse([]string{"--metrics-bind-address=0", "--health-probe-bind-address=0", "--webhook-bind-address=0",
		"--credentials-secret-namespace=creds", "--stripe-api-url=" + srv.URL, "--resync-period=1h",
		// Outside a cluster there is no service-account namespace file.
		"--leader-elect", "--leader-election-namespace=creds", "--leader-election-id=creds-test"})).To(Succeed())
	o.SkipNameValidation = true
	done := make(chan error, 1)
	go func() { done <- Run(ctx, env.Config, o) }()
	defer func() { cancel(); <-done }()

	cus := &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: "creds", Name: "acme"},
		Spec: billingv1alpha1.StripeCustomerSpec{Email: "billing@acme.example", Name: "Acme"}}
	g.Expect(c.Create(ctx, cus)).To(Succeed())

	stalled := func(reason string) *metav1.Condition {
		t.Helper()
		var cond *metav1.Condition
		g.Eventually(func() string {
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(cus), cus)).To(Succeed())
			cond = meta.FindStatusCondition(cus.Status.Conditions, billingv1alpha1.ConditionStalled)
			if cond == nil || cond.Status != metav1.ConditionTrue {
				return ""
			}
			return cond.Reason
		}, 30*time.Second, 100*time.Millisecond).Should(Equal(reason))
		return cond
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "creds", Name: "stripe-credentials"}}
	setKey := func(key string) {
		t.Helper()
		secret.StringData = map[string]string{"apiKey": key}
		if secret.ResourceVersion == "" {
			g.Expect(c.Create(ctx, secret)).To(Succeed())
			return
		}
		g.Expect(c.Update(ctx, secret)).To(Succeed())
	}

	rename := func(name string) {
		t.Helper()
		g.Eventually(func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
				return err
			}
			cus.Spec.Name = name
			return c.Update(ctx, cus)
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	}

	// No Secret.
	cond := stalled(billingv1alpha1.ReasonCredentialsMissing)
	g.Expect(cond.Message).To(ContainSubstring("creds/stripe-credentials"))
	g.Expect(cond.Message).To(ContainSubstring("does not exist"))
	g.Expect(requests.Load()).To(BeZero(), "no Stripe request without a key")

	// A live key without --allow-live-mode.
	setKey("sk_live_0123456789abcdef")
	cond = stalled(billingv1alpha1.ReasonLiveKeyRefused)
	g.Expect(cond.Message).To(And(ContainSubstring("key apiKey of the credentials Secret creds/stripe-credentials"), ContainSubstring("--allow-live-mode")))
	g.Expect(cond.Message).NotTo(ContainSubstring("0123456789"))
	g.Expect(requests.Load()).To(BeZero(), "no Stripe request with a refused key")

	// A good key: it recovers by itself.
	setKey("sk_test_good")
	g.Eventually(func() bool {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(cus), cus)).To(Succeed())
		return meta.IsStatusConditionTrue(cus.Status.Conditions, billingv1alpha1.ConditionReady) &&
			meta.FindStatusCondition(cus.Status.Conditions, billingv1alpha1.ConditionStalled) == nil
	}, 30*time.Second, 100*time.Millisecond).Should(BeTrue())
	g.Expect(requests.Load()).To(BeNumerically(">", 0))
	// The test's own client created the object (as the test binary); the
	// operator's writes (status, finalizer) carry the fixed name.
	var statusManagers []string
	for _, mf := range cus.ManagedFields {
		if mf.Subresource == "status" {
			statusManagers = append(statusManagers, mf.Manager)
		}
	}
	g.Expect(statusManagers).To(ConsistOf(DefaultFieldManager), "the operator writes as %q whatever the binary is called", DefaultFieldManager)

	// Stripe rejects the key (401): CredentialsRejected, and after that one
	// answer no further request with that key.
	setKey(revokedKey)
	rename("Acme Inc")
	cond = stalled(billingv1alpha1.ReasonCredentialsRejected)
	g.Expect(cond.Message).To(ContainSubstring("creds/stripe-credentials"))
	g.Expect(cond.Message).NotTo(ContainSubstring("revoked0000"))
	after401 := requests.Load()
	rename("Acme Incorporated")
	g.Eventually(func() int64 {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(cus), cus)).To(Succeed())
		return cus.Status.ObservedGeneration
	}, 30*time.Second, 100*time.Millisecond).Should(Equal(cus.Generation))
	g.Expect(requests.Load()).To(Equal(after401), "no Stripe request with a key Stripe rejected")

	// Fixed again.
	setKey("sk_test_good2")
	g.Eventually(func() string {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(cus), cus)).To(Succeed())
		if !meta.IsStatusConditionTrue(cus.Status.Conditions, billingv1alpha1.ConditionReady) {
			return ""
		}
		got, err := direct.GetCustomer(ctx, cus.Status.CustomerID)
		g.Expect(err).NotTo(HaveOccurred())
		return got.Name
	}, 30*time.Second, 100*time.Millisecond).Should(Equal("Acme Incorporated"))
	if strings.Contains(fmt.Sprint(cus.Status), "sk_") {
		t.Errorf("a key in status: %v", cus.Status)
	}
}
