package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PlanDeletionPolicy says what happens to the Stripe product and price when
// the StripePlan is deleted.
// +kubebuilder:validation:Enum=Archive;Orphan
type PlanDeletionPolicy string

const (
	// PlanDeletionPolicyArchive archives the price and the product
	// (active=false); Stripe keeps them for existing subscriptions and
	// invoices.
	PlanDeletionPolicyArchive PlanDeletionPolicy = "Archive"
	// PlanDeletionPolicyOrphan leaves the product and price as they are.
	PlanDeletionPolicyOrphan PlanDeletionPolicy = "Orphan"
)

// PriceChangePolicy says what happens to existing subscriptions when a
// plan's price changes (a new amount, interval or currency makes a new
// Stripe price).
// +kubebuilder:validation:Enum=Keep;AtNextRenewal;Immediately
type PriceChangePolicy string

const (
	// PriceChangePolicyKeep keeps every existing subscription on the price
	// it is on; only new subscriptions get the new price. Nothing is billed
	// because of the change.
	PriceChangePolicyKeep PriceChangePolicy = "Keep"
	// PriceChangePolicyAtNextRenewal moves each existing subscription to the
	// new price when its current period ends; nothing is billed before then.
	PriceChangePolicyAtNextRenewal PriceChangePolicy = "AtNextRenewal"
	// PriceChangePolicyImmediately moves each existing subscription now,
	// with its own prorationBehavior. A new interval resets the billing
	// period and invoices at once.
	PriceChangePolicyImmediately PriceChangePolicy = "Immediately"
)

// ConditionExistingSubscriptionsKept is True on a plan whose price changed
// currency: a Stripe customer bills in one currency, so its existing
// subscriptions stay on their earlier prices whatever priceChangePolicy
// says, and only new subscriptions get the new price.
const ConditionExistingSubscriptionsKept = "ExistingSubscriptionsKept"

// ReasonCurrencyChanged is the reason of ConditionExistingSubscriptionsKept.
const ReasonCurrencyChanged = "CurrencyChanged"

// PriceSubscriptions counts the subscriptions on one price.
type PriceSubscriptions struct {
	// priceID is the Stripe price (price_...).
	// +required
	PriceID string `json:"priceID"`
	// subscriptions is how many StripeSubscriptions have an item on it.
	// +required
	Subscriptions int32 `json:"subscriptions"`
}

// PlanSubscriptions counts the StripeSubscriptions that reference a plan
// (planRef), by the price Stripe last reported on their item.
type PlanSubscriptions struct {
	// onCurrentPrice is how many are on status.priceID.
	// +optional
	OnCurrentPrice int32 `json:"onCurrentPrice"`
	// onPreviousPrices is how many are on one of status.previousPriceIDs.
	// +optional
	OnPreviousPrices int32 `json:"onPreviousPrices"`
	// byPreviousPrice splits onPreviousPrices by price, oldest first; prices
	// nobody is on are left out.
	// +optional
	// +listType=atomic
	ByPreviousPrice []PriceSubscriptions `json:"byPreviousPrice,omitempty"`
	// scheduledToMove is how many of those on an earlier price have a move
	// to the current price scheduled in Stripe for the end of their period.
	// +optional
	ScheduledToMove int32 `json:"scheduledToMove"`
	// other is how many reference the plan but are on none of its prices
	// (not created yet, or on a price set outside the plan).
	// +optional
	Other int32 `json:"other"`
}

// RecurringInterval is the billing period unit of a recurring price.
// +kubebuilder:validation:Enum=day;week;month;year
type RecurringInterval string

// ProductSpec is the Stripe product of a plan. Its free-text checks sit on
// the struct so that a refusal never echoes the value.
// +kubebuilder:validation:XValidation:rule="!has(self.name) || !self.name.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="product.name must not contain a card number",fieldPath=".name"
// +kubebuilder:validation:XValidation:rule="!has(self.description) || !self.description.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="product.description must not contain a card number",fieldPath=".description"
type ProductSpec struct {
	// name is the product's name, shown to customers on invoices.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=250
	Name string `json:"name"`

	// description is the product's description.
	// +optional
	// +kubebuilder:validation:MaxLength=1000
	Description string `json:"description,omitempty"`

	// metadata is copied to the Stripe product's and price's metadata: at
	// most 44 keys, since Stripe allows 50 and the operator writes up to 6
	// of its own.
	// +optional
	// +kubebuilder:validation:MaxProperties=44
	Metadata Metadata `json:"metadata,omitempty"`
}

// PriceSpec is the recurring price of a plan. Stripe prices are immutable:
// a change of currency, unitAmount, interval or intervalCount creates a new
// price and archives the old one; spec.priceChangePolicy says what that
// does to existing subscriptions.
// +kubebuilder:validation:XValidation:rule="!has(self.lookupKey) || !self.lookupKey.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="price.lookupKey must not contain a card number",fieldPath=".lookupKey"
type PriceSpec struct {
	// currency is the three-letter ISO 4217 code, lowercase (usd, eur).
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z]{3}$`
	Currency string `json:"currency"`

	// unitAmount is the price per unit in the currency's smallest unit:
	// cents for usd, but whole yen for jpy and the other zero-decimal
	// currencies, which have no minor unit. 0 makes a free price.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=99999999
	UnitAmount int64 `json:"unitAmount"`

	// interval is the billing period unit: day, week, month or year.
	// +required
	Interval RecurringInterval `json:"interval"`

	// intervalCount is the number of intervals between billings (3 with
	// interval month bills quarterly).
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=365
	IntervalCount int64 `json:"intervalCount,omitempty"`

	// lookupKey is a key to find the plan's current price in Stripe; it moves
	// to each new price.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	LookupKey string `json:"lookupKey,omitempty"`
}

// StripePlanSpec is the desired state of a Stripe product with one
// recurring price.
// +kubebuilder:validation:XValidation:rule="!has(self.price.intervalCount) || (self.price.interval == 'day' && self.price.intervalCount <= 365) || (self.price.interval == 'week' && self.price.intervalCount <= 52) || (self.price.interval == 'month' && self.price.intervalCount <= 12) || (self.price.interval == 'year' && self.price.intervalCount <= 1)",message="price.intervalCount must make a billing period of at most one year",fieldPath=".price.intervalCount"
type StripePlanSpec struct {
	// product is the Stripe product.
	// +required
	Product ProductSpec `json:"product"`

	// price is the product's recurring price.
	// +required
	Price PriceSpec `json:"price"`

	// deletionPolicy says what happens in Stripe when this resource is
	// deleted: Archive archives the price and product, Orphan leaves them.
	// +optional
	// +kubebuilder:default=Archive
	DeletionPolicy PlanDeletionPolicy `json:"deletionPolicy,omitempty"`

	// priceChangePolicy says what a change of the price's terms (amount,
	// interval, intervalCount, currency: a new Stripe price) does to the
	// subscriptions already on the plan: Keep (the default) leaves them on
	// their price and gives the new price to new subscriptions only;
	// AtNextRenewal moves each one when its current period ends, billing
	// nothing before then; Immediately moves them now with each
	// subscription's own prorationBehavior. A currency change never moves an
	// existing subscription (a Stripe customer bills in one currency).
	// +optional
	// +kubebuilder:default=Keep
	PriceChangePolicy PriceChangePolicy `json:"priceChangePolicy,omitempty"`

	// managementPolicy is Manage (the operator writes to Stripe) or Observe
	// (it only reads and reports).
	// +optional
	// +kubebuilder:default=Manage
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`

	// productID adopts an existing Stripe product (prod_...) instead of
	// creating one; an active price on it that matches price is adopted too.
	// It cannot be changed once set.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^prod_[A-Za-z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="productID is immutable"
	ProductID string `json:"productID,omitempty"`
}

// StripePlanStatus is the observed state of a plan.
type StripePlanStatus struct {
	// productID is the ID of the Stripe product (prod_...).
	// +optional
	ProductID string `json:"productID,omitempty"`

	// priceID is the ID of the plan's current Stripe price (price_...).
	// New subscriptions that reference the plan are created on it; existing
	// ones move to it as spec.priceChangePolicy says.
	// +optional
	PriceID string `json:"priceID,omitempty"`

	// previousPriceIDs are the plan's earlier prices, oldest first; each was
	// archived when the price changed.
	// +optional
	// +listType=atomic
	PreviousPriceIDs []string `json:"previousPriceIDs,omitempty"`

	// subscriptions counts the StripeSubscriptions of this namespace that
	// reference the plan, by the price their status reports.
	// +optional
	Subscriptions *PlanSubscriptions `json:"subscriptions,omitempty"`

	CommonStatus `json:",inline"`
}

// StripePlan is a Stripe product with one recurring price, declared as a
// Kubernetes resource.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=splan,categories=stripe
// +kubebuilder:printcolumn:name="Amount",type=integer,JSONPath=`.spec.price.unitAmount`
// +kubebuilder:printcolumn:name="Currency",type=string,JSONPath=`.spec.price.currency`
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.price.interval`
// +kubebuilder:printcolumn:name="Price-ID",type=string,JSONPath=`.status.priceID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.priceChangePolicy`,priority=1
// +kubebuilder:printcolumn:name="On-Current",type=integer,JSONPath=`.status.subscriptions.onCurrentPrice`,priority=1
// +kubebuilder:printcolumn:name="On-Earlier",type=integer,JSONPath=`.status.subscriptions.onPreviousPrices`,priority=1
// +kubebuilder:printcolumn:name="Moving",type=integer,JSONPath=`.status.subscriptions.scheduledToMove`,priority=1
type StripePlan struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the plan.
	// +required
	Spec StripePlanSpec `json:"spec"`
	// status is the observed state of the plan.
	// It defaults to {observedGeneration: 0} so that a resource the operator
	// has not yet observed reads as in progress (kstatus, Argo CD), never as
	// current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status StripePlanStatus `json:"status,omitempty"`
}

// StripePlanList is a list of StripePlan.
// +kubebuilder:object:root=true
type StripePlanList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StripePlan `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StripePlan{}, &StripePlanList{})
}
