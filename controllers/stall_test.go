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
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	sub := newSub("s", func(s *billingv1alpha1.StripeSubscriptionSpec) { days := int64(3); s.TrialPeriodDays = &days }, planItem("pro", 1))
	h.create(sub)
	h.waitReady(sub)
	time.Sleep(time.Second)
	before := h.fake.Stats().Requests["GET /v1/customers/{id}"]
	rv := h.get(sub).GetResourceVersion()
	h.advance(4 * day) // the trial ends: several events, several status writes
	h.waitStripeStatus(sub, "active")
	g.Expect(h.get(sub).GetResourceVersion()).NotTo(Equal(rv))
	time.Sleep(time.Second)
	g.Expect(h.fake.Stats().Requests["GET /v1/customers/{id}"]).To(Equal(before))
}
