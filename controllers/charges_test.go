package controllers

// No charge retry without a reason, and dunning reported as what it is,
// against a running manager and the test-mode Stripe, which counts every
// payment attempt that reaches a card.

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// countEvents counts the recorded Events that contain every one of substrs.
func (h *harness) countEvents(substrs ...string) int {
	n := 0
	for _, e := range h.events() {
		all := true
		for _, s := range substrs {
			all = all && strings.Contains(e, s)
		}
		if all {
			n++
		}
	}
	return n
}

// waitEvents waits until at least n Events contain every one of substrs.
func (h *harness) waitEvents(n int, substrs ...string) {
	h.t.Helper()
	NewWithT(h.t).Eventually(func() int { return h.countEvents(substrs...) }, 45*time.Second, 100*time.Millisecond).Should(BeNumerically(">=", n), "events %v", substrs)
}

// chargesOf returns the payment attempts on the customer's cards.
func chargesOf(fake *stripefake.Server, customerID string) []stripefake.Charge {
	var out []stripefake.Charge
	for _, c := range fake.Charges() {
		if c.Customer == customerID {
			out = append(out, c)
		}
	}
	return out
}

func (h *harness) annotate(obj *billingv1alpha1.StripeSubscription, key, value string) {
	h.t.Helper()
	h.update(obj, func() {
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[key] = value
		obj.SetAnnotations(ann)
	})
}

// TestDeclinedCardChargeLimit: a card that declines every charge, under
// error_if_incomplete, with a resync of half a second. At most
// --max-charge-attempts (3) attempts reach the card in 24 hours whatever
// is asked; then, with the card fixed and 24 hours passed on the test
// clock, exactly one more attempt, which succeeds.
func TestDeclinedCardChargeLimit(t *testing.T) {
	g := NewWithT(t)
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
	h := startHarness(t, harnessOptions{fake: fake, resync: 500 * time.Millisecond, maxChargeAttempts: 3})
	cus := h.billingSetup("pm_card_chargeCustomerFail", map[string]int64{"pro": 2000})
	customerID := cus.Status.CustomerID
	sub := newSub("strict", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.PaymentBehavior = billingv1alpha1.PaymentBehaviorErrorIfIncomplete
	}, planItem("pro", 1))
	h.create(sub)

	// The first attempt is declined: Stalled, PaymentDeclined.
	h.waitCondition(sub, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonPaymentDeclined)
	g.Expect(chargesOf(fake, customerID)).To(HaveLen(1))
	g.Expect(fake.SubscriptionIDs()).To(BeEmpty(), "error_if_incomplete: Stripe created nothing")

	// Passes keep running (each refuses, with an Event); none charges.
	h.waitEvents(3, "ChargeRefused", "No further charge is attempted")
	g.Expect(chargesOf(fake, customerID)).To(HaveLen(1), "no charge without a reason")

	// Two retry requests: two attempts, both declined.
	for i, v := range []string{"first", "second"} {
		h.annotate(sub, billingv1alpha1.AnnotationRetryPayment, v)
		h.waitEvents(2+i, "ChargeDeclined")
		g.Eventually(func() int { return len(chargesOf(fake, customerID)) }, 30*time.Second).Should(Equal(2 + i))
	}

	// A third request within 24 hours: refused, the limit is reached.
	h.annotate(sub, billingv1alpha1.AnnotationRetryPayment, "third")
	h.waitEvents(1, "ChargeRefused", "the limit (--max-charge-attempts=3)")
	g.Expect(chargesOf(fake, customerID)).To(HaveLen(3))
	// The Event precedes the pass's status write.
	g.Eventually(func() string {
		h.get(sub)
		if c := condOf(sub, billingv1alpha1.ConditionStalled); c != nil && c.Reason == billingv1alpha1.ReasonPaymentDeclined {
			return c.Message
		}
		return ""
	}, 30*time.Second).Should(ContainSubstring("the next attempt is allowed at"))
	g.Expect(sub.Status.Charges.Attempts).To(HaveLen(3))

	// The card is fixed: still within the 24 hours, refused.
	refusedBefore := h.countEvents("ChargeRefused", "default payment method changed")
	h.update(cus, func() { cus.Spec.DefaultPaymentMethod = "pm_card_visa" })
	g.Eventually(func() string { return h.defaultPMToken(customerID) }, 30*time.Second).Should(Equal("pm_card_visa"))
	h.waitEvents(refusedBefore+2, "ChargeRefused", "default payment method changed, but", "the next attempt is allowed at")
	g.Expect(chargesOf(fake, customerID)).To(HaveLen(3), "at most --max-charge-attempts in 24 hours")
	t.Logf("charge attempts that reached the card in the first 24 hours: %d (all declined)", len(chargesOf(fake, customerID)))

	// 24 hours later on the test clock: exactly one more attempt, which
	// succeeds.
	fake.AdvanceClock(24*time.Hour + time.Minute)
	h.waitReady(sub)
	charges := chargesOf(fake, customerID)
	g.Expect(charges).To(HaveLen(4))
	g.Expect(charges[3].Succeeded).To(BeTrue())
	g.Expect(fake.SubscriptionIDs()).To(HaveLen(1))
	h.get(sub)
	g.Expect(sub.Status.Charges.Declined).To(BeNil())

	// And nothing more: wait for later passes (their reads of the
	// subscription), then count again.
	reads := fake.Stats().Requests["GET /v1/subscriptions/{id}"]
	g.Eventually(func() int { return fake.Stats().Requests["GET /v1/subscriptions/{id}"] }, 30*time.Second).Should(BeNumerically(">=", reads+3))
	g.Expect(chargesOf(fake, customerID)).To(HaveLen(4))
	t.Logf("charge attempts in all: %d (3 declined, 1 succeeded after the card was fixed and 24 hours passed)", len(chargesOf(fake, customerID)))
}

// TestDunningEndReportedAsWhatItIs: a renewal whose card keeps declining,
// under each of the account's dunning settings: canceled for non-payment
// (not drift; recreate refused on the same card, charges once on a new
// one), unpaid (never charged again), or left past_due.
func TestDunningEndReportedAsWhatItIs(t *testing.T) {
	for _, setting := range []string{stripefake.DunningCancel, stripefake.DunningUnpaid, stripefake.DunningPastDue} {
		t.Run(setting, func(t *testing.T) {
			g := NewWithT(t)
			fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1, Start: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)})
			g.Expect(fake.SetDunningEnd(setting)).To(Succeed())
			h := startHarness(t, harnessOptions{fake: fake, resync: 500 * time.Millisecond})
			cus := h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
			customerID := cus.Status.CustomerID
			sub := newSub("renew", nil, planItem("pro", 1))
			h.create(sub)
			h.waitReady(sub)
			h.update(cus, func() { cus.Spec.DefaultPaymentMethod = "pm_card_chargeCustomerFail" })
			g.Eventually(func() string { return h.defaultPMToken(customerID) }, 30*time.Second).Should(Equal("pm_card_chargeCustomerFail"))
			h.waitReady(cus)
			failingPM := h.stripeCustomer(customerID).DefaultPaymentMethod

			fake.AdvanceClock(31*24*time.Hour + time.Hour) // the renewal is declined
			h.waitStripeStatus(sub, "past_due")
			fake.AdvanceClock(10 * 24 * time.Hour) // three retries, three days apart
			id := sub.Status.SubscriptionID

			switch setting {
			case stripefake.DunningCancel:
				h.waitCondition(sub, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonCanceledForNonPayment)
				h.get(sub)
				g.Expect(sub.Status.Cancellation).To(And(HaveField("EndedBy", billingv1alpha1.ReasonCanceledForNonPayment),
					HaveField("Reason", "payment_failed"), HaveField("FailedPaymentMethod", failingPM)))
				g.Expect(condOf(sub, billingv1alpha1.ConditionBillingDrift).Status).To(Equal(metav1.ConditionFalse), "Stripe's dunning is not drift")

				// recreate on the card that failed: refused.
				h.annotate(sub, billingv1alpha1.AnnotationRecreate, "true")
				h.waitEvent("RecreateRefused")
				g.Expect(fake.SubscriptionIDs()).To(HaveLen(1))

				// A new card: recreate charges it once.
				before := len(chargesOf(fake, customerID))
				h.update(cus, func() { cus.Spec.DefaultPaymentMethod = "pm_card_visa" })
				g.Eventually(func() string { return h.defaultPMToken(customerID) }, 30*time.Second).Should(Equal("pm_card_visa"))
				h.waitReady(cus)
				h.annotate(sub, billingv1alpha1.AnnotationRecreate, "true")
				g.Eventually(func() string { h.get(sub); return sub.Status.SubscriptionID }, 30*time.Second).ShouldNot(Equal(id))
				h.waitReady(sub)
				after := chargesOf(fake, customerID)[before:]
				g.Expect(after).To(HaveLen(1))
				g.Expect(after[0].Succeeded).To(BeTrue())
				g.Expect(after[0].Subscription).To(Equal(sub.Status.SubscriptionID))
			case stripefake.DunningUnpaid:
				h.waitStripeStatus(sub, "unpaid")
				h.waitCondition(sub, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonUnpaid)
				charged := len(chargesOf(fake, customerID))
				// Two more periods: invoices, no charges. Wait until the
				// status shows the newest invoice (the passes ran).
				fake.AdvanceClock(60 * 24 * time.Hour)
				snap, _ := fake.Subscription(id)
				g.Expect(snap.Status).To(Equal("unpaid"))
				g.Eventually(func() string { h.get(sub); return invoiceID(sub) }, 30*time.Second).Should(Equal(snap.LatestInvoice.ID))
				g.Expect(chargesOf(fake, customerID)).To(HaveLen(charged), "Stripe never charges an unpaid subscription")
				g.Expect(snap.LatestInvoice.AttemptCount).To(BeZero())
			case stripefake.DunningPastDue:
				h.waitCondition(sub, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonRetriesExhausted)
				h.get(sub)
				g.Expect(sub.Status.StripeStatus).To(Equal("past_due"))
				g.Expect(sub.Status.Cancellation).To(BeNil())
			}
		})
	}
}

func invoiceID(sub *billingv1alpha1.StripeSubscription) string {
	if sub.Status.LatestInvoice == nil {
		return ""
	}
	return sub.Status.LatestInvoice.ID
}

// TestCancellationAttributed: a cancellation nobody declared is drift
// (CanceledOutsideOperator); one the declaration asked for is not
// (CanceledByOperator).
func TestCancellationAttributed(t *testing.T) {
	g := NewWithT(t)
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1, Start: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)})
	h := startHarness(t, harnessOptions{fake: fake, resync: 500 * time.Millisecond})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	outside := newSub("outside", nil, planItem("pro", 1))
	declared := newSub("declared", nil, planItem("pro", 1))
	h.create(outside)
	h.create(declared)
	h.waitReady(outside)
	h.waitReady(declared)

	g.Expect(fake.DashboardCancelSubscription(outside.Status.SubscriptionID)).To(Succeed())
	h.waitCondition(outside, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonCanceledOutsideOperator)
	g.Expect(condOf(outside, billingv1alpha1.ConditionBillingDrift).Status).To(Equal(metav1.ConditionTrue))

	h.update(declared, func() { declared.Spec.CancelAtPeriodEnd = true })
	g.Eventually(func() bool { return fakeSub(fake, declared.Status.SubscriptionID).CancelAtPeriodEnd }, 30*time.Second).Should(BeTrue())
	h.waitReady(declared)
	fake.AdvanceClock(32 * 24 * time.Hour)
	h.waitCondition(declared, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonCanceledByOperator)
	g.Expect(condOf(declared, billingv1alpha1.ConditionBillingDrift).Status).To(Equal(metav1.ConditionFalse))
	g.Expect(declared.Status.Cancellation).To(HaveField("Comment", operatorCancelComment))
}

func fakeSub(fake *stripefake.Server, id string) stripefake.SubscriptionSnapshot {
	snap, _ := fake.Subscription(id)
	return snap
}
