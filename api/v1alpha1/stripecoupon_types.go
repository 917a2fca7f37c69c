package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CouponDuration is how long a discount made from the coupon lasts
// (Stripe's duration).
// +kubebuilder:validation:Enum=once;repeating;forever
type CouponDuration string

const (
	// CouponDurationOnce discounts the first invoice only.
	CouponDurationOnce CouponDuration = "once"
	// CouponDurationRepeating discounts every invoice for durationInMonths
	// months from when the discount is applied.
	CouponDurationRepeating CouponDuration = "repeating"
	// CouponDurationForever discounts every invoice.
	CouponDurationForever CouponDuration = "forever"
)

// CouponDeletionPolicy says what happens to the Stripe coupon when the
// StripeCoupon is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type CouponDeletionPolicy string

const (
	// CouponDeletionPolicyDelete deactivates the promotion codes and deletes
	// the coupon (and its earlier coupons) in Stripe: nobody can redeem
	// them any more, and discounts already applied to subscriptions are
	// unaffected (https://docs.stripe.com/api/coupons/delete).
	CouponDeletionPolicyDelete CouponDeletionPolicy = "Delete"
	// CouponDeletionPolicyOrphan leaves the coupon and its promotion codes
	// as they are.
	CouponDeletionPolicyOrphan CouponDeletionPolicy = "Orphan"
)

// CouponCurrencyOption is an amount-off coupon's amount in another
// currency.
type CouponCurrencyOption struct {
	// amountOff is the amount taken off, in that currency's minor unit.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99999999
	AmountOff int64 `json:"amountOff"`
}

// CouponAppliesTo restricts a coupon to some products.
// +kubebuilder:validation:XValidation:rule="(has(self.planRefs) && size(self.planRefs) > 0) || (has(self.productIDs) && size(self.productIDs) > 0)",message="appliesTo needs at least one planRef or productID"
type CouponAppliesTo struct {
	// planRefs name StripePlans in the same namespace; the coupon applies
	// to their products.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	PlanRefs []LocalObjectReference `json:"planRefs,omitempty"`
	// productIDs are Stripe products (prod_...) the coupon applies to.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MaxLength=255
	// +kubebuilder:validation:items:Pattern=`^prod_[A-Za-z0-9]+$`
	ProductIDs []string `json:"productIDs,omitempty"`
}

// PromotionCodeRestrictions are the conditions of a promotion code.
// +kubebuilder:validation:XValidation:rule="has(self.minimumAmount) == has(self.minimumAmountCurrency)",message="minimumAmount and minimumAmountCurrency go together"
type PromotionCodeRestrictions struct {
	// firstTimeTransaction: only customers without any successful payment
	// or invoice may redeem the code.
	// +optional
	FirstTimeTransaction bool `json:"firstTimeTransaction,omitempty"`
	// minimumAmount is the least the first invoice must bill, in
	// minimumAmountCurrency's minor unit.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99999999
	MinimumAmount *int64 `json:"minimumAmount,omitempty"`
	// minimumAmountCurrency is minimumAmount's currency, lowercase.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-z]{3}$`
	MinimumAmountCurrency string `json:"minimumAmountCurrency,omitempty"`
}

// PromotionCodeSpec is a customer-facing code for the coupon. A promotion
// code is immutable in Stripe except for active and metadata: a change of
// its other fields deactivates the Stripe promotion code and makes a new
// one with the same code.
type PromotionCodeSpec struct {
	// code is what customers type, unique regardless of case among the
	// account's active codes. Letters and digits.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]+$`
	Code string `json:"code"`
	// active: whether the code can be redeemed. Default true.
	// +optional
	// +kubebuilder:default=true
	Active *bool `json:"active,omitempty"`
	// maxRedemptions is how often the code can be redeemed in all.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRedemptions *int64 `json:"maxRedemptions,omitempty"`
	// expiresAt is when the code stops being redeemable.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// restrictions limit who can redeem the code.
	// +optional
	Restrictions *PromotionCodeRestrictions `json:"restrictions,omitempty"`
}

// StripeCouponSpec is the desired state of a Stripe coupon and its
// promotion codes. A Stripe coupon is immutable except for its name and
// metadata: a change of any other term makes a new coupon, moves the
// promotion codes to it, and keeps the old one for the subscriptions
// already using it (status.previousCouponIDs). No existing subscriber's
// discount changes.
// +kubebuilder:validation:XValidation:rule="has(self.percentOff) != has(self.amountOff)",message="exactly one of percentOff or amountOff must be set"
// +kubebuilder:validation:XValidation:rule="has(self.amountOff) == has(self.currency)",message="currency is required with amountOff, and only allowed with it",fieldPath=".currency"
// +kubebuilder:validation:XValidation:rule="!has(self.currencyOptions) || has(self.amountOff)",message="currencyOptions are only allowed with amountOff",fieldPath=".currencyOptions"
// +kubebuilder:validation:XValidation:rule="(self.duration == 'repeating') == has(self.durationInMonths)",message="durationInMonths is required with duration repeating, and only allowed with it",fieldPath=".durationInMonths"
// +kubebuilder:validation:XValidation:rule="!has(self.promotionCodes) || self.promotionCodes.all(a, self.promotionCodes.filter(b, b.code.lowerAscii() == a.code.lowerAscii()).size() == 1)",message="promotionCodes must have distinct codes (regardless of case)",fieldPath=".promotionCodes"
// +kubebuilder:validation:XValidation:rule="!has(self.name) || !self.name.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="name must not contain a card number",fieldPath=".name"
type StripeCouponSpec struct {
	// name is shown to customers on invoices and receipts; it can change
	// without a new coupon.
	// +optional
	// +kubebuilder:validation:MaxLength=40
	Name string `json:"name,omitempty"`

	// percentOff is the percentage taken off, an exact decimal greater
	// than 0 and at most 100 with at most two decimal places ("25",
	// "12.5").
	// +optional
	// +kubebuilder:validation:Pattern=`^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$`
	// +kubebuilder:validation:XValidation:rule="self.matches('[1-9]')",message="percentOff must be greater than 0"
	PercentOff string `json:"percentOff,omitempty"`

	// amountOff is the amount taken off, in currency's minor unit (cents
	// for usd, whole yen for jpy).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99999999
	AmountOff *int64 `json:"amountOff,omitempty"`

	// currency is amountOff's currency, lowercase.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-z]{3}$`
	Currency string `json:"currency,omitempty"`

	// currencyOptions are amountOff's amounts in other currencies, by
	// lowercase currency code.
	// +optional
	// +kubebuilder:validation:MaxProperties=20
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-z]{3}$'))",message="currencyOptions keys must be lowercase three-letter currency codes"
	CurrencyOptions map[string]CouponCurrencyOption `json:"currencyOptions,omitempty"`

	// duration is once (the first invoice), repeating (every invoice for
	// durationInMonths months from when it is applied) or forever.
	// +required
	Duration CouponDuration `json:"duration"`

	// durationInMonths is the number of months a repeating discount lasts.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=120
	DurationInMonths *int64 `json:"durationInMonths,omitempty"`

	// maxRedemptions is how many times the coupon can be redeemed in all,
	// across every customer.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRedemptions *int64 `json:"maxRedemptions,omitempty"`

	// redeemBy is the last time the coupon can be redeemed; discounts
	// already applied keep running.
	// +optional
	RedeemBy *metav1.Time `json:"redeemBy,omitempty"`

	// appliesTo restricts the discount to some products (plans of this
	// namespace or product IDs); unset, it applies to every item.
	// +optional
	AppliesTo *CouponAppliesTo `json:"appliesTo,omitempty"`

	// promotionCodes are customer-facing codes for the coupon.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	PromotionCodes []PromotionCodeSpec `json:"promotionCodes,omitempty"`

	// metadata is copied to the Stripe coupon's and promotion codes'
	// metadata: at most 44 keys, since Stripe allows 50 and the operator
	// writes up to 6 of its own.
	// +optional
	// +kubebuilder:validation:MaxProperties=44
	Metadata Metadata `json:"metadata,omitempty"`

	// deletionPolicy says what happens in Stripe when this resource is
	// deleted: Delete (the default) deactivates the promotion codes and
	// deletes the coupons, which ends redemptions but no discount already
	// applied; Orphan leaves them.
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy CouponDeletionPolicy `json:"deletionPolicy,omitempty"`

	// managementPolicy is Manage (the operator writes to Stripe) or Observe
	// (it only reads and reports).
	// +optional
	// +kubebuilder:default=Manage
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`

	// couponID adopts an existing Stripe coupon instead of creating one.
	// It cannot be changed once set.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="couponID is immutable"
	CouponID string `json:"couponID,omitempty"`
}

// ObservedPromotionCode is a promotion code as Stripe reports it.
type ObservedPromotionCode struct {
	// code is the customer-facing code.
	// +optional
	Code string `json:"code,omitempty"`
	// id is the Stripe promotion code (promo_...).
	// +optional
	ID string `json:"id,omitempty"`
	// couponID is the coupon it redeems.
	// +optional
	CouponID string `json:"couponID,omitempty"`
	// active is whether it can be redeemed.
	// +optional
	Active bool `json:"active,omitempty"`
	// timesRedeemed is how often it was redeemed.
	// +optional
	TimesRedeemed int64 `json:"timesRedeemed,omitempty"`
}

// StripeCouponStatus is the observed state of a coupon.
type StripeCouponStatus struct {
	// couponID is the Stripe coupon new discounts are made from.
	// +optional
	CouponID string `json:"couponID,omitempty"`
	// previousCouponIDs are the coupons of earlier terms, oldest first;
	// subscriptions that use them keep their discount.
	// +optional
	// +listType=atomic
	PreviousCouponIDs []string `json:"previousCouponIDs,omitempty"`
	// promotionCodes are the coupon's promotion codes as last read, and the
	// deactivated ones of earlier terms the operator still tracks.
	// +optional
	// +listType=atomic
	PromotionCodes []ObservedPromotionCode `json:"promotionCodes,omitempty"`
	// timesRedeemed is how often the current coupon was redeemed.
	// +optional
	TimesRedeemed int64 `json:"timesRedeemed,omitempty"`
	// valid is Stripe's valid: the coupon can still be redeemed.
	// +optional
	Valid bool `json:"valid,omitempty"`

	CommonStatus `json:",inline"`
}

// StripeCoupon is a Stripe coupon with its promotion codes, declared as a
// Kubernetes resource.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=scoupon,categories=stripe
// +kubebuilder:printcolumn:name="Percent",type=string,JSONPath=`.spec.percentOff`
// +kubebuilder:printcolumn:name="Amount",type=integer,JSONPath=`.spec.amountOff`
// +kubebuilder:printcolumn:name="Currency",type=string,JSONPath=`.spec.currency`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.spec.duration`
// +kubebuilder:printcolumn:name="Coupon-ID",type=string,JSONPath=`.status.couponID`
// +kubebuilder:printcolumn:name="Redeemed",type=integer,JSONPath=`.status.timesRedeemed`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Months",type=integer,JSONPath=`.spec.durationInMonths`,priority=1
// +kubebuilder:printcolumn:name="Valid",type=boolean,JSONPath=`.status.valid`,priority=1
type StripeCoupon struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the coupon.
	// +required
	Spec StripeCouponSpec `json:"spec"`
	// status is the observed state of the coupon. It defaults to
	// {observedGeneration: 0} so that a resource the operator has not yet
	// observed reads as in progress.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status StripeCouponStatus `json:"status,omitempty"`
}

// StripeCouponList is a list of StripeCoupon.
// +kubebuilder:object:root=true
type StripeCouponList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StripeCoupon `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StripeCoupon{}, &StripeCouponList{})
}

// GetConditions returns the status conditions.
func (c *StripeCoupon) GetConditions() []metav1.Condition { return c.Status.Conditions }

// SetConditions replaces the status conditions.
func (c *StripeCoupon) SetConditions(conds []metav1.Condition) { c.Status.Conditions = conds }

// GetObservedGeneration returns the generation last reconciled.
func (c *StripeCoupon) GetObservedGeneration() int64 { return c.Status.ObservedGeneration }

// SetObservedGeneration records the generation last reconciled.
func (c *StripeCoupon) SetObservedGeneration(g int64) { c.Status.ObservedGeneration = g }

// GetManagementPolicy returns the management policy, Manage when unset.
func (c *StripeCoupon) GetManagementPolicy() ManagementPolicy {
	return defaultPolicy(c.Spec.ManagementPolicy)
}

// BoundStripeIDs returns status.couponID and status.previousCouponIDs.
// Promotion codes are written only while their coupon may be.
func (c *StripeCoupon) BoundStripeIDs() []string {
	return append([]string{c.Status.CouponID}, c.Status.PreviousCouponIDs...)
}

// MaxUserMetadataKeysCoupon is the most keys spec.metadata of a coupon
// holds (Stripe's 50 less the operator's identity keys and orphaned).
const MaxUserMetadataKeysCoupon = 44
