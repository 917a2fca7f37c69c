package controllers

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// TestOneHungCallStallsNothingElse: Stripe never answers one customer's
// reads. Every other customer converges as if nothing happened; the hung
// one fails at the call's deadline (not the HTTP client's 80 s), is retried
// with backoff, and converges once Stripe answers again.
func TestOneHungCallStallsNothingElse(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{callTimeout: time.Second, resync: time.Hour})
	var cs []*billingv1alpha1.StripeCustomer
	for i := range 6 {
		c := newCustomer(fmt.Sprintf("c%d", i), nil)
		h.create(c)
		cs = append(cs, c)
	}
	for _, c := range cs {
		h.waitReady(c)
	}
	hung := cs[0]
	remove := h.fake.InjectFault(stripefake.Fault{Method: "GET", Path: "/v1/customers/" + hung.Status.CustomerID, Timeout: true})
	for _, c := range cs {
		h.update(c, func() { c.Spec.Name = "Renamed " + c.Name })
	}
	for _, c := range cs[1:] {
		g.Eventually(func() string { return h.stripeCustomer(c.Status.CustomerID).Name }, 15*time.Second).Should(Equal("Renamed " + c.Name))
		h.waitReady(c)
	}
	g.Eventually(func() string {
		h.get(hung)
		if s := condOf(hung, billingv1alpha1.ConditionSynced); s != nil && s.Status == metav1.ConditionFalse {
			return s.Message
		}
		return ""
	}, 15*time.Second).Should(ContainSubstring("deadline"))
	remove()
	g.Eventually(func() string { return h.stripeCustomer(hung.Status.CustomerID).Name }, 30*time.Second).Should(Equal("Renamed " + hung.Name))
	h.waitReady(hung)
}

// TestSubscriptionStatusWritesDoNotWakeTheCustomer: webhook events rewrite
// a subscription's status; none of them costs a customer reconcile and a
// Stripe read.
func TestSubscriptionStatusWritesDoNotWakeTheCustomer(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{webhooks: true, resync: time.Hour})
	cus := h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	sub := newSub("s", func(s *billingv1alpha1.StripeSubscriptionSpec) { days := int64(3); s.TrialPeriodDays = &days }, planItem("pro", 1))
	h.create(sub)
	h.waitReady(sub)
	// The positive sign that the customer's controller has handled whatever
	// came before: a change of the customer's own spec, and its pass for
	// that generation (observedGeneration). Passes of one customer run one
	// at a time, so a pass the status writes woke has finished by then. The
	// reference pass is made before the status writes, to count what it
	// reads, and after them: the second must read exactly as much. (A first
	// change absorbs the customer pass the subscription's creation woke.)
	touch := func(description string) int {
		before := h.stripeReads("GET /v1/customers")
		h.update(cus, func() { cus.Spec.Description = description })
		h.waitReady(cus)
		return h.stripeReads("GET /v1/customers") - before
	}
	touch("settle")
	perPass := touch("reference pass 1")
	g.Expect(perPass).To(BeNumerically(">=", 1), "a customer pass reads the customer")
	before := h.stripeReads("GET /v1/customers")
	rv := h.get(sub).GetResourceVersion()
	h.advance(4 * day) // the trial ends: several events, several status writes
	h.waitStripeStatus(sub, "active")
	g.Expect(h.get(sub).GetResourceVersion()).NotTo(Equal(rv))
	touch("reference pass 2")
	g.Expect(h.stripeReads("GET /v1/customers")-before).To(Equal(perPass), "the subscription's status writes woke the customer")
}
