package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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

// BillingScheme is how a price computes the amount of a quantity.
// +kubebuilder:validation:Enum=per_unit;tiered
type BillingScheme string

const (
	// BillingSchemePerUnit bills unitAmount (or unitAmountDecimal) per unit.
	BillingSchemePerUnit BillingScheme = "per_unit"
	// BillingSchemeTiered bills by tiers (tiersMode).
	BillingSchemeTiered BillingScheme = "tiered"
)

// TiersMode is how tiers apply to a quantity.
// +kubebuilder:validation:Enum=graduated;volume
type TiersMode string

const (
	// TiersModeGraduated bills the units of each tier at that tier's
	// amount (plus the flat amount of each tier reached).
	TiersModeGraduated TiersMode = "graduated"
	// TiersModeVolume bills every unit at the tier the whole quantity
	// falls in (plus that tier's flat amount).
	TiersModeVolume TiersMode = "volume"
)

// UsageType says whether the quantity is declared or measured.
// +kubebuilder:validation:Enum=licensed;metered
type UsageType string

const (
	// UsageTypeLicensed bills the subscription item's declared quantity.
	UsageTypeLicensed UsageType = "licensed"
	// UsageTypeMetered bills the usage the application reports during the
	// period; the subscription item has no quantity.
	UsageTypeMetered UsageType = "metered"
)

// AggregateUsage is how a metered price totals the usage reported in a
// period.
// +kubebuilder:validation:Enum=sum;last_during_period;last_ever;max
type AggregateUsage string

// TaxBehavior says whether the amount includes tax.
// +kubebuilder:validation:Enum=inclusive;exclusive;unspecified
type TaxBehavior string

// DecimalAmount is an amount in the currency's smallest unit with up to 12
// decimal places ("0.05" is a twentieth of a cent for usd). It is kept as
// a string so that it is exact.
// +kubebuilder:validation:Pattern=`^[0-9]{1,12}(\.[0-9]{1,12})?$`
// +kubebuilder:validation:MaxLength=25
type DecimalAmount string

// PriceTier is one tier of a tiered price. A tier bills unitAmount (or
// unitAmountDecimal) per unit and/or flatAmount (or flatAmountDecimal)
// once.
// +kubebuilder:validation:XValidation:rule="!(has(self.unitAmount) && has(self.unitAmountDecimal))",message="a tier's unitAmount and unitAmountDecimal are mutually exclusive",fieldPath=".unitAmountDecimal"
// +kubebuilder:validation:XValidation:rule="!(has(self.flatAmount) && has(self.flatAmountDecimal))",message="a tier's flatAmount and flatAmountDecimal are mutually exclusive",fieldPath=".flatAmountDecimal"
// +kubebuilder:validation:XValidation:rule="has(self.unitAmount) || has(self.unitAmountDecimal) || has(self.flatAmount) || has(self.flatAmountDecimal)",message="a tier needs unitAmount, unitAmountDecimal, flatAmount or flatAmountDecimal"
// +kubebuilder:validation:XValidation:rule="type(self.upTo) == int ? int(self.upTo) >= 1 : string(self.upTo) == 'inf'",message="a tier's upTo is a whole number of units (at least 1) or inf",fieldPath=".upTo"
type PriceTier struct {
	// upTo is the tier's last unit, or inf for the last tier.
	// +required
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=3
	UpTo intstr.IntOrString `json:"upTo"`
	// unitAmount is the amount per unit in the tier, in the currency's
	// smallest unit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=99999999
	UnitAmount *int64 `json:"unitAmount,omitempty"`
	// unitAmountDecimal is unitAmount with up to 12 decimal places.
	// +optional
	UnitAmountDecimal DecimalAmount `json:"unitAmountDecimal,omitempty"`
	// flatAmount is billed once when the quantity reaches the tier.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=99999999
	FlatAmount *int64 `json:"flatAmount,omitempty"`
	// flatAmountDecimal is flatAmount with up to 12 decimal places.
	// +optional
	FlatAmountDecimal DecimalAmount `json:"flatAmountDecimal,omitempty"`
}

// IsInf reports whether the tier is the open last tier (upTo: inf).
func (t *PriceTier) IsInf() bool {
	return t.UpTo.Type == intstr.String && t.UpTo.StrVal == "inf"
}

// TransformQuantity bills per package: the quantity is divided by divideBy
// and rounded before it is multiplied by the unit amount.
type TransformQuantity struct {
	// divideBy is the package size.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000
	DivideBy int64 `json:"divideBy"`
	// round is up (a started package is billed) or down.
	// +required
	// +kubebuilder:validation:Enum=up;down
	Round string `json:"round"`
}

// CurrencyOption is the price's amount in another currency: a customer
// whose currency it is bills in it.
// +kubebuilder:validation:XValidation:rule="!(has(self.unitAmount) && has(self.unitAmountDecimal))",message="a currency option's unitAmount and unitAmountDecimal are mutually exclusive",fieldPath=".unitAmountDecimal"
// +kubebuilder:validation:XValidation:rule="!has(self.tiers) || !(has(self.unitAmount) || has(self.unitAmountDecimal))",message="a currency option has tiers or a unit amount, not both",fieldPath=".tiers"
type CurrencyOption struct {
	// currency is the three-letter ISO 4217 code, lowercase.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z]{3}$`
	Currency string `json:"currency"`
	// unitAmount is the amount per unit in this currency's smallest unit
	// (per_unit prices).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=99999999
	UnitAmount *int64 `json:"unitAmount,omitempty"`
	// unitAmountDecimal is unitAmount with up to 12 decimal places.
	// +optional
	UnitAmountDecimal DecimalAmount `json:"unitAmountDecimal,omitempty"`
	// tiers are the tiers in this currency (tiered prices), with the same
	// upTo bounds as price.tiers.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=25
	Tiers []PriceTier `json:"tiers,omitempty"`
	// taxBehavior is the option's tax behavior (default: the price's).
	// +optional
	TaxBehavior TaxBehavior `json:"taxBehavior,omitempty"`
}

// PriceSpec is the recurring price of a plan. Stripe prices are immutable:
// a change of any of its terms (currency, amounts, tiers, interval,
// intervalCount, billingScheme, tiersMode, transformQuantity, usageType,
// aggregateUsage, currencyOptions, taxBehavior) creates a new price and
// archives the old one; spec.priceChangePolicy says what that does to
// existing subscriptions.
// +kubebuilder:validation:XValidation:rule="!has(self.lookupKey) || !self.lookupKey.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="price.lookupKey must not contain a card number",fieldPath=".lookupKey"
// +kubebuilder:validation:XValidation:rule="(has(self.billingScheme) && self.billingScheme == 'tiered') == (has(self.tiers) && size(self.tiers) > 0)",message="price.tiers are required when price.billingScheme is tiered, and allowed only then",fieldPath=".tiers"
// +kubebuilder:validation:XValidation:rule="(has(self.billingScheme) && self.billingScheme == 'tiered') == has(self.tiersMode)",message="price.tiersMode (graduated or volume) is required when price.billingScheme is tiered, and allowed only then",fieldPath=".tiersMode"
// +kubebuilder:validation:XValidation:rule="!(has(self.unitAmount) && has(self.unitAmountDecimal))",message="price.unitAmount and price.unitAmountDecimal are mutually exclusive",fieldPath=".unitAmountDecimal"
// +kubebuilder:validation:XValidation:rule="!(has(self.billingScheme) && self.billingScheme == 'tiered') || !(has(self.unitAmount) || has(self.unitAmountDecimal))",message="price.unitAmount and price.unitAmountDecimal are not allowed when price.billingScheme is tiered (the tiers carry the amounts)",fieldPath=".unitAmount"
// +kubebuilder:validation:XValidation:rule="!(has(self.billingScheme) && self.billingScheme == 'tiered') || !has(self.transformQuantity)",message="price.transformQuantity cannot be combined with price.billingScheme tiered",fieldPath=".transformQuantity"
// +kubebuilder:validation:XValidation:rule="!has(self.aggregateUsage) || (has(self.usageType) && self.usageType == 'metered')",message="price.aggregateUsage is allowed only when price.usageType is metered",fieldPath=".aggregateUsage"
// +kubebuilder:validation:XValidation:rule="!has(self.currencyOptions) || self.currencyOptions.all(o, o.currency != self.currency)",message="price.currencyOptions must not repeat the price's own currency",fieldPath=".currencyOptions"
// +kubebuilder:validation:XValidation:rule="!has(self.currencyOptions) || self.currencyOptions.all(o, (has(self.billingScheme) && self.billingScheme == 'tiered') ? (has(o.tiers) && size(o.tiers) == size(self.tiers)) : !has(o.tiers))",message="each of price.currencyOptions has tiers (as many as price.tiers) when the price is tiered, and a unit amount otherwise",fieldPath=".currencyOptions"
type PriceSpec struct {
	// currency is the three-letter ISO 4217 code, lowercase (usd, eur).
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z]{3}$`
	Currency string `json:"currency"`

	// unitAmount is the price per unit in the currency's smallest unit:
	// cents for usd, but whole yen for jpy and the other zero-decimal
	// currencies, which have no minor unit. Unset (or 0) with no
	// unitAmountDecimal makes a free per-unit price. Not allowed with
	// billingScheme tiered.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=99999999
	UnitAmount int64 `json:"unitAmount,omitempty"`

	// unitAmountDecimal is the price per unit in the currency's smallest
	// unit with up to 12 decimal places ("0.05": a twentieth of a cent).
	// Stripe rounds each invoice line to the smallest unit. Mutually
	// exclusive with unitAmount.
	// +optional
	UnitAmountDecimal DecimalAmount `json:"unitAmountDecimal,omitempty"`

	// billingScheme is per_unit (the default: unitAmount per unit) or
	// tiered (tiers and tiersMode).
	// +optional
	BillingScheme BillingScheme `json:"billingScheme,omitempty"`

	// tiersMode is graduated or volume; required with billingScheme tiered.
	// +optional
	TiersMode TiersMode `json:"tiersMode,omitempty"`

	// tiers are the price's tiers, by rising upTo; the last one, and only
	// it, has upTo: inf. Required with billingScheme tiered.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=25
	// +kubebuilder:validation:XValidation:rule="self[size(self)-1].upTo == 'inf'",message="the last of price.tiers must have upTo: inf"
	// +kubebuilder:validation:XValidation:rule="size(self.filter(t, t.upTo == 'inf')) <= 1",message="only the last of price.tiers may have upTo: inf"
	// +kubebuilder:validation:XValidation:rule="self.filter(t, t.upTo != 'inf').map(t, int(t.upTo)).isSorted() && self.filter(t, t.upTo != 'inf').all(a, size(self.filter(b, b.upTo == a.upTo)) == 1)",message="price.tiers upTo must rise from one tier to the next"
	Tiers []PriceTier `json:"tiers,omitempty"`

	// transformQuantity bills per package of divideBy units, rounded up or
	// down. Not allowed with billingScheme tiered.
	// +optional
	TransformQuantity *TransformQuantity `json:"transformQuantity,omitempty"`

	// usageType is licensed (the default: the subscription item's
	// quantity is billed) or metered (the usage the application reports
	// during the period is billed; subscription items have no quantity).
	// +optional
	UsageType UsageType `json:"usageType,omitempty"`

	// aggregateUsage is how a metered price totals the period's usage:
	// sum (the default), last_during_period, last_ever or max.
	// +optional
	AggregateUsage AggregateUsage `json:"aggregateUsage,omitempty"`

	// currencyOptions are the price's amounts in other currencies; a
	// customer whose currency is one of them is billed in it.
	// +optional
	// +listType=map
	// +listMapKey=currency
	// +kubebuilder:validation:MaxItems=20
	CurrencyOptions []CurrencyOption `json:"currencyOptions,omitempty"`

	// taxBehavior says whether the amounts include tax (inclusive), add
	// it (exclusive), or leave it to the account's default (unspecified).
	// +optional
	TaxBehavior TaxBehavior `json:"taxBehavior,omitempty"`

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
