package stripe_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// TestUpcomingEqualsTheInvoiceInTheFake: the fake's upcoming invoice is the
// invoice the change then makes, through the client, for an interval change
// (a new period invoiced at once), always_invoice prorations, and
// create_prorations left for the renewal.
func TestUpcomingEqualsTheInvoiceInTheFake(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1})
	cus, err := c.CreateCustomer(ctx, owner, stripe.NewIntent(), stripe.CustomerParams{Email: str("a@example.com")})
	g.Expect(err).NotTo(HaveOccurred())
	pm, err := c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.UpdateCustomer(ctx, owner, cus.ID, stripe.CustomerParams{DefaultPaymentMethod: &pm})
	g.Expect(err).NotTo(HaveOccurred())
	prod, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("Pro")})
	g.Expect(err).NotTo(HaveOccurred())
	price := func(amount int64, interval string) string {
		p, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "usd", UnitAmount: amount, Interval: interval, IntervalCount: 1})
		g.Expect(err).NotTo(HaveOccurred())
		return p.ID
	}
	basic, pro, yearly := price(1000, "month"), price(2500, "month"), price(24000, "year")
	sub, err := c.CreateSubscription(ctx, owner, stripe.NewIntent(), stripe.SubscriptionCreateParams{CustomerID: cus.ID,
		Items: []stripe.SubscriptionItemParams{{PriceID: basic, Quantity: 1}}})
	g.Expect(err).NotTo(HaveOccurred())
	fake.AdvanceClock(9 * 24 * time.Hour)
	at := fake.Now().Unix()

	same := func(what string, up *stripe.UpcomingInvoice, in *stripe.Invoice) {
		g.Expect(up).NotTo(BeNil(), what)
		g.Expect(up.AmountDue).To(Equal(in.AmountDue), what)
		var a, b []int64
		for _, l := range up.Lines {
			a = append(a, l.Amount)
		}
		for _, l := range in.Lines {
			b = append(b, l.Amount)
		}
		g.Expect(a).To(ConsistOf(b), what)
	}
	latest := func() *stripe.Invoice {
		s, err := c.GetSubscription(ctx, sub.ID)
		g.Expect(err).NotTo(HaveOccurred())
		in, err := c.GetInvoice(ctx, s.LatestInvoice.ID)
		g.Expect(err).NotTo(HaveOccurred())
		return in
	}
	item := sub.Items[0].ID

	// create_prorations: nothing now, the renewal carries the prorations.
	up, err := c.UpcomingInvoice(ctx, stripe.UpcomingParams{SubscriptionID: sub.ID, Items: []stripe.UpcomingItem{{ID: item, PriceID: basic, Quantity: 3}},
		ProrationBehavior: "create_prorations", ProrationDate: at})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.UpdateSubscription(ctx, owner, sub.ID, stripe.SubscriptionUpdateParams{Items: []stripe.SubscriptionItemUpdate{{ID: item, PriceID: basic, Quantity: 3}},
		ProrationBehavior: "create_prorations"})
	g.Expect(err).NotTo(HaveOccurred())
	fake.AdvanceClock(22 * 24 * time.Hour)
	same("create_prorations renewal", up, latest())
	g.Expect(latest().BillingReason).To(Equal("subscription_cycle"))

	// always_invoice: the prorations are invoiced at once.
	fake.AdvanceClock(5 * 24 * time.Hour)
	at = fake.Now().Unix()
	up, err = c.UpcomingInvoice(ctx, stripe.UpcomingParams{SubscriptionID: sub.ID, Items: []stripe.UpcomingItem{{ID: item, PriceID: pro, Quantity: 3}},
		ProrationBehavior: "always_invoice", ProrationDate: at})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.UpdateSubscription(ctx, owner, sub.ID, stripe.SubscriptionUpdateParams{Items: []stripe.SubscriptionItemUpdate{{ID: item, PriceID: pro, Quantity: 3}},
		ProrationBehavior: "always_invoice"})
	g.Expect(err).NotTo(HaveOccurred())
	same("always_invoice now", up, latest())
	g.Expect(latest().BillingReason).To(Equal("subscription_update"))

	// An interval change: the new period at once, less the unused time.
	up, err = c.UpcomingInvoice(ctx, stripe.UpcomingParams{SubscriptionID: sub.ID, Items: []stripe.UpcomingItem{{ID: item, PriceID: yearly, Quantity: 1}},
		ProrationDate: at})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.UpdateSubscription(ctx, owner, sub.ID, stripe.SubscriptionUpdateParams{Items: []stripe.SubscriptionItemUpdate{{ID: item, PriceID: yearly, Quantity: 1}}})
	g.Expect(err).NotTo(HaveOccurred())
	same("interval change now", up, latest())

	// Cancel at period end: no upcoming invoice.
	cancel := true
	up, err = c.UpcomingInvoice(ctx, stripe.UpcomingParams{SubscriptionID: sub.ID, CancelAtPeriodEnd: &cancel})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(up).To(BeNil())
	g.Expect(fake.Stats().Requests["GET /v1/invoices/upcoming"]).To(Equal(4))
}
