package stripe_test

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

const testKey = "sk_test_fakeKeyForTests0000"

func newPair(t *testing.T, opts stripefake.Options) (*stripe.Client, *stripefake.Server) {
	t.Helper()
	fake := stripefake.NewTestServer(t, opts)
	c, err := stripe.New(stripe.Config{APIKey: testKey, BaseURL: fake.URL(), RateLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return c, fake
}

var owner = stripe.Owner{Namespace: "ns", Name: "acme", UID: "0b4c1f1e-uid"}

func str(s string) *string { return &s }

// TestLifecycle drives a customer, plan and subscription through the real
// client against the stateful fake: payment, decline, renewal, cancel.
func TestLifecycle(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1})

	cus, err := c.CreateCustomer(ctx, owner, stripe.CustomerParams{Email: str("a@example.com"), Name: str("Acme")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cus.Metadata).To(HaveKeyWithValue("stripe-operator.io/uid", owner.UID))
	g.Expect(c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)).To(Succeed())
	cus, err = c.UpdateCustomer(ctx, owner, cus.ID, stripe.CustomerParams{DefaultPaymentMethod: str("pm_card_visa")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cus.DefaultPaymentMethod).To(Equal("pm_card_visa"))

	prod, err := c.CreateProduct(ctx, owner, stripe.ProductParams{Name: str("Pro")})
	g.Expect(err).NotTo(HaveOccurred())
	pr, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "usd", UnitAmount: 2000, Interval: "month", IntervalCount: 1, LookupKey: "pro"})
	g.Expect(err).NotTo(HaveOccurred())

	sub, err := c.CreateSubscription(ctx, owner, stripe.SubscriptionCreateParams{CustomerID: cus.ID,
		Items: []stripe.SubscriptionItemParams{{PriceID: pr.ID, Quantity: 2}}, PaymentBehavior: "allow_incomplete"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.Status).To(Equal("active"))
	g.Expect(sub.LatestInvoice).NotTo(BeNil())
	g.Expect(sub.LatestInvoice.Status).To(Equal("paid"))
	g.Expect(sub.LatestInvoice.AmountPaid).To(Equal(int64(4000)))

	found, err := c.FindSubscriptionByOwner(ctx, owner, cus.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(found.ID).To(Equal(sub.ID))

	// Renewal with a declining card: past_due, then recovery.
	_, err = c.UpdateCustomer(ctx, owner, cus.ID, stripe.CustomerParams{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fake.DashboardSetDefaultPaymentMethod(cus.ID, "pm_card_chargeDeclined")).To(Succeed())
	fake.AdvanceClock(32 * 24 * time.Hour)
	sub, err = c.GetSubscription(ctx, sub.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.Status).To(Equal("past_due"))
	g.Expect(sub.LatestInvoice.PaymentError).To(Equal("card_declined"))
	g.Expect(sub.LatestInvoice.NextPaymentAttempt).NotTo(BeZero())
	g.Expect(fake.DashboardSetDefaultPaymentMethod(cus.ID, "pm_card_visa")).To(Succeed())
	fake.AdvanceClock(4 * 24 * time.Hour)
	sub, err = c.GetSubscription(ctx, sub.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.Status).To(Equal("active"))

	// Quantity change with always_invoice: one proration invoice.
	sub, err = c.UpdateSubscription(ctx, owner, sub.ID, stripe.SubscriptionUpdateParams{
		Items: []stripe.SubscriptionItemUpdate{{ID: sub.Items[0].ID, Quantity: 3}}, ProrationBehavior: "always_invoice"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.Items[0].Quantity).To(Equal(int64(3)))
	g.Expect(sub.LatestInvoice.BillingReason).To(Equal("subscription_update"))

	// Pause and resume collection.
	sub, err = c.UpdateSubscription(ctx, owner, sub.ID, stripe.SubscriptionUpdateParams{PauseCollection: str("void")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.PauseCollection).To(Equal("void"))
	sub, err = c.UpdateSubscription(ctx, owner, sub.ID, stripe.SubscriptionUpdateParams{PauseCollection: str("")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.PauseCollection).To(BeEmpty())

	sub, err = c.CancelSubscription(ctx, owner, sub.ID, stripe.SubscriptionCancelParams{InvoiceNow: true, Prorate: true})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.Status).To(Equal("canceled"))
	_, err = c.CancelSubscription(ctx, owner, sub.ID, stripe.SubscriptionCancelParams{})
	g.Expect(stripe.IsNotFound(err)).To(BeTrue(), "canceling twice: %v", err)
}

func TestIdempotentCreateAndConflict(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1})
	p := stripe.CustomerParams{Email: str("a@example.com")}
	a, err := c.CreateCustomer(ctx, owner, p)
	g.Expect(err).NotTo(HaveOccurred())
	b, err := c.CreateCustomer(ctx, owner, p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(b.ID).To(Equal(a.ID), "the same intent is replayed")
	g.Expect(fake.Stats().Creates["customer"]).To(Equal(1))
	g.Expect(fake.Stats().Replays).To(Equal(1))

	k1 := stripe.IdempotencyKey(owner, "customer-create", p)
	g.Expect(stripe.IdempotencyKey(owner, "customer-create", p)).To(Equal(k1))
	g.Expect(stripe.IdempotencyKey(owner, "customer-create", stripe.CustomerParams{Email: str("b@example.com")})).NotTo(Equal(k1))
	g.Expect(len(k1)).To(BeNumerically("<=", 255))
}

func TestRateLimitedAndRetryAfter(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1})
	fake.InjectFault(stripefake.Fault{Path: "/v1/customers", Status: 429, RetryAfter: time.Second, Count: 1})
	_, err := c.CreateCustomer(ctx, owner, stripe.CustomerParams{Email: str("a@example.com")})
	g.Expect(stripe.ClassOf(err)).To(Equal(stripe.ClassRateLimited))
	d, ok := stripe.RetryAfter(err)
	g.Expect(ok).To(BeTrue())
	g.Expect(d).To(Equal(time.Second))
	// The limiter waits the Retry-After out, then the call succeeds once.
	_, err = c.CreateCustomer(ctx, owner, stripe.CustomerParams{Email: str("a@example.com")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fake.Stats().Creates["customer"]).To(Equal(1))

	// A 500 on a POST is not retried by stripe-go: Retryable for the caller.
	fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/products", Status: 500, Count: 1})
	_, err = c.CreateProduct(ctx, owner, stripe.ProductParams{Name: str("x")})
	g.Expect(stripe.IsRetryable(err)).To(BeTrue())
	var se *stripe.Error
	g.Expect(errors.As(err, &se)).To(BeTrue())
}
