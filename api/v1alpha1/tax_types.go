package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Tax and billing-date fields (issue 22). The customer's address, shipping
// and tax IDs are personal data: they may be declared inline, or kept out of
// Git in a Secret of the same namespace named by spec.taxDetailsFrom (see
// docs/tax-and-billing-dates.md).

// Address is a postal address as Stripe stores it
// (https://docs.stripe.com/api/customers/object#customer_object-address).
// Stripe Tax needs at least the country, and the postal code in the United
// States and Canada ("Collect customer addresses",
// https://docs.stripe.com/tax/customer-locations).
// +kubebuilder:validation:XValidation:rule="!has(self.line1) || !self.line1.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="line1 must not contain a card number",fieldPath=".line1"
// +kubebuilder:validation:XValidation:rule="!has(self.line2) || !self.line2.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="line2 must not contain a card number",fieldPath=".line2"
// +kubebuilder:validation:XValidation:rule="!has(self.city) || !self.city.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="city must not contain a card number",fieldPath=".city"
// +kubebuilder:validation:XValidation:rule="!has(self.state) || !self.state.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="state must not contain a card number",fieldPath=".state"
// +kubebuilder:validation:XValidation:rule="!has(self.postalCode) || !self.postalCode.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="postalCode must not contain a card number",fieldPath=".postalCode"
type Address struct {
	// line1 is the street address.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	Line1 string `json:"line1,omitempty"`
	// line2 is the apartment, suite or building.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	Line2 string `json:"line2,omitempty"`
	// city is the city, district, suburb, town or village.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	City string `json:"city,omitempty"`
	// state is the state, county, province or region.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	State string `json:"state,omitempty"`
	// postalCode is the ZIP or postal code.
	// +optional
	// +kubebuilder:validation:MaxLength=40
	PostalCode string `json:"postalCode,omitempty"`
	// country is the two-letter ISO 3166-1 alpha-2 country code, such as DE.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Z]{2}$`
	Country string `json:"country,omitempty"`
}

// Shipping is the customer's shipping name and address; Stripe Tax prefers
// it to the billing address when both are set.
// +kubebuilder:validation:XValidation:rule="!has(self.name) || !self.name.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="name must not contain a card number",fieldPath=".name"
// +kubebuilder:validation:XValidation:rule="!has(self.phone) || !self.phone.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="phone must not contain a card number",fieldPath=".phone"
type Shipping struct {
	// name is the recipient's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// phone is the recipient's phone number.
	// +optional
	// +kubebuilder:validation:MaxLength=40
	Phone string `json:"phone,omitempty"`
	// address is the shipping address.
	// +required
	Address Address `json:"address"`
}

// TaxID is a customer tax ID. In Stripe it is an object of its own
// (txi_...), immutable: a change is a delete and a create
// (https://docs.stripe.com/api/tax_ids/create).
// +kubebuilder:validation:XValidation:rule="!has(self.value) || !self.value.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="value must not contain a card number",fieldPath=".value"
type TaxID struct {
	// type is Stripe's tax ID type, such as eu_vat, gb_vat or us_ein.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z]{2}_[a-z_]+$`
	// +kubebuilder:validation:MaxLength=20
	Type string `json:"type"`
	// value is the tax ID, such as DE123456789.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Value string `json:"value"`
}

// TaxExempt is Stripe's customer tax_exempt.
// +kubebuilder:validation:Enum=none;exempt;reverse
type TaxExempt string

// Values of TaxExempt.
const (
	TaxExemptNone    TaxExempt = "none"
	TaxExemptExempt  TaxExempt = "exempt"
	TaxExemptReverse TaxExempt = "reverse"
)

// TaxDetailsFrom names a Secret in the resource's namespace that holds the
// customer's tax details, so that they stay out of Git (seal it with
// sealed-secrets, or let external-secrets write it). Each key is optional
// and holds a YAML or JSON document of the same shape as the inline field:
// address, shipping, taxIDs (a list), taxExempt (a plain string). A field may
// come from the Secret or from the spec, not both.
type TaxDetailsFrom struct {
	// secretRef names the Secret.
	// +required
	SecretRef LocalObjectReference `json:"secretRef"`
}

// Keys of the tax details Secret.
const (
	TaxSecretKeyAddress   = "address"
	TaxSecretKeyShipping  = "shipping"
	TaxSecretKeyTaxIDs    = "taxIDs"
	TaxSecretKeyTaxExempt = "taxExempt"
)

// ObservedTaxID is a tax ID of the customer in Stripe. Its value is never
// copied into status.
type ObservedTaxID struct {
	// id is the Stripe tax ID object (txi_...).
	// +required
	ID string `json:"id"`
	// type is its type, such as eu_vat.
	// +required
	Type string `json:"type"`
	// verification is Stripe's verification status (pending, verified,
	// unverified, unavailable).
	// +optional
	Verification string `json:"verification,omitempty"`
}

// CustomerTaxStatus is what Stripe reports of the customer's tax situation.
type CustomerTaxStatus struct {
	// automaticTax is Stripe's customer.tax.automatic_tax: supported,
	// not_collecting, unrecognized_location or failed. Only supported lets
	// a subscription with automatic tax be taxed.
	// +optional
	AutomaticTax string `json:"automaticTax,omitempty"`
	// taxExempt is Stripe's tax_exempt.
	// +optional
	TaxExempt string `json:"taxExempt,omitempty"`
	// taxIDs are the customer's tax IDs the operator made.
	// +optional
	// +listType=atomic
	TaxIDs []ObservedTaxID `json:"taxIDs,omitempty"`
	// source is where the declared tax details came from: Spec, or
	// Secret/<name>.
	// +optional
	Source string `json:"source,omitempty"`
}

// AutomaticTax turns Stripe Tax on for a subscription.
type AutomaticTax struct {
	// enabled makes Stripe calculate tax on the subscription's invoices
	// from the customer's location.
	// +required
	Enabled bool `json:"enabled"`
}

// BillingCycleAnchor fixes the day a subscription bills on. It applies
// when the subscription is created: Stripe bills a prorated first period up
// to the anchor, then full periods from it ("Setting the subscription
// billing date", https://docs.stripe.com/billing/subscriptions/billing-cycle).
// Stripe cannot move the anchor of an existing subscription to a chosen
// date: a later change is refused with the condition BillingAnchorImmutable,
// unless resetToNowGeneration is declared (see there).
// +kubebuilder:validation:XValidation:rule="has(self.dayOfMonth) != has(self.at)",message="billingCycleAnchor needs exactly one of dayOfMonth or at"
type BillingCycleAnchor struct {
	// dayOfMonth bills on this day of each month (1 to 31; in a shorter
	// month, its last day), at midnight UTC: Stripe's
	// billing_cycle_anchor_config. Monthly and yearly prices only.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=31
	DayOfMonth *int64 `json:"dayOfMonth,omitempty"`
	// at is the first full period's start, a time in the future when the
	// subscription is created: Stripe's billing_cycle_anchor.
	// +optional
	At *metav1.Time `json:"at,omitempty"`
	// resetToNowGeneration, when set to the resource's metadata.generation
	// of the edit that sets it, asks for one reset of the anchor to the
	// moment of the update (billing_cycle_anchor=now, with the spec's
	// prorationBehavior): the only move of an existing anchor Stripe's API
	// offers besides a trial. It is applied once per value.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ResetToNowGeneration *int64 `json:"resetToNowGeneration,omitempty"`
}

// BillingDatesStatus records the billing dates the operator set in Stripe,
// as Stripe answered; drift is judged against them.
type BillingDatesStatus struct {
	// billingCycleAnchor is Stripe's billing_cycle_anchor as last set by
	// the operator (create, or a declared reset).
	// +optional
	BillingCycleAnchor *metav1.Time `json:"billingCycleAnchor,omitempty"`
	// trialEnd is Stripe's trial_end as last set by the operator.
	// +optional
	TrialEnd *metav1.Time `json:"trialEnd,omitempty"`
	// anchorResetGeneration is the last resetToNowGeneration applied.
	// +optional
	AnchorResetGeneration int64 `json:"anchorResetGeneration,omitempty"`
	// anchorDeclaration is the declared anchor the subscription was
	// created with, such as "dayOfMonth=1"; a later different declaration
	// cannot be applied.
	// +optional
	AnchorDeclaration string `json:"anchorDeclaration,omitempty"`
}

// SubscriptionTaxStatus is the tax the expected amount includes and what
// Stripe reports about automatic tax.
type SubscriptionTaxStatus struct {
	// exclusive is the tax added on top of the prices by the default tax
	// rates, per full period (in expectedAmount).
	// +optional
	Exclusive int64 `json:"exclusive,omitempty"`
	// inclusive is the tax already included in the prices by inclusive
	// tax rates (not added).
	// +optional
	Inclusive int64 `json:"inclusive,omitempty"`
	// automaticTaxStatus is the latest invoice's automatic_tax.status:
	// complete, failed or requires_location_inputs.
	// +optional
	AutomaticTaxStatus string `json:"automaticTaxStatus,omitempty"`
	// customerAutomaticTax is the customer's tax.automatic_tax as last read.
	// +optional
	CustomerAutomaticTax string `json:"customerAutomaticTax,omitempty"`
}

// Reasons for tax and billing-date conditions.
const (
	// ReasonTaxLocationRequired: automatic tax is declared but Stripe does
	// not recognise the customer's location, so invoices could not be
	// taxed.
	ReasonTaxLocationRequired = "TaxLocationRequired"
	// ReasonTaxDetailsInvalid: the tax details Secret is missing, or a key
	// is not a valid document.
	ReasonTaxDetailsInvalid = "TaxDetailsInvalid"
	// ReasonBillingAnchorImmutable: the declared billing anchor differs
	// from the one the subscription was created with; Stripe cannot move it.
	ReasonBillingAnchorImmutable = "BillingAnchorImmutable"
)

// TaxRateID is a Stripe tax rate ID (txr_...). Checked by CEL, whose
// refusal does not repeat the value.
// +kubebuilder:validation:MaxLength=255
// +kubebuilder:validation:XValidation:rule="!self.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="a tax rate ID must not contain a card number"
// +kubebuilder:validation:XValidation:rule="self.matches('^txr_[A-Za-z0-9]+$')",message="defaultTaxRates must be Stripe tax rate IDs starting with txr_"
type TaxRateID string
