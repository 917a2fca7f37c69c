package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// These tests run the three reconcilers and the webhook server against the
// stateful fake over HTTP: signed events flow from the fake to the webhook
// server, which writes status; the reconcilers converge Stripe.

const day = 24 * time.Hour

// billingSetup creates a ready customer (with pm) and plans; it returns
// the customer.
func (h *harness) billingSetup(pm string, plans map[string]int64) *billingv1alpha1.StripeCustomer {
	h.t.Helper()
	cus := newCustomer("cus", func(s *billingv1alpha1.StripeCustomerSpec) { s.DefaultPaymentMethod = pm })
	h.create(cus)
	for name, amount := range plans {
		p := newPlan(name, amount, nil)
		h.create(p)
		h.waitReady(p)
	}
	h.waitReady(cus)
	return cus
}

func newSub(name string, mutate func(*billingv1alpha1.StripeSubscriptionSpec), items ...billingv1alpha1.SubscriptionItem) *billingv1alpha1.StripeSubscription {
	s := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerRef: &billingv1alpha1.LocalObjectReference{Name: "cus"}, Items: items}}
	if mutate != nil {
		mutate(&s.Spec)
	}
	return s
}

func planItem(plan string, qty int64) billingv1alpha1.SubscriptionItem {
	return billingv1alpha1.SubscriptionItem{PlanRef: &billingv1alpha1.LocalObjectReference{Name: plan}, Quantity: qty}
}

func (h *harness) snapshot(sub *billingv1alpha1.StripeSubscription) stripefake.SubscriptionSnapshot {
	h.t.Helper()
	h.get(sub)
	snap, ok := h.fake.Subscription(sub.Status.SubscriptionID)
	NewWithT(h.t).Expect(ok).To(BeTrue(), "subscription %q in the fake", sub.Status.SubscriptionID)
	return snap
}

// advance moves the test clock and lets the events reach the webhook server.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.fake.AdvanceClock(d)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	NewWithT(h.t).Expect(h.fake.FlushEvents(ctx)).To(Succeed())
}

func (h *harness) waitStripeStatus(sub *billingv1alpha1.StripeSubscription, status string) {
	h.t.Helper()
	NewWithT(h.t).Eventually(func() string { h.get(sub); return sub.Status.StripeStatus }, 30*time.Second, 100*time.Millisecond).Should(Equal(status))
}

func TestSubscriptionTrialThenActiveWithWebhooks(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{webhooks: true, resync: time.Hour}) // status must come from webhooks
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	days := int64(7)
	sub := newSub("trial", func(s *billingv1alpha1.StripeSubscriptionSpec) { s.TrialPeriodDays = &days }, planItem("pro", 2))
	h.create(sub)
	h.waitReady(sub)
	g.Expect(sub.Status.StripeStatus).To(Equal("trialing"))
	g.Expect(sub.Status.TrialEnd).NotTo(BeNil())
	g.Expect(sub.Status.ExpectedAmount).To(Equal(&billingv1alpha1.Amount{Amount: 4000, Currency: "usd"}))
	g.Expect(sub.Status.SubscriptionID).To(HavePrefix("sub_"))

	h.advance(8 * day)
	h.waitStripeStatus(sub, "active")
	g.Eventually(func() string {
		h.get(sub)
		if sub.Status.LatestInvoice == nil {
			return ""
		}
		return fmt.Sprintf("%s/%d", sub.Status.LatestInvoice.Status, sub.Status.LatestInvoice.AmountPaid)
	}, 30*time.Second).Should(Equal("paid/4000"))
	// The renewal's events reached the subscription: the webhook server
	// applied them, or judged them older than the operator's read they
	// woke (resync is an hour away).
	g.Expect(h.outcomesOf("invoice.paid")).NotTo(BeEmpty())
	g.Expect(h.outcomesOf("invoice.paid")).To(HaveEach(BeElementOf(placedOutcomes)))
	g.Expect(h.outcomesOf("customer.subscription.updated")).NotTo(BeEmpty())
	g.Expect(h.outcomesOf("customer.subscription.updated")).To(HaveEach(BeElementOf(placedOutcomes)))
	g.Expect(h.fake.Stats().Creates["subscription"]).To(Equal(1))
}

func TestSubscriptionChangesForEachProrationBehavior(t *testing.T) {
	for _, behavior := range []billingv1alpha1.ProrationBehavior{
		billingv1alpha1.ProrationBehaviorCreateProrations, billingv1alpha1.ProrationBehaviorNone, billingv1alpha1.ProrationBehaviorAlwaysInvoice,
	} {
		t.Run(string(behavior), func(t *testing.T) {
			g := NewWithT(t)
			h := startHarness(t, harnessOptions{webhooks: true})
			h.billingSetup("pm_card_visa", map[string]int64{"basic": 1000, "pro": 3000})
			sub := newSub("s", func(s *billingv1alpha1.StripeSubscriptionSpec) { s.ProrationBehavior = behavior }, planItem("basic", 1))
			h.create(sub)
			h.waitReady(sub)
			h.advance(10 * day) // mid-period
			before := h.snapshot(sub)
			itemID := before.Items[0].ID

			// Upgrade (swap the plan) and change the quantity in one spec change.
			h.update(sub, func() { sub.Spec.Items[0] = planItem("pro", 2) })
			var pro billingv1alpha1.StripePlan
			g.Expect(h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "pro"}, &pro)).To(Succeed())
			g.Eventually(func() []stripefake.ItemSnapshot { return h.snapshot(sub).Items }, 20*time.Second).Should(
				Equal([]stripefake.ItemSnapshot{{ID: itemID, Price: pro.Status.PriceID, Quantity: 2}}), "a swap keeps the item")
			h.waitReady(sub)
			after := h.snapshot(sub)
			newInvoices := after.Invoices[len(before.Invoices):]
			switch behavior {
			case billingv1alpha1.ProrationBehaviorAlwaysInvoice:
				g.Expect(newInvoices).To(HaveLen(1))
				g.Expect(newInvoices[0].BillingReason).To(Equal("subscription_update"))
				g.Expect(newInvoices[0].Prorations).To(BeNumerically(">", 0))
				g.Expect(newInvoices[0].Status).To(Equal("paid"))
			default:
				g.Expect(newInvoices).To(BeEmpty())
			}
			// The next renewal carries the pending prorations only for
			// create_prorations.
			h.advance(25 * day)
			renewal := h.snapshot(sub).LatestInvoice
			g.Expect(renewal.BillingReason).To(Equal("subscription_cycle"))
			if behavior == billingv1alpha1.ProrationBehaviorCreateProrations {
				g.Expect(renewal.Prorations).To(BeNumerically(">", 0))
			} else {
				g.Expect(renewal.Prorations).To(BeZero())
			}

			// Downgrade back.
			h.update(sub, func() { sub.Spec.Items[0] = planItem("basic", 1) })
			g.Eventually(func() int64 { return h.snapshot(sub).Items[0].Quantity }, 20*time.Second).Should(Equal(int64(1)))
			g.Expect(h.snapshot(sub).Items[0].ID).To(Equal(itemID))
			g.Expect(h.fake.Stats().Creates["subscription"]).To(Equal(1))
		})
	}
}

func TestSubscriptionCancelAtPeriodEndResumePauseUnpause(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{webhooks: true})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	sub := newSub("s", nil, planItem("pro", 1))
	h.create(sub)
	h.waitReady(sub)

	h.update(sub, func() { sub.Spec.CancelAtPeriodEnd = true })
	g.Eventually(func() bool { return h.snapshot(sub).CancelAtPeriodEnd }, 20*time.Second).Should(BeTrue())
	g.Eventually(func() bool { h.get(sub); return sub.Status.CancelAtPeriodEnd && sub.Status.CancelAt != nil }, 20*time.Second).Should(BeTrue())
	h.update(sub, func() { sub.Spec.CancelAtPeriodEnd = false })
	g.Eventually(func() bool { return h.snapshot(sub).CancelAtPeriodEnd }, 20*time.Second).Should(BeFalse())

	h.update(sub, func() { sub.Spec.PauseCollection = &billingv1alpha1.PauseCollection{Behavior: "void"} })
	g.Eventually(func() string { return h.snapshot(sub).PauseCollection }, 20*time.Second).Should(Equal("void"))
	g.Eventually(func() string { h.get(sub); return sub.Status.PauseCollection }, 20*time.Second).Should(Equal("void"))
	h.advance(32 * day)
	g.Expect(h.snapshot(sub).LatestInvoice.Status).To(Equal("void"), "paused collection voids the renewal invoice")
	h.update(sub, func() { sub.Spec.PauseCollection = nil })
	g.Eventually(func() string { return h.snapshot(sub).PauseCollection }, 20*time.Second).Should(BeEmpty())
	h.waitReady(sub)
}

func TestSubscriptionDeletionPolicies(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{webhooks: true})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	cases := []struct {
		policy     billingv1alpha1.SubscriptionDeletionPolicy
		goneBefore bool
		status     string
		cancelEnd  bool
	}{
		{billingv1alpha1.SubscriptionDeletionPolicyCancel, false, "canceled", false},
		{billingv1alpha1.SubscriptionDeletionPolicyCancelAtPeriodEnd, false, "active", true},
		{billingv1alpha1.SubscriptionDeletionPolicyOrphan, false, "active", false},
		{billingv1alpha1.SubscriptionDeletionPolicyCancel, true, "canceled", false},
	}
	for i, tc := range cases {
		sub := newSub(fmt.Sprintf("del-%d", i), func(s *billingv1alpha1.StripeSubscriptionSpec) { s.DeletionPolicy = tc.policy }, planItem("pro", 1))
		h.create(sub)
		h.waitReady(sub)
		id := sub.Status.SubscriptionID
		if tc.goneBefore {
			g.Expect(h.fake.DashboardCancelSubscription(id)).To(Succeed())
		}
		h.delete(sub)
		h.waitGone(sub)
		snap, _ := h.fake.Subscription(id)
		g.Expect(snap.Status).To(Equal(tc.status), "case %d", i)
		g.Expect(snap.CancelAtPeriodEnd).To(Equal(tc.cancelEnd), "case %d", i)
	}
}

func TestSubscriptionDeclinedCardThenRecovery(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{webhooks: true})
	cus := h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	sub := newSub("s", nil, planItem("pro", 1))
	h.create(sub)
	h.waitReady(sub)

	// The card starts declining; the renewal fails.
	h.update(cus, func() { cus.Spec.DefaultPaymentMethod = "pm_card_chargeCustomerFail" })
	g.Eventually(func() string { return h.defaultPMToken(cus.Status.CustomerID) }, 20*time.Second).Should(Equal("pm_card_chargeCustomerFail"))
	h.advance(32 * day)
	h.waitStripeStatus(sub, "past_due")
	h.waitCondition(sub, billingv1alpha1.ConditionPaymentFailed, "True", billingv1alpha1.ReasonPaymentDeclined)
	// The renewal's invoice events share one second: the webhook server
	// defers those it cannot order and the reconciler's read fills in the
	// attempt.
	g.Eventually(func() string { h.get(sub); return condOf(sub, billingv1alpha1.ConditionPaymentFailed).Message }, 30*time.Second).Should(ContainSubstring("attempt"))
	h.waitCondition(sub, billingv1alpha1.ConditionReady, "False", "")

	// Fixing the payment method: the next retry pays.
	h.update(cus, func() { cus.Spec.DefaultPaymentMethod = "pm_card_visa" })
	g.Eventually(func() string { return h.defaultPMToken(cus.Status.CustomerID) }, 20*time.Second).Should(Equal("pm_card_visa"))
	h.advance(4 * day)
	h.waitStripeStatus(sub, "active")
	h.waitCondition(sub, billingv1alpha1.ConditionPaymentFailed, "False", billingv1alpha1.ReasonPaid)
	h.waitReady(sub)
}

func TestSubscriptionDashboardEditObserveAndManage(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{webhooks: true})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})

	managed := newSub("managed", nil, planItem("pro", 2))
	h.create(managed)
	h.waitReady(managed)
	snap := h.snapshot(managed)
	g.Expect(h.fake.DashboardSetItemQuantity(snap.ID, snap.Items[0].ID, 5)).To(Succeed())
	g.Eventually(func() int64 { return h.snapshot(managed).Items[0].Quantity }, 20*time.Second).Should(Equal(int64(2)))
	h.waitEvent("DriftCorrected")
	h.waitReady(managed)

	// Observe mode adopts the same subscription's twin and only reports.
	other := newSub("source", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.DeletionPolicy = billingv1alpha1.SubscriptionDeletionPolicyOrphan
	}, planItem("pro", 1))
	h.create(other)
	h.waitReady(other)
	h.delete(other)
	h.waitGone(other)
	// What resource "source" left behind belongs to it: another resource
	// cannot adopt it, not even to observe it.
	writes := h.fake.Stats().Writes
	taker := newSub("taker", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.SubscriptionID, s.ManagementPolicy = other.Status.SubscriptionID, billingv1alpha1.ManagementPolicyObserve
	}, planItem("pro", 1))
	h.create(taker)
	h.waitCondition(taker, billingv1alpha1.ConditionStalled, "True", ReasonOwnedElsewhere)
	g.Expect(condOf(taker, billingv1alpha1.ConditionStalled).Message).To(ContainSubstring(h.ns + "/source"))
	g.Expect(h.fake.Stats().Writes).To(Equal(writes))

	// A subscription made outside the operator may be observed once the
	// namespace allows adoption.
	var pro billingv1alpha1.StripePlan
	g.Expect(h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "pro"}, &pro)).To(Succeed())
	var cus billingv1alpha1.StripeCustomer
	g.Expect(h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "cus"}, &cus)).To(Succeed())
	made, err := h.stripe.CreateSubscription(context.Background(), stripe.Owner{UID: "by-hand"}, "", stripe.SubscriptionCreateParams{
		CustomerID: cus.Status.CustomerID, Items: []stripe.SubscriptionItemParams{{PriceID: pro.Status.PriceID, Quantity: 1}}})
	g.Expect(err).NotTo(HaveOccurred())
	h.allowAdoption()
	id := made.ID
	writes = h.fake.Stats().Writes
	observed := newSub("observed", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.SubscriptionID, s.ManagementPolicy = id, billingv1alpha1.ManagementPolicyObserve
	}, planItem("pro", 1))
	h.create(observed)
	h.waitReady(observed)
	osnap := h.snapshot(observed)
	g.Expect(h.fake.DashboardSetItemQuantity(id, osnap.Items[0].ID, 4)).To(Succeed())
	h.waitCondition(observed, billingv1alpha1.ConditionBillingDrift, "True", billingv1alpha1.ReasonDrifted)
	g.Expect(condOf(observed, billingv1alpha1.ConditionBillingDrift).Message).To(ContainSubstring("quantity"))
	g.Expect(h.snapshot(observed).Items[0].Quantity).To(Equal(int64(4)), "Observe mode does not correct")
	g.Expect(h.fake.Stats().Writes).To(Equal(writes), "Observe mode wrote nothing to Stripe")
}

func TestSubscriptionCrashAndFaultsMakeExactlyOne(t *testing.T) {
	g := NewWithT(t)
	var crash *crashingClient
	h := startHarness(t, harnessOptions{webhooks: true, wrapClient: func(c client.Client) client.Client {
		crash = &crashingClient{Client: c, failures: 2, match: func(o client.Object) bool {
			s, ok := o.(*billingv1alpha1.StripeSubscription)
			return ok && s.Status.SubscriptionID != ""
		}}
		return crash
	}})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	h.fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/subscriptions", Status: 500, Count: 2})
	h.fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/subscriptions", Status: 429, RetryAfter: time.Second, Count: 2})
	h.fake.InjectFault(stripefake.Fault{Method: "GET", Path: "/v1/subscriptions", Latency: 100 * time.Millisecond, Count: 3})
	sub := newSub("s", nil, planItem("pro", 1))
	h.create(sub)
	h.waitReady(sub)
	g.Expect(crash.didCrash()).To(BeTrue())
	g.Expect(h.fake.Stats().Creates["subscription"]).To(Equal(1))
	g.Expect(h.fake.SubscriptionIDs()).To(HaveLen(1))
}

func TestSubscriptionFollowsPlanRolloverAndEndedIsNotRecreated(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{webhooks: true})
	h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	var pro billingv1alpha1.StripePlan
	g.Expect(h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "pro"}, &pro)).To(Succeed())
	oldPrice := pro.Status.PriceID
	follows := newSub("follows", nil, planItem("pro", 1))
	pinned := newSub("pinned", nil, billingv1alpha1.SubscriptionItem{PriceID: oldPrice, Quantity: 1})
	h.create(follows)
	h.create(pinned)
	h.waitReady(follows)
	h.waitReady(pinned)

	h.update(&pro, func() {
		pro.Spec.Price.UnitAmount = 2400
		pro.Spec.PriceChangePolicy = billingv1alpha1.PriceChangePolicyImmediately
	})
	g.Eventually(func() string { h.get(&pro); return pro.Status.PriceID }, 20*time.Second).ShouldNot(Equal(oldPrice))
	g.Eventually(func() string { return h.snapshot(follows).Items[0].Price }, 30*time.Second).Should(Equal(pro.Status.PriceID))
	g.Expect(h.snapshot(pinned).Items[0].Price).To(Equal(oldPrice))
	// The subscription may still show Ready from before the rollover: wait
	// for the status that reflects the new price.
	g.Eventually(func() int64 {
		h.get(follows)
		if a := follows.Status.ExpectedAmount; a != nil {
			return a.Amount
		}
		return 0
	}, 30*time.Second).Should(Equal(int64(2400)))
	h.waitReady(follows)

	// Canceled outside the operator: reported, not recreated.
	id := follows.Status.SubscriptionID
	g.Expect(h.fake.DashboardCancelSubscription(id)).To(Succeed())
	h.waitCondition(follows, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonCanceledOutsideOperator)
	// A later pass, told apart by its generation: a spec change that cannot
	// reach an ended subscription, and Ready for that generation
	// (observedGeneration) are the sign it ran. It must not create a
	// subscription either.
	h.update(follows, func() { follows.Spec.Metadata = billingv1alpha1.Metadata{"touched": "after-cancel"} })
	h.waitPassOfGeneration(follows)
	g.Expect(h.fake.SubscriptionIDs()).To(HaveLen(2), "no silent recreation")
	h.waitCondition(follows, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonCanceledOutsideOperator)
	g.Expect(h.fake.Stats().Creates["subscription"]).To(Equal(2), "no silent recreation")

	// The documented annotation recreates it.
	h.update(follows, func() {
		ann := follows.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[billingv1alpha1.AnnotationRecreate] = "true"
		follows.SetAnnotations(ann)
	})
	g.Eventually(func() string { h.get(follows); return follows.Status.SubscriptionID }, 30*time.Second).ShouldNot(Equal(id))
	h.waitReady(follows)
	g.Expect(h.fake.SubscriptionIDs()).To(HaveLen(3))
}
