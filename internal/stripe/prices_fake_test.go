package stripe_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// priceChangeFixture is a paying customer on a monthly 10 usd price, with
// a yearly price, a monthly 15 usd price and a monthly eur price of the
// same product.
type priceChangeFixture struct {
	c                                    *stripe.Client
	fake                                 *stripefake.Server
	customer                             string
	monthly, yearly, monthly15, euro     string
	sub                                  *stripe.Subscription
	invoicesAtStart                      int
	periodStartAtStart, periodEndAtStart int64
}

func newPriceChangeFixture(t *testing.T) *priceChangeFixture {
	g := NewWithT(t)
	ctx := context.Background()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1})
	f := &priceChangeFixture{c: c, fake: fake}
	cus, err := c.CreateCustomer(ctx, owner, stripe.NewIntent(), stripe.CustomerParams{Email: str("a@example.com")})
	g.Expect(err).NotTo(HaveOccurred())
	pm, err := c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.UpdateCustomer(ctx, owner, cus.ID, stripe.CustomerParams{DefaultPaymentMethod: &pm})
	g.Expect(err).NotTo(HaveOccurred())
	f.customer = cus.ID
	prod, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("Pro")})
	g.Expect(err).NotTo(HaveOccurred())
	mk := func(cur string, amount int64, interval string) string {
		p, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: cur, UnitAmount: amount, Interval: interval, IntervalCount: 1})
		g.Expect(err).NotTo(HaveOccurred())
		return p.ID
	}
	f.monthly, f.yearly, f.monthly15, f.euro = mk("usd", 1000, "month"), mk("usd", 10000, "year"), mk("usd", 1500, "month"), mk("eur", 1000, "month")
	f.sub, err = c.CreateSubscription(ctx, owner, stripe.NewIntent(), stripe.SubscriptionCreateParams{CustomerID: cus.ID,
		Items: []stripe.SubscriptionItemParams{{PriceID: f.monthly, Quantity: 1}}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.sub.Status).To(Equal("active"))
	// Ten days into the period.
	fake.AdvanceClock(10 * 24 * time.Hour)
	f.invoicesAtStart = f.invoices(t)
	f.periodStartAtStart, f.periodEndAtStart = f.sub.CurrentPeriodStart, f.sub.CurrentPeriodEnd
	return f
}

func (f *priceChangeFixture) invoices(t *testing.T) int {
	snap, ok := f.fake.Subscription(f.sub.ID)
	if !ok {
		t.Fatalf("subscription %s not in the fake", f.sub.ID)
	}
	return len(snap.Invoices)
}

// TestPriceTermsAsStripeHasThem: a classic subscription refuses items of
// mixed intervals or currencies, and a customer holds one currency.
func TestPriceTermsAsStripeHasThem(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newPriceChangeFixture(t)
	_, err := f.c.UpdateSubscription(ctx, owner, f.sub.ID, stripe.SubscriptionUpdateParams{Items: []stripe.SubscriptionItemUpdate{{PriceID: f.yearly, Quantity: 1}}})
	g.Expect(err).To(MatchError(ContainSubstring("Found mismatch in interval field")))
	_, err = f.c.UpdateSubscription(ctx, owner, f.sub.ID, stripe.SubscriptionUpdateParams{Items: []stripe.SubscriptionItemUpdate{{PriceID: f.euro, Quantity: 1}}})
	g.Expect(err).To(MatchError(ContainSubstring("Found mismatch in currency field")))
	// Swapping the one item to eur: the customer bills in usd.
	_, err = f.c.UpdateSubscription(ctx, owner, f.sub.ID, stripe.SubscriptionUpdateParams{Items: []stripe.SubscriptionItemUpdate{{ID: f.sub.Items[0].ID, PriceID: f.euro, Quantity: 1}}})
	g.Expect(err).To(MatchError(ContainSubstring("You cannot combine currencies on a single customer")))
	// A second subscription in eur for the same customer.
	_, err = f.c.CreateSubscription(ctx, owner, stripe.NewIntent(), stripe.SubscriptionCreateParams{CustomerID: f.customer,
		Items: []stripe.SubscriptionItemParams{{PriceID: f.euro, Quantity: 1}}})
	g.Expect(err).To(MatchError(ContainSubstring("You cannot combine currencies on a single customer")))
	g.Expect(f.invoices(t)).To(Equal(f.invoicesAtStart), "a refused update bills nothing")
}

// TestIntervalChangeResetsPeriodAndInvoices: moving to a price with another
// interval starts a new period now and invoices it at once, crediting the
// unused time unless proration_behavior is none; the same interval with
// proration_behavior none changes nothing billed before the renewal.
func TestIntervalChangeResetsPeriodAndInvoices(t *testing.T) {
	for _, tc := range []struct {
		proration  string
		wantCredit bool
	}{{"create_prorations", true}, {"none", false}} {
		t.Run(tc.proration, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			f := newPriceChangeFixture(t)
			sub, err := f.c.UpdateSubscription(ctx, owner, f.sub.ID, stripe.SubscriptionUpdateParams{ProrationBehavior: tc.proration,
				Items: []stripe.SubscriptionItemUpdate{{ID: f.sub.Items[0].ID, PriceID: f.yearly, Quantity: 1}}})
			g.Expect(err).NotTo(HaveOccurred())
			now := f.fake.Now().Unix()
			g.Expect(sub.CurrentPeriodStart).To(Equal(now), "the billing cycle anchor moves to now")
			g.Expect(sub.CurrentPeriodEnd).To(Equal(f.fake.Now().AddDate(1, 0, 0).Unix()))
			g.Expect(f.invoices(t)).To(Equal(f.invoicesAtStart + 1))
			inv := sub.LatestInvoice
			g.Expect(inv.BillingReason).To(Equal("subscription_update"))
			g.Expect(inv.Status).To(Equal("paid"))
			if tc.wantCredit {
				g.Expect(inv.AmountDue).To(BeNumerically("<", 10000))
				g.Expect(inv.AmountDue).To(BeNumerically(">", 10000-1000))
			} else {
				g.Expect(inv.AmountDue).To(Equal(int64(10000)), "no credit for the unused month")
			}
		})
	}
	t.Run("same interval, proration none", func(t *testing.T) {
		g := NewWithT(t)
		ctx := context.Background()
		f := newPriceChangeFixture(t)
		sub, err := f.c.UpdateSubscription(ctx, owner, f.sub.ID, stripe.SubscriptionUpdateParams{ProrationBehavior: "none",
			Items: []stripe.SubscriptionItemUpdate{{ID: f.sub.Items[0].ID, PriceID: f.monthly15, Quantity: 1}}})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(sub.CurrentPeriodEnd).To(Equal(f.periodEndAtStart))
		g.Expect(f.invoices(t)).To(Equal(f.invoicesAtStart))
		f.fake.AdvanceClock(time.Duration(f.periodEndAtStart-f.fake.Now().Unix()+60) * time.Second)
		sub, err = f.c.GetSubscription(ctx, f.sub.ID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(sub.LatestInvoice.AmountDue).To(Equal(int64(1500)), "the renewal bills the new price")
		g.Expect(sub.LatestInvoice.BillingReason).To(Equal("subscription_cycle"))
	})
}

// TestScheduleMovesPriceAtPeriodEnd: a schedule made from the subscription,
// its next phase on the yearly price, bills nothing before the period ends;
// then the renewal moves the item and bills the yearly price, and the
// schedule is released after its last phase.
func TestScheduleMovesPriceAtPeriodEnd(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newPriceChangeFixture(t)
	sc, err := f.c.CreateScheduleFromSubscription(ctx, owner, f.sub.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sc.Phases).To(HaveLen(1))
	g.Expect(sc.Phases[0].StartDate).To(Equal(f.periodStartAtStart))
	g.Expect(sc.Phases[0].EndDate).To(Equal(f.periodEndAtStart))
	_, err = f.c.CreateScheduleFromSubscription(ctx, owner, f.sub.ID)
	g.Expect(err).To(MatchError(ContainSubstring("already attached to a schedule")))
	// Changing the current phase's start is refused.
	_, err = f.c.UpdateSubscriptionSchedule(ctx, owner, sc.ID, stripe.ScheduleUpdateParams{Phases: []stripe.SchedulePhase{
		{StartDate: f.periodStartAtStart + 1, EndDate: f.periodEndAtStart, Items: []stripe.SchedulePhaseItem{{PriceID: f.monthly, Quantity: 1}}}}})
	g.Expect(err).To(HaveOccurred())
	// Mixed intervals in one phase are refused.
	_, err = f.c.UpdateSubscriptionSchedule(ctx, owner, sc.ID, stripe.ScheduleUpdateParams{Phases: []stripe.SchedulePhase{
		{StartDate: f.periodStartAtStart, EndDate: f.periodEndAtStart, Items: []stripe.SchedulePhaseItem{{PriceID: f.monthly, Quantity: 1}, {PriceID: f.yearly, Quantity: 1}}}}})
	g.Expect(err).To(MatchError(ContainSubstring("must have the same `interval`")))
	sc, err = f.c.UpdateSubscriptionSchedule(ctx, owner, sc.ID, stripe.ScheduleUpdateParams{EndBehavior: "release", Phases: []stripe.SchedulePhase{
		{StartDate: f.periodStartAtStart, EndDate: f.periodEndAtStart, Items: []stripe.SchedulePhaseItem{{PriceID: f.monthly, Quantity: 1}}},
		{Iterations: 1, ProrationBehavior: "none", Items: []stripe.SchedulePhaseItem{{PriceID: f.yearly, Quantity: 1}}},
	}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sc.Phases).To(HaveLen(2))
	g.Expect(sc.Phases[1].StartDate).To(Equal(f.periodEndAtStart))
	sub, err := f.c.GetSubscription(ctx, f.sub.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.ScheduleID).To(Equal(sc.ID))
	g.Expect(sub.Items[0].PriceID).To(Equal(f.monthly))

	// Just before the period ends: nothing billed.
	f.fake.AdvanceClock(time.Duration(f.periodEndAtStart-f.fake.Now().Unix()-60) * time.Second)
	g.Expect(f.invoices(t)).To(Equal(f.invoicesAtStart))
	// Past it: the yearly price, a year's period, one renewal invoice.
	f.fake.AdvanceClock(2 * time.Minute)
	sub, err = f.c.GetSubscription(ctx, f.sub.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.Items[0].PriceID).To(Equal(f.yearly))
	g.Expect(sub.Items[0].ID).To(Equal(f.sub.Items[0].ID))
	g.Expect(sub.CurrentPeriodStart).To(Equal(f.periodEndAtStart))
	g.Expect(sub.CurrentPeriodEnd).To(Equal(time.Unix(f.periodEndAtStart, 0).AddDate(1, 0, 0).Unix()))
	g.Expect(f.invoices(t)).To(Equal(f.invoicesAtStart + 1))
	g.Expect(sub.LatestInvoice.BillingReason).To(Equal("subscription_cycle"))
	g.Expect(sub.LatestInvoice.AmountDue).To(Equal(int64(10000)))
	g.Expect(sub.ScheduleID).To(Equal(sc.ID), "attached until its last phase ends")

	// After the last phase: released, the subscription goes on yearly.
	f.fake.AdvanceClock(366 * 24 * time.Hour)
	sub, err = f.c.GetSubscription(ctx, f.sub.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.ScheduleID).To(BeEmpty())
	g.Expect(sub.Items[0].PriceID).To(Equal(f.yearly))
	sc, err = f.c.GetSubscriptionSchedule(ctx, sc.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sc.Status).To(Equal("released"))
}
