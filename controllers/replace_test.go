package controllers

import (
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// TestPlanRolloverCrashMakesOnePrice: the core's replacement is exactly
// once across a crash. The operator "dies" twice between creating the
// rollover's new price and recording it; the passes after it find that
// price (replacement.find) instead of creating another, record it with the
// old one among previousPriceIDs, and archive the old one.
func TestPlanRolloverCrashMakesOnePrice(t *testing.T) {
	g := NewWithT(t)
	var first atomic.Value
	first.Store("")
	var crash *crashingClient
	h := startHarness(t, harnessOptions{wrapClient: func(c client.Client) client.Client {
		crash = &crashingClient{Client: c, failures: 2, match: func(o client.Object) bool {
			p, ok := o.(*billingv1alpha1.StripePlan)
			old := first.Load().(string)
			return ok && old != "" && p.Status.PriceID != "" && p.Status.PriceID != old
		}}
		return crash
	}})
	plan := newPlan("roll", 900, nil)
	h.create(plan)
	h.waitReady(plan)
	old := plan.Status.PriceID
	first.Store(old)

	h.update(plan, func() { plan.Spec.Price.UnitAmount = 1200 })
	h.waitReady(plan)
	g.Expect(crash.didCrash()).To(BeTrue(), "the rollover's record crashed")
	g.Expect(plan.Status.PriceID).NotTo(Equal(old))
	g.Expect(plan.Status.PreviousPriceIDs).To(Equal([]string{old}))
	g.Expect(h.fake.Stats().Creates["price"]).To(Equal(2), "one price, then exactly one for the new terms")
	p, err := h.stripe.GetPrice(t.Context(), old)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.Active).To(BeFalse(), "the old price is archived")
}
