package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// priceChangeSubscribers is how many subscriptions follow the plan in the
// price change tests.
const priceChangeSubscribers = 20

const getSubscriptionRoute = "GET /v1/subscriptions/{id}"

// priceChangeEnv is a plan with its subscribers on the fake.
type priceChangeEnv struct {
	t    *testing.T
	g    *WithT
	h    *harness
	plan *billingv1alpha1.StripePlan
	subs []*billingv1alpha1.StripeSubscription
}

// newPriceChangeEnv starts a harness without periodic resyncs (every
// subscription pass is woken by a plan change, a webhook or a write) and
// puts n subscribers on a monthly 10.00 usd plan with the policy ("" leaves
// the field to the CRD's default).
func newPriceChangeEnv(t *testing.T, policy billingv1alpha1.PriceChangePolicy, n int) *priceChangeEnv {
	e := &priceChangeEnv{t: t, g: NewWithT(t)}
	e.h = startHarness(t, harnessOptions{webhooks: true, resync: time.Hour})
	e.h.billingSetup("pm_card_visa", nil)
	e.plan = newPlan("pro", 1000, func(s *billingv1alpha1.StripePlanSpec) { s.PriceChangePolicy = policy })
	e.h.create(e.plan)
	e.h.waitReady(e.plan)
	for i := range n {
		sub := newSub(fmt.Sprintf("sub-%02d", i), nil, planItem("pro", 1))
		e.h.create(sub)
		e.subs = append(e.subs, sub)
	}
	for _, sub := range e.subs {
		e.h.waitReady(sub)
	}
	return e
}

// editPlan changes the plan's price terms and waits for its new price; it
// returns the fake's count of subscription reads before the change.
func (e *priceChangeEnv) editPlan(mutate func(*billingv1alpha1.PriceSpec)) (newPrice string, readsBefore int) {
	e.t.Helper()
	e.h.get(e.plan)
	old := e.plan.Status.PriceID
	readsBefore = e.h.fake.Stats().Requests[getSubscriptionRoute]
	e.h.update(e.plan, func() { mutate(&e.plan.Spec.Price) })
	e.g.Eventually(func() string { e.h.get(e.plan); return e.plan.Status.PriceID }, 30*time.Second).ShouldNot(Equal(old))
	return e.plan.Status.PriceID, readsBefore
}

// waitEveryoneRead waits for the positive sign that the plan change reached
// every subscription: each one read Stripe after it (no resync runs).
func (e *priceChangeEnv) waitEveryoneRead(before int) {
	e.t.Helper()
	e.g.Eventually(func() int { return e.h.fake.Stats().Requests[getSubscriptionRoute] }, 60*time.Second, 100*time.Millisecond).
		Should(BeNumerically(">=", before+len(e.subs)), "every subscription read Stripe after the plan changed")
}

// stripeState is what Stripe holds for one subscription: its price and its
// invoices.
func (e *priceChangeEnv) stripeState(sub *billingv1alpha1.StripeSubscription) (string, []stripefake.InvoiceSnapshot) {
	snap, ok := e.h.fake.Subscription(sub.Status.SubscriptionID)
	e.g.Expect(ok).To(BeTrue())
	e.g.Expect(snap.Items).To(HaveLen(1))
	return snap.Items[0].Price, snap.Invoices
}

// expectStripe checks every subscriber's price and invoice count in
// Stripe, now and for a while (nothing moves later either).
func (e *priceChangeEnv) expectStripe(step, price string, invoices []int) {
	e.t.Helper()
	check := func(g Gomega) {
		for i, sub := range e.subs {
			have, inv := e.stripeState(sub)
			g.Expect(have).To(Equal(price), "%s: %s's price", step, sub.Name)
			g.Expect(inv).To(HaveLen(invoices[i]), "%s: %s's invoices", step, sub.Name)
		}
	}
	e.g.Eventually(check, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	e.g.Consistently(check, 2*time.Second, 200*time.Millisecond).Should(Succeed())
}

func (e *priceChangeEnv) invoiceCounts() []int {
	out := make([]int, len(e.subs))
	for i, sub := range e.subs {
		e.h.get(sub)
		_, inv := e.stripeState(sub)
		out[i] = len(inv)
	}
	return out
}

func plus(counts []int, n int) []int {
	out := make([]int, len(counts))
	for i, c := range counts {
		out[i] = c + n
	}
	return out
}

// waitCounts waits for the plan's status.subscriptions.
func (e *priceChangeEnv) waitCounts(want billingv1alpha1.PlanSubscriptions) {
	e.t.Helper()
	e.g.Eventually(func() billingv1alpha1.PlanSubscriptions {
		e.h.get(e.plan)
		if e.plan.Status.Subscriptions == nil {
			return billingv1alpha1.PlanSubscriptions{}
		}
		return *e.plan.Status.Subscriptions
	}, 60*time.Second, 200*time.Millisecond).Should(Equal(want))
}

// expectInSync checks that no subscriber reports drift.
func (e *priceChangeEnv) expectInSync() {
	e.t.Helper()
	for _, sub := range e.subs {
		e.g.Eventually(func() string {
			e.h.get(sub)
			if c := findCondition(sub.Status.Conditions, billingv1alpha1.ConditionBillingDrift); c != nil {
				return string(c.Status) + "/" + c.Reason
			}
			return ""
		}, 30*time.Second).Should(Equal("False/InSync"), sub.Name)
	}
}

// lastInvoices checks every subscriber's latest invoice in Stripe.
func (e *priceChangeEnv) lastInvoices(reason string, amount int64) {
	e.t.Helper()
	for _, sub := range e.subs {
		_, inv := e.stripeState(sub)
		last := inv[len(inv)-1]
		e.g.Expect(last.BillingReason).To(Equal(reason), sub.Name)
		if amount >= 0 {
			e.g.Expect(last.AmountDue).To(Equal(amount), sub.Name)
		}
	}
}

// renew moves the clock past every subscriber's period end.
func (e *priceChangeEnv) renew() {
	e.h.advance(32 * day)
}

// TestPlanPriceChangePolicies edits the amount, then the interval, of a
// plan with 20 subscribers under each policy, and checks in Stripe each
// subscriber's price and invoices after each step.
func TestPlanPriceChangePolicies(t *testing.T) {
	t.Run("Keep (the default)", func(t *testing.T) {
		e := newPriceChangeEnv(t, "", priceChangeSubscribers)
		e.g.Expect(e.plan.Spec.PriceChangePolicy).To(Equal(billingv1alpha1.PriceChangePolicyKeep), "the CRD default")
		first := e.plan.Status.PriceID
		invoices := e.invoiceCounts()
		e.g.Expect(invoices).To(HaveEach(1))

		// The amount: nobody moves, nothing is billed, nothing is drift.
		_, reads := e.editPlan(func(p *billingv1alpha1.PriceSpec) { p.UnitAmount = 1500 })
		e.waitEveryoneRead(reads)
		e.expectStripe("amount edited", first, invoices)
		e.expectInSync()
		e.waitCounts(billingv1alpha1.PlanSubscriptions{OnPreviousPrices: priceChangeSubscribers,
			ByPreviousPrice: []billingv1alpha1.PriceSubscriptions{{PriceID: first, Subscriptions: priceChangeSubscribers}}})

		// The interval: still nobody.
		third, reads := e.editPlan(func(p *billingv1alpha1.PriceSpec) { p.Interval, p.UnitAmount = "year", 15000 })
		e.waitEveryoneRead(reads)
		e.expectStripe("interval edited", first, invoices)
		e.expectInSync()

		// A new subscriber gets the current price.
		newcomer := newSub("newcomer", nil, planItem("pro", 1))
		e.h.create(newcomer)
		e.h.waitReady(newcomer)
		price, _ := e.stripeState(newcomer)
		e.g.Expect(price).To(Equal(third))
		e.waitCounts(billingv1alpha1.PlanSubscriptions{OnCurrentPrice: 1, OnPreviousPrices: priceChangeSubscribers,
			ByPreviousPrice: []billingv1alpha1.PriceSubscriptions{{PriceID: first, Subscriptions: priceChangeSubscribers}}})

		// The renewal bills the kept price.
		e.renew()
		e.expectStripe("renewed", first, plus(invoices, 1))
		e.lastInvoices("subscription_cycle", 1000)
	})

	t.Run("AtNextRenewal", func(t *testing.T) {
		e := newPriceChangeEnv(t, billingv1alpha1.PriceChangePolicyAtNextRenewal, priceChangeSubscribers)
		invoices := e.invoiceCounts()

		// The amount, same interval: each item moves now without
		// proration; nothing is billed before the renewal.
		second, reads := e.editPlan(func(p *billingv1alpha1.PriceSpec) { p.UnitAmount = 1500 })
		e.waitEveryoneRead(reads)
		e.expectStripe("amount edited", second, invoices)
		e.waitCounts(billingv1alpha1.PlanSubscriptions{OnCurrentPrice: priceChangeSubscribers})
		// (No proration is pending either: the renewal below bills exactly
		// one year of the new price.)

		// The interval: a schedule moves each one at the period end;
		// nothing moves or is billed before.
		third, _ := e.editPlan(func(p *billingv1alpha1.PriceSpec) { p.Interval, p.UnitAmount = "year", 15000 })
		e.waitCounts(billingv1alpha1.PlanSubscriptions{OnPreviousPrices: priceChangeSubscribers, ScheduledToMove: priceChangeSubscribers,
			ByPreviousPrice: []billingv1alpha1.PriceSubscriptions{{PriceID: second, Subscriptions: priceChangeSubscribers}}})
		for _, sub := range e.subs {
			e.h.get(sub)
			e.g.Expect(sub.Status.ScheduledPriceChange).NotTo(BeNil(), sub.Name)
			e.g.Expect(sub.Status.ScheduledPriceChange.PriceIDs).To(Equal([]string{third}))
			e.g.Expect(sub.Status.ScheduledPriceChange.At).To(Equal(sub.Status.CurrentPeriodEnd))
		}
		e.expectStripe("interval edited", second, invoices)
		e.expectInSync()

		// Past the renewal: every subscriber is on the yearly price,
		// billed once for a year.
		e.renew()
		e.expectStripe("renewed", third, plus(invoices, 1))
		e.lastInvoices("subscription_cycle", 15000)
		e.waitCounts(billingv1alpha1.PlanSubscriptions{OnCurrentPrice: priceChangeSubscribers})
		for _, sub := range e.subs {
			e.g.Eventually(func() *billingv1alpha1.ScheduledPriceChange {
				e.h.get(sub)
				return sub.Status.ScheduledPriceChange
			}, 30*time.Second).Should(BeNil(), sub.Name)
			e.g.Expect(sub.Status.CurrentPeriodEnd.Sub(sub.Status.CurrentPeriodStart.Time)).To(BeNumerically(">", 360*day))
		}
		e.expectInSync()
	})

	t.Run("Immediately", func(t *testing.T) {
		e := newPriceChangeEnv(t, billingv1alpha1.PriceChangePolicyImmediately, priceChangeSubscribers)
		invoices := e.invoiceCounts()

		// The amount: moved now with create_prorations (the subscription's
		// default), billed on the next invoice.
		second, _ := e.editPlan(func(p *billingv1alpha1.PriceSpec) { p.UnitAmount = 1500 })
		e.expectStripe("amount edited", second, invoices)

		// The interval: moved now; Stripe starts a yearly period and bills
		// it at once.
		third, _ := e.editPlan(func(p *billingv1alpha1.PriceSpec) { p.Interval, p.UnitAmount = "year", 15000 })
		e.expectStripe("interval edited", third, plus(invoices, 1))
		e.lastInvoices("subscription_update", -1)
		e.waitCounts(billingv1alpha1.PlanSubscriptions{OnCurrentPrice: priceChangeSubscribers})
		e.expectInSync()
	})
}

// TestPlanCurrencyChangeMovesNobody: even under Immediately, a new currency
// moves no existing subscription (its customer bills in one currency); the
// plan says so, and a new subscription gets the new price.
func TestPlanCurrencyChangeMovesNobody(t *testing.T) {
	e := newPriceChangeEnv(t, billingv1alpha1.PriceChangePolicyImmediately, 3)
	first := e.plan.Status.PriceID
	invoices := e.invoiceCounts()
	updates := e.h.fake.Stats().Requests["POST /v1/subscriptions/{id}"]
	eur, reads := e.editPlan(func(p *billingv1alpha1.PriceSpec) { p.Currency = "eur" })
	e.h.waitCondition(e.plan, billingv1alpha1.ConditionExistingSubscriptionsKept, "True", billingv1alpha1.ReasonCurrencyChanged)
	e.g.Expect(findCondition(e.plan.Status.Conditions, billingv1alpha1.ConditionExistingSubscriptionsKept).Message).To(ContainSubstring("usd to eur"))
	e.waitEveryoneRead(reads)
	e.expectStripe("currency edited", first, invoices)
	// Not even tried: Stripe would refuse it (the customer bills in usd).
	e.g.Expect(e.h.fake.Stats().Requests["POST /v1/subscriptions/{id}"]).To(Equal(updates), "no subscription update was sent")
	for _, sub := range e.subs {
		e.h.waitReady(sub)
	}
	e.expectInSync()

	// A new customer's subscription gets the eur price.
	cus2 := newCustomer("cus2", func(s *billingv1alpha1.StripeCustomerSpec) { s.DefaultPaymentMethod = "pm_card_visa" })
	e.h.create(cus2)
	e.h.waitReady(cus2)
	newcomer := newSub("newcomer", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.CustomerRef = &billingv1alpha1.LocalObjectReference{Name: "cus2"}
	}, planItem("pro", 1))
	e.h.create(newcomer)
	e.h.waitReady(newcomer)
	price, _ := e.stripeState(newcomer)
	e.g.Expect(price).To(Equal(eur))
	e.waitCounts(billingv1alpha1.PlanSubscriptions{OnCurrentPrice: 1, OnPreviousPrices: 3,
		ByPreviousPrice: []billingv1alpha1.PriceSubscriptions{{PriceID: first, Subscriptions: 3}}})
	var plan billingv1alpha1.StripePlan
	e.g.Expect(e.h.c.Get(context.Background(), client.ObjectKeyFromObject(e.plan), &plan)).To(Succeed())
	e.g.Expect(plan.Status.PreviousPriceIDs).To(Equal([]string{first}))
}

// TestPlanPolicyBackToKeepReleasesSchedule: moves scheduled under
// AtNextRenewal are undone when the plan goes back to Keep; the renewal
// then bills the kept price.
func TestPlanPolicyBackToKeepReleasesSchedule(t *testing.T) {
	e := newPriceChangeEnv(t, billingv1alpha1.PriceChangePolicyAtNextRenewal, 3)
	first := e.plan.Status.PriceID
	invoices := e.invoiceCounts()
	_, _ = e.editPlan(func(p *billingv1alpha1.PriceSpec) { p.Interval, p.UnitAmount = "year", 10000 })
	e.waitCounts(billingv1alpha1.PlanSubscriptions{OnPreviousPrices: 3, ScheduledToMove: 3,
		ByPreviousPrice: []billingv1alpha1.PriceSubscriptions{{PriceID: first, Subscriptions: 3}}})

	e.h.update(e.plan, func() { e.plan.Spec.PriceChangePolicy = billingv1alpha1.PriceChangePolicyKeep })
	e.waitCounts(billingv1alpha1.PlanSubscriptions{OnPreviousPrices: 3,
		ByPreviousPrice: []billingv1alpha1.PriceSubscriptions{{PriceID: first, Subscriptions: 3}}})
	e.h.waitEvent("PriceChangeUnscheduled")
	for _, sub := range e.subs {
		e.h.get(sub)
		e.g.Expect(sub.Status.ScheduledPriceChange).To(BeNil())
		stripeSub, err := e.h.stripe.GetSubscription(context.Background(), sub.Status.SubscriptionID)
		e.g.Expect(err).NotTo(HaveOccurred())
		e.g.Expect(stripeSub.ScheduleID).To(BeEmpty(), "released in Stripe")
	}
	e.renew()
	e.expectStripe("renewed", first, plus(invoices, 1))
	e.lastInvoices("subscription_cycle", 1000)
}

// TestDeletingSubscriptionReleasesItsSchedule: a subscription deleted
// (cancel at period end) while a move is scheduled loses the schedule, so
// nothing moves or bills at the period end.
func TestDeletingSubscriptionReleasesItsSchedule(t *testing.T) {
	e := newPriceChangeEnv(t, billingv1alpha1.PriceChangePolicyAtNextRenewal, 1)
	_, _ = e.editPlan(func(p *billingv1alpha1.PriceSpec) { p.Interval, p.UnitAmount = "year", 10000 })
	sub := e.subs[0]
	e.g.Eventually(func() *billingv1alpha1.ScheduledPriceChange { e.h.get(sub); return sub.Status.ScheduledPriceChange }, 30*time.Second).ShouldNot(BeNil())
	id := sub.Status.SubscriptionID
	e.h.delete(sub)
	e.h.waitGone(sub)
	stripeSub, err := e.h.stripe.GetSubscription(context.Background(), id)
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(stripeSub.ScheduleID).To(BeEmpty(), "released")
	e.g.Expect(stripeSub.CancelAtPeriodEnd).To(BeTrue())
	e.renew()
	snap, _ := e.h.fake.Subscription(id)
	e.g.Expect(snap.Status).To(Equal("canceled"))
	e.g.Expect(snap.Invoices).To(HaveLen(1), "only the first invoice")
}
