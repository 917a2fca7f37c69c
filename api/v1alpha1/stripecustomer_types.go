package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CustomerDeletionPolicy says what happens to the Stripe customer when the
// StripeCustomer is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type CustomerDeletionPolicy string

const (
	// CustomerDeletionPolicyDelete deletes the customer in Stripe.
	CustomerDeletionPolicyDelete CustomerDeletionPolicy = "Delete"
	// CustomerDeletionPolicyOrphan leaves the customer in Stripe.
	CustomerDeletionPolicyOrphan CustomerDeletionPolicy = "Orphan"
)

// StripeCustomerSpec is the desired state of a Stripe customer.
// The free-text checks sit on the spec rather than on each field, so that a
// refusal names the field without echoing its value (the API server quotes
// the value of a failing string field, and a card number must never be
// repeated).
// +kubebuilder:validation:XValidation:rule="!has(self.email) || !self.email.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="email must not contain a card number",fieldPath=".email"
// +kubebuilder:validation:XValidation:rule="!has(self.email) || self.email.matches('(?:[0-9][ -]?){12,18}[0-9]') || self.email.matches(r'^[^@\\s]+@[^@\\s]+$')",message="email must be an email address such as billing@example.com",fieldPath=".email"
// +kubebuilder:validation:XValidation:rule="!has(self.name) || !self.name.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="name must not contain a card number",fieldPath=".name"
// +kubebuilder:validation:XValidation:rule="!has(self.description) || !self.description.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="description must not contain a card number",fieldPath=".description"
// +kubebuilder:validation:XValidation:rule="!has(self.defaultPaymentMethod) || !self.defaultPaymentMethod.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="defaultPaymentMethod must be a PaymentMethod ID such as pm_card_visa, never a card number",fieldPath=".defaultPaymentMethod"
// +kubebuilder:validation:XValidation:rule="!has(self.defaultPaymentMethod) || self.defaultPaymentMethod.matches('(?:[0-9][ -]?){12,18}[0-9]') || self.defaultPaymentMethod.matches('^pm_[A-Za-z0-9_]+$')",message="defaultPaymentMethod must be a PaymentMethod ID starting with pm_",fieldPath=".defaultPaymentMethod"
// +kubebuilder:validation:XValidation:rule="has(self.testClock) == has(oldSelf.testClock) && (!has(self.testClock) || self.testClock == oldSelf.testClock)",message="testClock is immutable: Stripe puts a customer on a test clock only when it is created",fieldPath=".testClock"
type StripeCustomerSpec struct {
	// email is the customer's email address.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Email string `json:"email,omitempty"`

	// name is the customer's full name or business name.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name,omitempty"`

	// description is an arbitrary description shown in the Stripe Dashboard.
	// +optional
	// +kubebuilder:validation:MaxLength=350
	Description string `json:"description,omitempty"`

	// metadata is copied to the Stripe customer's metadata: at most 44
	// keys, since Stripe allows 50 and the operator writes up to 6 of its
	// own.
	// +optional
	// +kubebuilder:validation:MaxProperties=44
	Metadata Metadata `json:"metadata,omitempty"`

	// defaultPaymentMethod is the ID of a Stripe PaymentMethod (pm_...) used
	// for the customer's invoices. It is attached to the customer when it
	// changes, and the attached PaymentMethod becomes the default; Stripe's
	// test PaymentMethods (pm_card_visa, ...) make a new pm_... each time they
	// are attached, which status.defaultPaymentMethod records. Card numbers
	// and other card data are never accepted here: collect them with Stripe
	// Elements or Checkout and reference the resulting ID.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	DefaultPaymentMethod string `json:"defaultPaymentMethod,omitempty"`

	// deletionPolicy says what happens in Stripe when this resource is
	// deleted: Orphan (the default) leaves the customer, so re-applying the
	// manifest binds to it again; Delete deletes it, which Stripe cannot
	// undo, and is refused while the customer has any subscription that has
	// not ended, whoever made it.
	// +optional
	// +kubebuilder:default=Orphan
	DeletionPolicy CustomerDeletionPolicy `json:"deletionPolicy,omitempty"`

	// managementPolicy is Manage (the operator writes to Stripe) or Observe
	// (it only reads and reports).
	// +optional
	// +kubebuilder:default=Manage
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`

	// customerID adopts an existing Stripe customer (cus_...) instead of
	// creating one. It cannot be changed once set.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^cus_[A-Za-z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="customerID is immutable"
	CustomerID string `json:"customerID,omitempty"`

	// address is the customer's billing address. Stripe Tax locates the
	// customer by it (or by shipping). Personal data: consider
	// taxDetailsFrom to keep it out of Git.
	// +optional
	Address *Address `json:"address,omitempty"`

	// shipping is the customer's shipping name and address.
	// +optional
	Shipping *Shipping `json:"shipping,omitempty"`

	// taxIDs are the customer's tax IDs (such as an EU VAT number), shown
	// on invoices and used by Stripe Tax for reverse charge. Stripe keeps
	// each as an immutable object: a changed entry is deleted and created
	// again.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=25
	TaxIDs []TaxID `json:"taxIDs,omitempty"`

	// taxExempt is none, exempt or reverse (reverse charge).
	// +optional
	TaxExempt TaxExempt `json:"taxExempt,omitempty"`

	// taxDetailsFrom reads address, shipping, taxIDs and taxExempt from a
	// Secret in this namespace instead of the spec (keys address,
	// shipping, taxIDs, taxExempt; each a YAML or JSON document). A field
	// may come from one place only.
	// +optional
	TaxDetailsFrom *TaxDetailsFrom `json:"taxDetailsFrom,omitempty"`

	// testClock puts the new customer on a Stripe test clock (clock_...), so
	// that end-to-end tests can move it and its subscriptions through time.
	// Test mode only: it is refused with a live key. Stripe sets a
	// customer's test clock only when the customer is created, so it cannot
	// be added, changed or removed afterwards.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^clock_[A-Za-z0-9]+$`
	TestClock string `json:"testClock,omitempty"`
}

// PaymentMethodStatus records the PaymentMethod the operator made the
// customer's default.
type PaymentMethodStatus struct {
	// id is the attached PaymentMethod (pm_...) that is the customer's
	// default in Stripe.
	// +optional
	ID string `json:"id,omitempty"`
	// source is the spec.defaultPaymentMethod value it was attached from
	// (the same as id, or a test PaymentMethod such as pm_card_visa).
	// +optional
	Source string `json:"source,omitempty"`
}

// StripeCustomerStatus is the observed state of a Stripe customer.
type StripeCustomerStatus struct {
	// customerID is the ID of the Stripe customer (cus_...).
	// +optional
	CustomerID string `json:"customerID,omitempty"`

	// defaultPaymentMethod is the customer's default PaymentMethod as last
	// observed in Stripe after the operator set it, with the spec value it
	// came from. Drift is judged against it.
	// +optional
	DefaultPaymentMethod *PaymentMethodStatus `json:"defaultPaymentMethod,omitempty"`

	// tax is the customer's tax situation as last read from Stripe. It
	// never holds the address or a tax ID's value.
	// +optional
	Tax *CustomerTaxStatus `json:"tax,omitempty"`

	CommonStatus `json:",inline"`
}

// StripeCustomer is a Stripe customer declared as a Kubernetes resource.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=scus,categories=stripe
// +kubebuilder:printcolumn:name="Email",type=string,JSONPath=`.spec.email`
// +kubebuilder:printcolumn:name="Customer-ID",type=string,JSONPath=`.status.customerID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StripeCustomer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the customer.
	// +required
	Spec StripeCustomerSpec `json:"spec"`
	// status is the observed state of the customer.
	// It defaults to {observedGeneration: 0} so that a resource the operator
	// has not yet observed reads as in progress (kstatus, Argo CD), never as
	// current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status StripeCustomerStatus `json:"status,omitempty"`
}

// StripeCustomerList is a list of StripeCustomer.
// +kubebuilder:object:root=true
type StripeCustomerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StripeCustomer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StripeCustomer{}, &StripeCustomerList{})
}
