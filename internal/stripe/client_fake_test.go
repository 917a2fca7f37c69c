package stripe_test

import (
	"context"
	"errors"
	"strings"
	"sync"
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

	cus, err := c.CreateCustomer(ctx, owner, stripe.NewIntent(), stripe.CustomerParams{Email: str("a@example.com"), Name: str("Acme")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cus.Metadata).To(HaveKeyWithValue("stripe-operator.io/uid", owner.UID))
	// A test PaymentMethod makes a new PaymentMethod on every attach.
	pm, err := c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pm).To(HavePrefix("pm_"))
	g.Expect(pm).NotTo(Equal("pm_card_visa"))
	pm2, err := c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pm2).NotTo(Equal(pm))
	// Only an attached PaymentMethod can be the default.
	_, err = c.UpdateCustomer(ctx, owner, cus.ID, stripe.CustomerParams{DefaultPaymentMethod: str("pm_card_visa")})
	g.Expect(err).To(HaveOccurred())
	cus, err = c.UpdateCustomer(ctx, owner, cus.ID, stripe.CustomerParams{DefaultPaymentMethod: &pm})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cus.DefaultPaymentMethod).To(Equal(pm))
	// Stripe declines pm_card_chargeDeclined when it is attached.
	_, err = c.AttachPaymentMethod(ctx, owner, "pm_card_chargeDeclined", cus.ID)
	g.Expect(stripe.ClassOf(err)).To(Equal(stripe.ClassTerminal), "%v", err)

	prod, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("Pro")})
	g.Expect(err).NotTo(HaveOccurred())
	pr, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "usd", UnitAmount: 2000, Interval: "month", IntervalCount: 1, LookupKey: "pro"})
	g.Expect(err).NotTo(HaveOccurred())

	sub, err := c.CreateSubscription(ctx, owner, stripe.NewIntent(), stripe.SubscriptionCreateParams{CustomerID: cus.ID,
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
	_, err = fake.DashboardSetDefaultPaymentMethod(cus.ID, "pm_card_chargeCustomerFail")
	g.Expect(err).NotTo(HaveOccurred())
	fake.AdvanceClock(32 * 24 * time.Hour)
	sub, err = c.GetSubscription(ctx, sub.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.Status).To(Equal("past_due"))
	g.Expect(sub.LatestInvoice.PaymentError).To(Equal("card_declined"))
	g.Expect(sub.LatestInvoice.NextPaymentAttempt).NotTo(BeZero())
	_, err = fake.DashboardSetDefaultPaymentMethod(cus.ID, "pm_card_visa")
	g.Expect(err).NotTo(HaveOccurred())
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
	intent := stripe.NewIntent()
	a, err := c.CreateCustomer(ctx, owner, intent, p)
	g.Expect(err).NotTo(HaveOccurred())
	b, err := c.CreateCustomer(ctx, owner, intent, p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(b.ID).To(Equal(a.ID), "the same intent is replayed")
	g.Expect(fake.Stats().Creates["customer"]).To(Equal(1))
	g.Expect(fake.Stats().Replays).To(Equal(1))

	// The same intent with other parameters is refused (400
	// idempotency_error), and not saved.
	_, err = c.CreateCustomer(ctx, owner, intent, stripe.CustomerParams{Email: str("b@example.com")})
	g.Expect(stripe.ClassOf(err)).To(Equal(stripe.ClassIdempotency), "%v", err)
	g.Expect(stripe.AnswerStored(err)).To(BeTrue(), "a refused key cannot be used for this intent any more")

	k1 := stripe.IntentKey(owner, "customer-create", intent)
	g.Expect(stripe.IntentKey(owner, "customer-create", intent)).To(Equal(k1))
	g.Expect(stripe.IntentKey(owner, "customer-create", stripe.NewIntent())).NotTo(Equal(k1))
	g.Expect(len(stripe.IntentKey(stripe.Owner{UID: strings.Repeat("u", 300)}, "customer-create", intent))).To(BeNumerically("<=", 255))
}

// TestUpdatesAreNewIntents: a change undone and redone (A -> B -> A) is
// three intents that Stripe all executes; none is answered from an earlier
// request's saved response.
func TestUpdatesAreNewIntents(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1})
	prod, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("A")})
	g.Expect(err).NotTo(HaveOccurred())
	for _, name := range []string{"B", "A", "B", "A"} {
		got, err := c.UpdateProduct(ctx, owner, prod.ID, stripe.ProductParams{Name: str(name)})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Name).To(Equal(name))
		read, err := c.GetProduct(ctx, prod.ID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(read.Name).To(Equal(name), "Stripe holds what the update said")
	}
	g.Expect(fake.Stats().Replays).To(BeZero())
}

// TestSavedErrorEndsTheIntent: Stripe saves a 500 from an endpoint that
// executed and replays it under the same key; AnswerStored tells the caller
// the intent is over.
func TestSavedErrorEndsTheIntent(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	var mu sync.Mutex
	wall := time.Now()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1, WallClock: func() time.Time { mu.Lock(); defer mu.Unlock(); return wall }})
	fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/customers", Status: 500, Count: 1, AfterExecute: true})
	intent := stripe.NewIntent()
	p := stripe.CustomerParams{Email: str("a@example.com")}
	_, err := c.CreateCustomer(ctx, owner, intent, p)
	g.Expect(err).To(HaveOccurred())
	g.Expect(stripe.AnswerStored(err)).To(BeTrue())
	g.Expect(fake.Stats().Creates["customer"]).To(Equal(1), "the create executed")
	// The same key replays the 500 even though the fault is gone.
	_, err = c.CreateCustomer(ctx, owner, intent, p)
	g.Expect(err).To(HaveOccurred())
	g.Expect(fake.Stats().Replays).To(Equal(1))
	// The caller finds what the executed create made instead.
	found, err := c.FindCustomerByOwner(ctx, owner, time.Time{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(found).NotTo(BeNil())
	g.Expect(fake.Stats().Creates["customer"]).To(Equal(1))
	// After 24 hours (wall time, not a test clock) Stripe has pruned the key.
	mu.Lock()
	wall = wall.Add(24*time.Hour + time.Second)
	mu.Unlock()
	_, err = c.CreateCustomer(ctx, owner, intent, p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fake.Stats().Creates["customer"]).To(Equal(2))
}

// TestInvoiceLinesPaged: an invoice with more lines than Stripe embeds is
// read whole.
func TestInvoiceLinesPaged(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, _ := newPair(t, stripefake.Options{RateLimit: -1})
	cus, err := c.CreateCustomer(ctx, owner, "", stripe.CustomerParams{})
	g.Expect(err).NotTo(HaveOccurred())
	pm, err := c.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.UpdateCustomer(ctx, owner, cus.ID, stripe.CustomerParams{DefaultPaymentMethod: &pm})
	g.Expect(err).NotTo(HaveOccurred())
	prod, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("Seat")})
	g.Expect(err).NotTo(HaveOccurred())
	var items []stripe.SubscriptionItemParams
	for i := range 14 {
		pr, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "usd", UnitAmount: int64(100 + i), Interval: "month", IntervalCount: 1})
		g.Expect(err).NotTo(HaveOccurred())
		items = append(items, stripe.SubscriptionItemParams{PriceID: pr.ID, Quantity: 1})
	}
	sub, err := c.CreateSubscription(ctx, owner, "", stripe.SubscriptionCreateParams{CustomerID: cus.ID, Items: items})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.LatestInvoice.Lines).To(HaveLen(14))
	sub, err = c.GetSubscription(ctx, sub.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sub.LatestInvoice.Lines).To(HaveLen(14))
	in, err := c.GetInvoice(ctx, sub.LatestInvoice.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(in.Lines).To(HaveLen(14))
}

func TestRateLimitedAndRetryAfter(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1})
	fake.InjectFault(stripefake.Fault{Path: "/v1/customers", Status: 429, RetryAfter: time.Second, Count: 1})
	_, err := c.CreateCustomer(ctx, owner, "", stripe.CustomerParams{Email: str("a@example.com")})
	g.Expect(stripe.ClassOf(err)).To(Equal(stripe.ClassRateLimited))
	d, ok := stripe.RetryAfter(err)
	g.Expect(ok).To(BeTrue())
	g.Expect(d).To(Equal(time.Second))
	// The limiter waits the Retry-After out, then the call succeeds once.
	_, err = c.CreateCustomer(ctx, owner, "", stripe.CustomerParams{Email: str("a@example.com")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fake.Stats().Creates["customer"]).To(Equal(1))

	// A 500 on a POST is not retried by stripe-go: Retryable for the caller.
	fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/products", Status: 500, Count: 1})
	_, err = c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("x")})
	g.Expect(stripe.IsRetryable(err)).To(BeTrue())
	var se *stripe.Error
	g.Expect(errors.As(err, &se)).To(BeTrue())
}

// TestAdoptionLookupFallsBackToLists: where Search is unavailable (an
// account in India), the adoption lookup answers from a paged list of all
// customers and products, filtered by identity; Search is not asked again
// for a while, and lookups in the next minute share one list.
func TestAdoptionLookupFallsBackToLists(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1, SearchIndexDelay: -1})
	fake.SetSearchUnavailable(true)
	id := stripe.Owner{Instance: "i", Kind: "StripeCustomer", Namespace: "ns", Name: "acme", UID: "u1"}
	other := id
	other.Name, other.UID = "other", "u2"
	for range 120 { // more than one page
		_, err := c.CreateCustomer(ctx, stripe.Owner{Instance: "i", Kind: "StripeCustomer", Namespace: "ns", Name: "filler", UID: "f"}, "", stripe.CustomerParams{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	mine, err := c.CreateCustomer(ctx, id, "", stripe.CustomerParams{})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.CreateCustomer(ctx, other, "", stripe.CustomerParams{})
	g.Expect(err).NotTo(HaveOccurred())
	prodOwner := stripe.Owner{Instance: "i", Kind: "StripePlan", Namespace: "ns", Name: "pro", UID: "u3"}
	prod, err := c.CreateProduct(ctx, prodOwner, "", stripe.ProductParams{Name: str("Pro")})
	g.Expect(err).NotTo(HaveOccurred())

	found, err := c.SearchCustomersByIdentity(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(found).To(HaveLen(1))
	g.Expect(found[0].ID).To(Equal(mine.ID))
	products, err := c.SearchProductsByIdentity(ctx, prodOwner)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(products).To(HaveLen(1))
	g.Expect(products[0].ID).To(Equal(prod.ID))
	st := fake.Stats()
	g.Expect(st.Requests["GET /v1/customers/search"]).To(Equal(1))
	g.Expect(st.Requests["GET /v1/products/search"]).To(BeZero(), "Search is off for this client after the account's 400")
	g.Expect(st.Requests["GET /v1/customers"]).To(Equal(2), "two pages")

	// The next lookup within a minute shares the list.
	found, err = c.SearchCustomersByIdentity(ctx, other)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(found).To(HaveLen(1))
	g.Expect(fake.Stats().Requests["GET /v1/customers"]).To(Equal(2))
	g.Expect(c.SearchFallbacks()).To(Equal(int64(1)))

	// Search failing otherwise (a 500) falls back too, for that lookup only.
	c2, fake2 := newPair(t, stripefake.Options{RateLimit: -1, SearchIndexDelay: -1})
	mine2, err := c2.CreateCustomer(ctx, id, "", stripe.CustomerParams{})
	g.Expect(err).NotTo(HaveOccurred())
	fake2.InjectFault(stripefake.Fault{Path: "/v1/customers/search", Status: 500, Count: 3})
	found, err = c2.SearchCustomersByIdentity(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(found).To(HaveLen(1))
	g.Expect(found[0].ID).To(Equal(mine2.ID))
	found, err = c2.SearchCustomersByIdentity(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(found).To(HaveLen(1))
	g.Expect(fake2.Stats().Requests["GET /v1/customers/search"]).To(Equal(1), "Search is asked again after a 500")
}

// TestResourceBackoffThroughClient: a subscription over Stripe's quantity
// limit gets a RateLimited error naming resource-specific, with a backoff
// as RetryAfter; further calls for it are answered at once without reaching
// Stripe, while another subscription's update goes through.
func TestResourceBackoffThroughClient(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, fake := newPair(t, stripefake.Options{RateLimit: -1, SubscriptionQuantityChangesPerHour: 1})
	cus, err := c.CreateCustomer(ctx, owner, "", stripe.CustomerParams{})
	g.Expect(err).NotTo(HaveOccurred())
	prod, err := c.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: str("Seat")})
	g.Expect(err).NotTo(HaveOccurred())
	price, err := c.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: "usd", UnitAmount: 500, Interval: "month", IntervalCount: 1})
	g.Expect(err).NotTo(HaveOccurred())
	days := int64(30)
	newSub := func() *stripe.Subscription {
		s, err := c.CreateSubscription(ctx, owner, "", stripe.SubscriptionCreateParams{CustomerID: cus.ID, CollectionMethod: "send_invoice", DaysUntilDue: &days,
			Items: []stripe.SubscriptionItemParams{{PriceID: price.ID, Quantity: 1}}})
		g.Expect(err).NotTo(HaveOccurred())
		return s
	}
	capped, other := newSub(), newSub()
	setQty := func(s *stripe.Subscription, n int64) error {
		_, err := c.UpdateSubscription(ctx, owner, s.ID, stripe.SubscriptionUpdateParams{ProrationBehavior: "none",
			Items: []stripe.SubscriptionItemUpdate{{ID: s.Items[0].ID, Quantity: n}}})
		return err
	}
	g.Expect(setQty(capped, 2)).To(Succeed())
	err = setQty(capped, 3)
	var se *stripe.Error
	g.Expect(errors.As(err, &se)).To(BeTrue(), "%v", err)
	g.Expect(se.Class).To(Equal(stripe.ClassRateLimited))
	g.Expect(se.RateLimitReason).To(Equal(stripe.ReasonResourceSpecific))
	g.Expect(se.RetryAfter).To(BeNumerically(">=", 2*time.Second))
	g.Expect(fake.Stats().RateLimitedByReason[stripefake.ReasonResourceSpecific]).To(Equal(1))

	err = setQty(capped, 3)
	g.Expect(stripe.ClassOf(err)).To(Equal(stripe.ClassRateLimited))
	_, err = c.GetSubscription(ctx, capped.ID)
	g.Expect(stripe.ClassOf(err)).To(Equal(stripe.ClassRateLimited), "reads of the object wait out the backoff too")
	g.Expect(fake.Stats().RateLimitedByReason[stripefake.ReasonResourceSpecific]).To(Equal(1), "nothing reached Stripe during the backoff")
	g.Expect(fake.Stats().Requests["POST /v1/subscriptions/{id}"]).To(Equal(2))

	g.Expect(setQty(other, 2)).To(Succeed(), "another subscription is not held back")
	global, backoffs := c.LimiterCounts()
	g.Expect(global).To(BeZero())
	g.Expect(backoffs).To(Equal(1))
}
