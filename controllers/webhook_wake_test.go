package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// TestInvoiceEventWakesAPassWithoutAStripeRead: a failed payment retry
// brings only invoice events (the subscription stays past_due). The
// webhook server writes them into status; the pass that write wakes takes
// the subscription from status and updates Ready without calling Stripe.
// A subscription event, which may carry an edit status does not show,
// still makes the pass read.
func TestInvoiceEventWakesAPassWithoutAStripeRead(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{webhooks: true, resync: time.Hour})
	cus := h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	sub := newSub("retry", nil, planItem("pro", 1))
	h.create(sub)
	h.waitReady(sub)
	h.update(cus, func() { cus.Spec.DefaultPaymentMethod = "pm_card_chargeCustomerFail" })
	g.Eventually(func() string { return h.defaultPMToken(cus.Status.CustomerID) }, 20*time.Second).Should(Equal("pm_card_chargeCustomerFail"))
	h.waitReady(cus)

	// The renewal fails: past_due, with subscription and invoice events.
	h.advance(32 * day)
	h.waitStripeStatus(sub, "past_due")
	h.waitCondition(sub, billingv1alpha1.ConditionReady, "False", billingv1alpha1.ReasonPaymentDeclined)
	g.Eventually(func() string {
		h.get(sub)
		return findCondition(sub.Status.Conditions, billingv1alpha1.ConditionReady).Message
	}, 20*time.Second).Should(ContainSubstring("after 1 attempt"))
	reads := func() int {
		st := h.fake.Stats()
		return st.Requests["GET /v1/subscriptions/{id}"] + st.Requests["GET /v1/subscriptions"]
	}
	// Events of the failed renewal may still be arriving (deliveries are
	// unordered and, on a loaded machine, late): the count this test
	// compares against is the one that held still for 2 s.
	var settled int
	g.Eventually(func() bool {
		before := reads()
		time.Sleep(2 * time.Second)
		settled = reads()
		return settled == before
	}, 40*time.Second, 0).Should(BeTrue(), "subscription reads never settled after the failed renewal")

	// The retry fails too: invoice events only. Ready follows them with no
	// Stripe read.
	h.advance(3*day + time.Hour)
	g.Eventually(func() string {
		h.get(sub)
		return findCondition(sub.Status.Conditions, billingv1alpha1.ConditionReady).Message
	}, 20*time.Second).Should(ContainSubstring("after 2 attempts"))
	g.Expect(sub.Status.StripeStatus).To(Equal("past_due"))
	g.Consistently(reads, 2*time.Second, 200*time.Millisecond).Should(Equal(settled), "a pass woken by invoice events read Stripe")

	// A subscription event (a Dashboard edit) is read.
	g.Expect(h.fake.DashboardSetCancelAtPeriodEnd(sub.Status.SubscriptionID, true)).To(Succeed())
	g.Eventually(reads, 20*time.Second).Should(BeNumerically(">", settled))
}
