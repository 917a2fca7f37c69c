package controllers

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// TestSubscriptionBasilEndpointEndToEnd runs the whole path with a webhook
// endpoint on API version 2025-03-31.basil: the fake renders its events in
// that shape (invoices reach their subscription through
// parent.subscription_details, periods are on the items), signs and
// delivers them; the webhook server writes status; the reconciler, woken
// by the applied events, agrees with it. The period does not flip between
// the two writers, and the failed renewal gives one PaymentFailed Warning.
func TestSubscriptionBasilEndpointEndToEnd(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{webhooks: true, webhookAPIVersion: stripefake.APIVersionBasil, resync: time.Hour})
	cus := h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	sub := newSub("s", nil, planItem("pro", 1))
	h.create(sub)
	h.waitReady(sub)
	// Basil subscription events reach their subscription (a payload the
	// server could not place would be answered "ignored").
	g.Eventually(func() []string { return h.outcomesOf("customer.subscription.created") }, 30*time.Second).ShouldNot(BeEmpty())
	g.Expect(h.outcomesOf("customer.subscription.created")).To(HaveEach(BeElementOf(placedOutcomes)), "basil subscription events are placed")

	// The card declines at renewal.
	h.update(cus, func() { cus.Spec.DefaultPaymentMethod = "pm_card_chargeCustomerFail" })
	g.Eventually(func() string { return h.defaultPMToken(cus.Status.CustomerID) }, 20*time.Second).Should(Equal("pm_card_chargeCustomerFail"))
	h.advance(32 * day)
	h.waitStripeStatus(sub, "past_due")
	h.waitCondition(sub, billingv1alpha1.ConditionPaymentFailed, "True", billingv1alpha1.ReasonPaymentDeclined)
	snap := h.snapshot(sub)
	g.Eventually(func() string { h.get(sub); return sub.Status.LatestInvoice.ID }, 30*time.Second).Should(Equal(snap.LatestInvoice.ID))
	// Basil invoice events (the subscription under
	// parent.subscription_details) reach the subscription.
	g.Expect(h.outcomesOf("invoice.payment_failed")).NotTo(BeEmpty())
	g.Expect(h.outcomesOf("invoice.payment_failed")).To(HaveEach(BeElementOf(placedOutcomes)), "basil invoice events are placed")
	g.Expect(sub.Status.LatestInvoice.Currency).To(Equal("usd"))
	// Same-second invoice events the webhook server could not order are
	// settled by the reconciler's read: the attempt then shows.
	g.Eventually(func() string { h.get(sub); return condOf(sub, billingv1alpha1.ConditionPaymentFailed).Message }, 30*time.Second).Should(ContainSubstring("(20.00 USD)"))

	// Settled: the period and PaymentFailed stay as they are (no writer
	// undoes the other), and one failed attempt gave one Warning.
	h.get(sub)
	period := [2]*metav1.Time{sub.Status.CurrentPeriodStart, sub.Status.CurrentPeriodEnd}
	g.Expect(period[0]).NotTo(BeNil())
	g.Expect(period[1]).NotTo(BeNil())
	pf := *condOf(sub, billingv1alpha1.ConditionPaymentFailed)
	g.Consistently(func() string {
		h.get(sub)
		c := condOf(sub, billingv1alpha1.ConditionPaymentFailed)
		return sub.Status.CurrentPeriodStart.String() + sub.Status.CurrentPeriodEnd.String() + c.Message + c.LastTransitionTime.String()
	}, 3*time.Second, 100*time.Millisecond).Should(Equal(period[0].String() + period[1].String() + pf.Message + pf.LastTransitionTime.String()))
	warnings := 0
	for _, e := range h.events() {
		if strings.HasPrefix(e, "Warning PaymentFailed") {
			warnings++
		}
	}
	g.Expect(warnings).To(Equal(1), "one Warning Event for one failed attempt: %v", h.events())

	// Recovery over the same endpoint.
	h.update(cus, func() { cus.Spec.DefaultPaymentMethod = "pm_card_visa" })
	g.Eventually(func() string { return h.defaultPMToken(cus.Status.CustomerID) }, 20*time.Second).Should(Equal("pm_card_visa"))
	h.advance(4 * day)
	h.waitStripeStatus(sub, "active")
	h.waitCondition(sub, billingv1alpha1.ConditionPaymentFailed, "False", billingv1alpha1.ReasonPaid)
	h.waitReady(sub)
}
