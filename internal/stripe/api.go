// Package stripe is the operator's only door to Stripe and the only package
// (with its test-mode fake) that imports stripe-go. Reconcilers and the
// webhook server depend on the narrow interfaces below, never on stripe-go
// types.
//
// Every write (POST/DELETE) carries an idempotency key of one intent (see
// IntentKey and the rules in client.go), and a response Stripe replays from
// its idempotency cache is never returned as the current state.
package stripe

import (
	"context"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/identity"
)

// Owner identifies the Kubernetes object on whose behalf a call is made. Its
// UID seeds idempotency keys. Its identity (instance, kind, namespace, name)
// and UID are written into the metadata of every Stripe object the operator
// creates (stripe-operator.io/instance, /kind, /namespace, /name, /uid): the
// identity survives a rebuilt cluster or a restored backup, where the UID
// does not.
type Owner = identity.Identity

// Customer is the part of a Stripe customer the operator reads.
type Customer struct {
	ID                   string
	Email                string
	Name                 string
	Description          string
	DefaultPaymentMethod string
	Metadata             map[string]string
	Created              int64
	// TestClock is the test clock (clock_...) the customer belongs to.
	TestClock string
	// Deleted is true for a customer Stripe reports as deleted.
	Deleted bool
}

// CustomerParams are the fields to write. A nil pointer leaves the field
// alone; a pointer to "" clears it. Metadata entries with value "" are
// removed from the Stripe object.
type CustomerParams struct {
	Email                *string
	Name                 *string
	Description          *string
	DefaultPaymentMethod *string
	Metadata             map[string]string
	// TestClock puts a new customer on a test clock (create only).
	TestClock string
}

// Product is the part of a Stripe product the operator reads.
type Product struct {
	ID          string
	Name        string
	Description string
	Active      bool
	Metadata    map[string]string
	Created     int64
}

// ProductParams are the product fields to write (nil: leave alone).
type ProductParams struct {
	Name        *string
	Description *string
	Active      *bool
	Metadata    map[string]string
}

// Price is the part of a Stripe price the operator reads.
type Price struct {
	ID            string
	ProductID     string
	Currency      string
	UnitAmount    int64
	Interval      string
	IntervalCount int64
	LookupKey     string
	Active        bool
	Metadata      map[string]string
	Created       int64
	// PriceTerms are the rest of its terms (price_terms.go).
	PriceTerms
	// Complete is true when the price was read with its tiers and
	// currency_options, which Stripe includes only when expanded (a
	// subscription item's embedded price lacks them).
	Complete bool
}

// PriceCreateParams creates a recurring price.
type PriceCreateParams struct {
	ProductID     string
	Currency      string
	UnitAmount    int64
	Interval      string
	IntervalCount int64
	LookupKey     string
	// PriceTerms are the other terms (tiers, decimals, metered...).
	PriceTerms
	// TransferLookupKey moves LookupKey from the price that holds it.
	TransferLookupKey bool
	Metadata          map[string]string
}

// PriceUpdateParams updates the mutable fields of a price (nil: leave alone).
type PriceUpdateParams struct {
	Active            *bool
	LookupKey         *string
	TransferLookupKey bool
	Metadata          map[string]string
}

// SubscriptionItem is a subscription item as Stripe reports it.
type SubscriptionItem struct {
	ID       string
	PriceID  string
	Quantity int64
	// UnitAmount and Currency are the price's (its main currency).
	UnitAmount int64
	Currency   string
	// Interval and IntervalCount are the price's billing period.
	Interval      string
	IntervalCount int64
	// Price is the item's price as the subscription embeds it: without
	// tiers and currency_options (Price.Complete is false).
	Price *Price
}

// Subscription is the part of a Stripe subscription the operator reads.
// Times are Unix seconds; 0 means unset.
type Subscription struct {
	ID         string
	CustomerID string
	// Currency is the currency the subscription bills in (one of its
	// prices' currency options when the customer's currency is one).
	Currency           string
	Status             string
	Items              []SubscriptionItem
	CurrentPeriodStart int64
	CurrentPeriodEnd   int64
	CancelAtPeriodEnd  bool
	CancelAt           int64
	CanceledAt         int64
	TrialEnd           int64
	// PauseCollection is the pause_collection behavior, "" when not paused.
	PauseCollection  string
	CollectionMethod string
	DaysUntilDue     int64
	Metadata         map[string]string
	Created          int64
	// ScheduleID is the subscription schedule (sub_sched_...) that manages
	// the subscription, "" when none.
	ScheduleID string
	// LatestInvoice is expanded on every read.
	LatestInvoice *Invoice
	// Cancellation is Stripe's cancellation_details (API 2023-10-16: set
	// when a cancellation is scheduled or made), nil when Stripe sent none.
	// See https://docs.stripe.com/api/subscriptions/object#subscription_object-cancellation_details.
	Cancellation *CancellationDetails
	// ReadAt is Stripe's time of the answer this state came from (its Date
	// header, Unix seconds), 0 when unknown (an object from a list).
	ReadAt int64
	// Discount is the subscription's discount (API 2023-10-16: the one
	// `discount` object), nil when none.
	Discount *Discount
}

// CancellationDetails says why a subscription was canceled.
type CancellationDetails struct {
	// Reason is payment_failed (Stripe ended it at the end of its payment
	// retries, as the account's dunning setting says), payment_disputed, or
	// cancellation_requested (a cancel through the API or the Dashboard);
	// "" when none.
	Reason string
	// Feedback is the customer's reason (too_expensive, ...), Comment a
	// free text; both are set by whoever cancels.
	Feedback string
	Comment  string
}

// Cancellation reasons of CancellationDetails.Reason.
const (
	CancellationPaymentFailed         = "payment_failed"
	CancellationPaymentDisputed       = "payment_disputed"
	CancellationCancellationRequested = "cancellation_requested"
)

// InvoiceLine is one line of an invoice.
type InvoiceLine struct {
	PriceID   string
	Quantity  int64
	Amount    int64
	Proration bool
}

// Invoice is the part of a Stripe invoice the operator reads.
type Invoice struct {
	ID               string
	SubscriptionID   string
	Status           string
	Currency         string
	AmountDue        int64
	AmountPaid       int64
	Subtotal         int64
	Total            int64
	Tax              int64
	DiscountAmount   int64
	AttemptCount     int64
	Attempted        bool
	BillingReason    string
	HostedInvoiceURL string
	// NextPaymentAttempt is Unix seconds, 0 when Stripe will not retry.
	NextPaymentAttempt int64
	// PaymentError is the decline or error code of the last failed payment
	// attempt ("card_declined", "authentication_required"), "" when none.
	PaymentError string
	// PaymentErrorMethod is the PaymentMethod (pm_...) the last failed
	// attempt charged (last_payment_error.payment_method), "" when none.
	PaymentErrorMethod string
	// PaymentIntentStatus is the status of the invoice's PaymentIntent
	// ("requires_action", "requires_payment_method", "succeeded").
	PaymentIntentStatus string
	Lines               []InvoiceLine
	Created             int64
}

// SubscriptionItemParams is one item of a create call. Quantity 0 sends
// none (a metered price's item has no quantity).
type SubscriptionItemParams struct {
	PriceID  string
	Quantity int64
}

// SubscriptionCreateParams creates a subscription.
type SubscriptionCreateParams struct {
	CustomerID        string
	Items             []SubscriptionItemParams
	TrialPeriodDays   *int64
	CollectionMethod  string
	DaysUntilDue      *int64
	PaymentBehavior   string
	ProrationBehavior string
	CancelAtPeriodEnd bool
	Metadata          map[string]string
	// Coupon or PromotionCode (an ID, promo_...) applies a discount.
	Coupon        string
	PromotionCode string
}

// SubscriptionItemUpdate changes one item in an update call. ID names an
// existing item (si_...), "" adds a new one; Deleted removes ID.
type SubscriptionItemUpdate struct {
	ID       string
	PriceID  string
	Quantity int64
	Deleted  bool
}

// SubscriptionUpdateParams updates a subscription in one call (nil or empty:
// leave alone).
type SubscriptionUpdateParams struct {
	Items             []SubscriptionItemUpdate
	ProrationBehavior string
	PaymentBehavior   string
	CancelAtPeriodEnd *bool
	// PauseCollection sets the pause behavior; a pointer to "" resumes
	// collection.
	PauseCollection  *string
	CollectionMethod *string
	DaysUntilDue     *int64
	// ClearCancelAt removes a scheduled cancel_at.
	ClearCancelAt bool
	Metadata      map[string]string
	// CancellationComment sets cancellation_details.comment (with
	// cancel_at_period_end, it tells who asked for the cancellation).
	CancellationComment *string
	// Coupon or PromotionCode (an ID, promo_...) replaces the discount.
	// Removing it is DeleteSubscriptionDiscount.
	Coupon        *string
	PromotionCode *string
}

// SubscriptionCancelParams cancels a subscription now.
type SubscriptionCancelParams struct {
	InvoiceNow bool
	Prorate    bool
}

// Customers is the customer part of the Stripe API the operator uses.
type Customers interface {
	// GetCustomer reads a customer; a deleted customer is returned with
	// Deleted set; an unknown ID is a NotFound *Error.
	GetCustomer(ctx context.Context, id string) (*Customer, error)
	// FindCustomerByOwner lists customers created at or after createdAfter
	// (strongly consistent list, never the Search API) and returns the one
	// whose metadata carries owner.UID, or nil.
	FindCustomerByOwner(ctx context.Context, owner Owner, createdAfter time.Time) (*Customer, error)
	// CreateCustomer creates a customer under the idempotency key of intent
	// (see IntentKey); "" means a fresh key.
	CreateCustomer(ctx context.Context, owner Owner, intent string, p CustomerParams) (*Customer, error)
	// SearchCustomersByIdentity finds live customers carrying owner's
	// identity with the Search API, or, where Search is unavailable or
	// fails, in a list of all customers at most a minute old. Either is
	// eventually consistent (about a minute): it finds objects made long
	// ago, such as by a cluster that was rebuilt, never one just created.
	SearchCustomersByIdentity(ctx context.Context, owner Owner) ([]*Customer, error)
	UpdateCustomer(ctx context.Context, owner Owner, id string, p CustomerParams) (*Customer, error)
	DeleteCustomer(ctx context.Context, owner Owner, id string) error
	// AttachPaymentMethod attaches a PaymentMethod to a customer and returns
	// the attached PaymentMethod's ID. Attaching one already attached to that
	// customer succeeds with the same ID; attaching one of Stripe's test
	// PaymentMethods (pm_card_visa, ...) creates a new pm_... every time.
	AttachPaymentMethod(ctx context.Context, owner Owner, paymentMethodID, customerID string) (string, error)
}

// Products is the product part of the Stripe API the operator uses.
type Products interface {
	GetProduct(ctx context.Context, id string) (*Product, error)
	// FindProductByOwner lists products created at or after createdAfter and
	// returns the one whose metadata carries owner.UID, or nil.
	FindProductByOwner(ctx context.Context, owner Owner, createdAfter time.Time) (*Product, error)
	// CreateProduct creates a product under the key of intent ("": fresh).
	CreateProduct(ctx context.Context, owner Owner, intent string, p ProductParams) (*Product, error)
	// SearchProductsByIdentity finds products carrying owner's identity
	// with the Search API, or a list at most a minute old where Search is
	// unavailable or fails (eventually consistent).
	SearchProductsByIdentity(ctx context.Context, owner Owner) ([]*Product, error)
	UpdateProduct(ctx context.Context, owner Owner, id string, p ProductParams) (*Product, error)
}

// Prices is the price part of the Stripe API the operator uses.
type Prices interface {
	GetPrice(ctx context.Context, id string) (*Price, error)
	// ListPrices lists a product's prices, active ones only when activeOnly.
	ListPrices(ctx context.Context, productID string, activeOnly bool) ([]*Price, error)
	// PriceByLookupKey returns the price that holds a lookup key, nil when
	// none does.
	PriceByLookupKey(ctx context.Context, key string) (*Price, error)
	CreatePrice(ctx context.Context, owner Owner, p PriceCreateParams) (*Price, error)
	UpdatePrice(ctx context.Context, owner Owner, id string, p PriceUpdateParams) (*Price, error)
}

// Subscriptions is the subscription part of the Stripe API the operator uses.
type Subscriptions interface {
	// GetSubscription reads a subscription with its items and latest invoice.
	GetSubscription(ctx context.Context, id string) (*Subscription, error)
	// FindSubscriptionByOwner lists the customer's subscriptions (all
	// statuses) and returns the one whose metadata carries owner.UID, or nil.
	FindSubscriptionByOwner(ctx context.Context, owner Owner, customerID string) (*Subscription, error)
	// CreateSubscription creates a subscription under the key of intent
	// ("": fresh).
	CreateSubscription(ctx context.Context, owner Owner, intent string, p SubscriptionCreateParams) (*Subscription, error)
	// ListCustomerSubscriptions lists every subscription of a customer, any
	// status, 100 a page (a strongly consistent list).
	ListCustomerSubscriptions(ctx context.Context, customerID string) ([]*Subscription, error)
	UpdateSubscription(ctx context.Context, owner Owner, id string, p SubscriptionUpdateParams) (*Subscription, error)
	CancelSubscription(ctx context.Context, owner Owner, id string, p SubscriptionCancelParams) (*Subscription, error)
	// DeleteSubscriptionDiscount removes a subscription's discount.
	DeleteSubscriptionDiscount(ctx context.Context, owner Owner, id string) error
}

// Invoices is the invoice part of the Stripe API the operator uses.
type Invoices interface {
	GetInvoice(ctx context.Context, id string) (*Invoice, error)
}

// TestClock is a Stripe test clock
// (https://docs.stripe.com/api/test_clocks/object).
type TestClock struct {
	ID         string
	Name       string
	FrozenTime int64
	// Status is "ready", "advancing" or "internal_failure".
	Status string
}

// TestClocks is Stripe's test-helpers test clock API (test mode only). The
// operator itself never calls it; tests and users' own end-to-end suites
// move their customers through time with it.
type TestClocks interface {
	CreateTestClock(ctx context.Context, name string, frozenTime time.Time) (*TestClock, error)
	GetTestClock(ctx context.Context, id string) (*TestClock, error)
	AdvanceTestClock(ctx context.Context, id string, to time.Time) (*TestClock, error)
	DeleteTestClock(ctx context.Context, id string) error
}

// API is everything the operator calls in Stripe.
type API interface {
	Customers
	Products
	Prices
	Subscriptions
	Schedules
	Invoices
	Coupons
}
