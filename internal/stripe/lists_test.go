package stripe_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// TestListAllPagesHundredAtATime lists more objects than one page holds and
// checks that every object arrives once, at ceil(n/100) calls per list.
func TestListAllPagesHundredAtATime(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1})

	const n = 230
	for i := 0; i < n; i++ {
		o := stripe.Owner{Namespace: "ns", Name: fmt.Sprintf("c%d", i), UID: fmt.Sprintf("uid-%d", i)}
		_, err := c.CreateCustomer(ctx, o, "", stripe.CustomerParams{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	before := fake.Stats().Requests["GET /v1/customers"]
	cctx, counter := stripe.WithCallCounter(ctx)
	seen := map[string]bool{}
	g.Expect(c.ListAllCustomers(cctx, func(cus *stripe.Customer) error {
		g.Expect(seen).NotTo(HaveKey(cus.ID))
		seen[cus.ID] = true
		return nil
	})).To(Succeed())
	g.Expect(seen).To(HaveLen(n))
	g.Expect(counter.Calls()).To(Equal(3))
	g.Expect(fake.Stats().Requests["GET /v1/customers"] - before).To(Equal(3))

	// fn's error stops the paging and comes back as it is.
	stop := fmt.Errorf("enough")
	got := 0
	err := c.ListAllCustomers(ctx, func(*stripe.Customer) error { got++; return stop })
	g.Expect(err).To(MatchError(stop))
	g.Expect(got).To(Equal(1))
}

// TestListAllSubscriptionsIncludesEndedAndExpandsInvoices: status=all
// lists canceled subscriptions too, each with its latest invoice, as
// GetSubscription returns them; archived products and prices are listed.
func TestListAllSubscriptionsIncludesEndedAndExpandsInvoices(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, _ := newPair(t, stripefake.Options{RateLimit: -1})
	cus, err := c.CreateCustomer(ctx, owner, "", stripe.CustomerParams{})
	g.Expect(err).NotTo(HaveOccurred())
	pm, err := c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.UpdateCustomer(ctx, owner, cus.ID, stripe.CustomerParams{DefaultPaymentMethod: &pm})
	g.Expect(err).NotTo(HaveOccurred())
	prod, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("Pro")})
	g.Expect(err).NotTo(HaveOccurred())
	pr, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "usd", UnitAmount: 700, Interval: "month"})
	g.Expect(err).NotTo(HaveOccurred())
	var ids []string
	for i := 0; i < 3; i++ {
		o := stripe.Owner{Namespace: "ns", Name: fmt.Sprintf("s%d", i), UID: fmt.Sprintf("sub-uid-%d", i)}
		s, err := c.CreateSubscription(ctx, o, "", stripe.SubscriptionCreateParams{CustomerID: cus.ID,
			Items: []stripe.SubscriptionItemParams{{PriceID: pr.ID, Quantity: int64(i + 1)}}})
		g.Expect(err).NotTo(HaveOccurred())
		ids = append(ids, s.ID)
	}
	_, err = c.CancelSubscription(ctx, owner, ids[0], stripe.SubscriptionCancelParams{})
	g.Expect(err).NotTo(HaveOccurred())
	f := false
	_, err = c.UpdatePrice(ctx, owner, pr.ID, stripe.PriceUpdateParams{Active: &f})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.UpdateProduct(ctx, owner, prod.ID, stripe.ProductParams{Active: &f})
	g.Expect(err).NotTo(HaveOccurred())

	listed := map[string]*stripe.Subscription{}
	g.Expect(c.ListAllSubscriptions(ctx, func(s *stripe.Subscription) error { listed[s.ID] = s; return nil })).To(Succeed())
	g.Expect(listed).To(HaveLen(3))
	g.Expect(listed[ids[0]].Status).To(Equal("canceled"))
	for _, id := range ids {
		direct, err := c.GetSubscription(ctx, id)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(direct.ReadAt).NotTo(BeZero(), "a direct read carries Stripe's Date")
		direct.ReadAt = 0 // a list item has no answer of its own
		g.Expect(listed[id]).To(Equal(direct), "listed %s as read directly", id)
		g.Expect(listed[id].LatestInvoice).NotTo(BeNil())
	}

	var products, prices int
	g.Expect(c.ListAllProducts(ctx, func(p *stripe.Product) error { products++; g.Expect(p.Active).To(BeFalse()); return nil })).To(Succeed())
	g.Expect(c.ListAllPrices(ctx, func(p *stripe.Price) error { prices++; g.Expect(p.ProductID).To(Equal(prod.ID)); return nil })).To(Succeed())
	g.Expect([]int{products, prices}).To(Equal([]int{1, 1}))
}
