package controllers

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// TestOneSubscriptionOverItsQuantityLimit: one subscription over Stripe's
// per-subscription quantity-change limit (200 an hour; here 1) gets
// resource-specific 429s. It backs off alone, for a growing interval, and
// says RateLimited, while 100 other subscriptions converge: no 429 ever
// paused every caller.
func TestOneSubscriptionOverItsQuantityLimit(t *testing.T) {
	g := NewWithT(t)
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1, SubscriptionQuantityChangesPerHour: 1})
	h := startHarness(t, harnessOptions{fake: fake})
	h.billingSetup("pm_card_visa", map[string]int64{"seat": 500})
	capped := newSub("capped", nil, planItem("seat", 1))
	h.create(capped)
	h.waitReady(capped)
	h.update(capped, func() { capped.Spec.Items[0].Quantity = 2 })
	h.waitReady(capped) // the hour's one quantity change
	start := time.Now()
	h.update(capped, func() { capped.Spec.Items[0].Quantity = 3 })
	h.waitCondition(capped, billingv1alpha1.ConditionSynced, "False", billingv1alpha1.ReasonRateLimited)
	g.Expect(fake.Stats().RateLimitedByReason[stripefake.ReasonResourceSpecific]).To(BeNumerically(">=", 1))

	for i := range 100 {
		h.create(newSub(fmt.Sprintf("s-%03d", i), nil, planItem("seat", 1)))
	}
	g.Eventually(func() int {
		var list billingv1alpha1.StripeSubscriptionList
		if err := h.c.List(context.Background(), &list, client.InNamespace(h.ns)); err != nil {
			return -1
		}
		ready := 0
		for i := range list.Items {
			s := &list.Items[i]
			if s.Name != "capped" && meta.IsStatusConditionTrue(s.Status.Conditions, billingv1alpha1.ConditionReady) {
				ready++
			}
		}
		return ready
	}, 5*time.Minute, time.Second).Should(Equal(100))
	elapsed := time.Since(start)

	// The capped subscription is still refused and says so; Stripe holds
	// its last accepted quantity.
	h.get(capped)
	g.Expect(meta.IsStatusConditionTrue(capped.Status.Conditions, billingv1alpha1.ConditionReady)).To(BeFalse())
	g.Expect(h.snapshot(capped).Items[0].Quantity).To(Equal(int64(2)))
	// Nobody else was paused: every 429 was resource-specific and none
	// paused every caller.
	global, backoffs := h.stripe.LimiterCounts()
	g.Expect(global).To(BeZero(), "a resource-specific 429 paused every caller")
	g.Expect(backoffs).To(BeNumerically(">=", 1))
	st := fake.Stats()
	g.Expect(st.RateLimited).To(Equal(st.RateLimitedByReason[stripefake.ReasonResourceSpecific]))
	// No hot loop on the capped subscription: with the interval growing
	// (2 s, 4 s, 8 s...; checked on its own in
	// TestResourceSpecificBacksOffOnlyThatObject) at most about
	// log2(elapsed/2s)+2 attempts were refused; without a backoff there
	// would be one per pass.
	bound := int(math.Log2(elapsed.Seconds()/2)) + 3
	g.Expect(st.RateLimitedByReason[stripefake.ReasonResourceSpecific]).To(BeNumerically("<=", bound),
		"resource-specific 429s over %v", elapsed)
}

// TestSearchUnavailableCreatesWithoutDuplicates: with Search switched off
// (an account in India), customers and plans are still created, once each,
// also when the operator dies between the create and the status write; an
// object a rebuilt cluster left is adopted from a list.
func TestSearchUnavailableCreatesWithoutDuplicates(t *testing.T) {
	g := NewWithT(t)
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1, SearchUnavailable: true})
	var mu sync.Mutex
	crashed := map[string]bool{}
	var crash *crashingClient
	h := startHarness(t, harnessOptions{fake: fake, wrapClient: func(c client.Client) client.Client {
		crash = &crashingClient{Client: c, failures: 2, match: func(o client.Object) bool {
			mu.Lock()
			defer mu.Unlock()
			var kind string
			switch x := o.(type) {
			case *billingv1alpha1.StripeCustomer:
				if x.Status.CustomerID != "" {
					kind = "customer"
				}
			case *billingv1alpha1.StripePlan:
				if x.Status.ProductID != "" {
					kind = "plan"
				}
			}
			if kind == "" || crashed[kind] {
				return false
			}
			crashed[kind] = true
			return true
		}}
		return crash
	}})
	ctx := context.Background()
	// A customer a rebuilt cluster left behind, with a resource's identity.
	left, err := h.stripe.CreateCustomer(ctx, stripe.Owner{Instance: h.ns, Kind: "StripeCustomer", Namespace: h.ns, Name: "rebuilt", UID: "old-uid"}, "", stripe.CustomerParams{})
	g.Expect(err).NotTo(HaveOccurred())

	cus := newCustomer("crashy", nil)
	plan := newPlan("crashy", 700, nil)
	rebuilt := newCustomer("rebuilt", nil)
	h.create(cus)
	h.create(plan)
	h.create(rebuilt)
	h.waitReady(cus)
	h.waitReady(plan)
	h.waitReady(rebuilt)
	mu.Lock()
	g.Expect(crashed).To(HaveKey("customer"))
	g.Expect(crashed).To(HaveKey("plan"))
	mu.Unlock()
	st := fake.Stats()
	g.Expect(st.Creates["customer"]).To(Equal(2), "the one left behind and the crashy one: no duplicate")
	g.Expect(st.Creates["product"]).To(Equal(1))
	g.Expect(st.Creates["price"]).To(Equal(1))
	g.Expect(rebuilt.Status.CustomerID).To(Equal(left.ID), "adopted from a list")
	g.Expect(h.stripe.SearchFallbacks()).To(BeNumerically(">=", 1))
	g.Expect(st.Requests["GET /v1/customers/search"]+st.Requests["GET /v1/products/search"]).To(BeNumerically("<=", 3),
		"after the account's first 400, Search is not asked again (the three resources may have asked at once)")
}

// TestConflictRetriedSoon: a 409 idempotency_key_in_use on a create, left
// after stripe-go's own retries, is retried after a short backoff under the
// same key: the customer is Ready long before the resync period (10
// minutes here), and is created once.
func TestConflictRetriedSoon(t *testing.T) {
	g := NewWithT(t)
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/customers", Status: 409, Count: 3})
	h := startHarness(t, harnessOptions{fake: fake, resync: 10 * time.Minute})
	cus := newCustomer("busy", func(s *billingv1alpha1.StripeCustomerSpec) { s.DefaultPaymentMethod = "" })
	h.create(cus)
	h.waitReady(cus)
	g.Expect(fake.Stats().Creates["customer"]).To(Equal(1))
	g.Expect(meta.FindStatusCondition(cus.Status.Conditions, billingv1alpha1.ConditionStalled)).To(Or(BeNil(),
		WithTransform(func(c *metav1.Condition) metav1.ConditionStatus { return c.Status }, Equal(metav1.ConditionFalse))))
}
