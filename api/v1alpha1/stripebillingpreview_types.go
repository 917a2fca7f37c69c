package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	sigsjson "sigs.k8s.io/json"
)

// A StripeBillingPreview asks the operator what StripeSubscription and
// StripePlan manifests (new or changed) would bill, without applying them:
// the operator answers in status from Stripe's upcoming-invoice API
// (GET /v1/invoices/upcoming) and other reads. It writes nothing to Stripe
// and nothing to the resources. `kubectl stripe preview` creates one, waits
// for the answer, prints it and deletes it; a preview left behind is
// deleted by the operator when it expires (spec.ttlSeconds after its
// creation).
//
// A preview is a tenant's question: every reference it makes (customerRef,
// planRef, customerID, subscriptionID, priceID) must resolve to a resource
// in its own namespace, or it is refused.

// Reasons of a StripeBillingPreview's Ready condition.
const (
	// ReasonPreviewed: status holds the answer.
	ReasonPreviewed = "Previewed"
	// ReasonPreviewRefused: the preview names something outside its
	// namespace, or something that does not exist yet; the message says
	// what (Stalled True).
	ReasonPreviewRefused = "PreviewRefused"
	// ReasonNotInNamespace: a Stripe ID the preview names is not bound to a
	// resource in the preview's namespace (Stalled True).
	ReasonNotInNamespace = "NotInNamespace"
)

// DefaultPreviewTTLSeconds is how long a preview lives when spec.ttlSeconds
// is unset.
const DefaultPreviewTTLSeconds = 600

// PreviewSubscription is a StripeSubscription manifest to preview: a new
// resource, or a change of the resource of that name in the preview's
// namespace.
type PreviewSubscription struct {
	// name is the StripeSubscription's name in the preview's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// spec is the StripeSubscription's spec as it would be applied.
	// +required
	Spec StripeSubscriptionSpec `json:"spec"`
}

// PreviewPlan is a StripePlan manifest to preview: a change of the plan of
// that name in the preview's namespace, or a new plan that subscriptions of
// the same preview may reference.
type PreviewPlan struct {
	// name is the StripePlan's name in the preview's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// spec is the StripePlan's spec as it would be applied. It is kept
	// without StripePlan's schema: embedding up to 10 plan specs with their
	// price CEL rules exceeds the CRD's CEL cost budget. The operator
	// decodes it strictly into a StripePlanSpec (DecodeSpec) and refuses the
	// preview naming the field; `kubectl stripe preview` first validates
	// each manifest against the StripePlan CRD with a server-side dry-run.
	// +required
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	Spec runtime.RawExtension `json:"spec"`
}

// NewPreviewPlan embeds a StripePlan spec.
func NewPreviewPlan(name string, spec StripePlanSpec) (PreviewPlan, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return PreviewPlan{}, fmt.Errorf("encoding StripePlan %s's spec: %w", name, err)
	}
	return PreviewPlan{Name: name, Spec: runtime.RawExtension{Raw: raw}}, nil
}

// DecodeSpec decodes spec strictly into a StripePlanSpec: an unknown or
// duplicate field, or a value of the wrong type, is an error naming the
// field. The StripePlan CRD's CEL rules are not applied here.
func (p *PreviewPlan) DecodeSpec() (*StripePlanSpec, error) {
	raw := p.Spec.Raw
	if len(raw) == 0 && p.Spec.Object != nil {
		b, err := json.Marshal(p.Spec.Object)
		if err != nil {
			return nil, fmt.Errorf("spec: %w", err)
		}
		raw = b
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("spec: Required value")
	}
	var spec StripePlanSpec
	strict, err := sigsjson.UnmarshalStrict(raw, &spec)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("spec: %w", strict[0])
	}
	return &spec, nil
}

// StripeBillingPreviewSpec embeds the manifests to preview.
// +kubebuilder:validation:XValidation:rule="(has(self.subscriptions) && size(self.subscriptions) > 0) || (has(self.plans) && size(self.plans) > 0)",message="a preview needs at least one subscription or plan"
type StripeBillingPreviewSpec struct {
	// subscriptions are StripeSubscription manifests, new or changed.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	Subscriptions []PreviewSubscription `json:"subscriptions,omitempty"`
	// plans are StripePlan manifests, new or changed.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=10
	Plans []PreviewPlan `json:"plans,omitempty"`
	// ttlSeconds is how long after its creation the operator deletes the
	// preview (default 600).
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=86400
	TTLSeconds *int32 `json:"ttlSeconds,omitempty"`
}

// PreviewLine is one line of a previewed invoice.
type PreviewLine struct {
	// description is Stripe's line description.
	// +optional
	Description string `json:"description,omitempty"`
	// priceID is the line's price ("" for an inline price of a plan not
	// created yet).
	// +optional
	PriceID string `json:"priceID,omitempty"`
	// quantity is the line's quantity.
	// +optional
	Quantity int64 `json:"quantity,omitempty"`
	// amount is in the currency's minor unit; a credit is negative.
	Amount int64 `json:"amount"`
	// proration marks a proration (credit for unused time, charge for the
	// remaining time).
	// +optional
	Proration bool `json:"proration,omitempty"`
}

// InvoicePreview is an invoice Stripe would make.
type InvoicePreview struct {
	// date is when Stripe would make it.
	// +optional
	Date *metav1.Time `json:"date,omitempty"`
	// amountDue is what the customer would be charged, in the currency's
	// minor unit (a credit left over goes to the customer balance).
	AmountDue int64 `json:"amountDue"`
	// total is the sum of the lines.
	Total int64 `json:"total"`
	// currency is the invoice's currency.
	Currency string `json:"currency"`
	// lines are the invoice's lines.
	// +optional
	// +listType=atomic
	Lines []PreviewLine `json:"lines,omitempty"`
}

// SubscriptionPreview is what one StripeSubscription manifest would bill.
type SubscriptionPreview struct {
	// name is the StripeSubscription's name.
	Name string `json:"name"`
	// subscriptionID is the Stripe subscription the change applies to, ""
	// for a new subscription.
	// +optional
	SubscriptionID string `json:"subscriptionID,omitempty"`
	// customerID is the Stripe customer billed.
	// +optional
	CustomerID string `json:"customerID,omitempty"`
	// immediate is the invoice the change makes at once (a new
	// subscription's first invoice, invoiced prorations, a new period);
	// unset when nothing is invoiced now.
	// +optional
	Immediate *InvoicePreview `json:"immediate,omitempty"`
	// next is the next invoice after that (the renewal); unset when there
	// is none (the subscription ends).
	// +optional
	Next *InvoicePreview `json:"next,omitempty"`
	// prorationDate is the time the change was previewed at: Stripe's
	// "now" for the customer (a test clock's frozen time for a customer on
	// one).
	// +optional
	ProrationDate *metav1.Time `json:"prorationDate,omitempty"`
	// endsAt is when the subscription ends, when it is set to end.
	// +optional
	EndsAt *metav1.Time `json:"endsAt,omitempty"`
	// notes say what the preview assumed.
	// +optional
	// +listType=atomic
	Notes []string `json:"notes,omitempty"`
}

// PlanMove is when a plan change moves a subscription to the new price.
// +kubebuilder:validation:Enum=Now;AtNextRenewal;Kept
type PlanMove string

// Values of PlanMove.
const (
	PlanMoveNow           PlanMove = "Now"
	PlanMoveAtNextRenewal PlanMove = "AtNextRenewal"
	PlanMoveKept          PlanMove = "Kept"
)

// PlanSubscriptionPreview is what a plan change does to one subscription.
type PlanSubscriptionPreview struct {
	// name is the StripeSubscription's name.
	Name string `json:"name"`
	// subscriptionID is its Stripe subscription.
	// +optional
	SubscriptionID string `json:"subscriptionID,omitempty"`
	// currency is the subscription's currency.
	Currency string `json:"currency"`
	// move is when its item moves to the new price.
	Move PlanMove `json:"move"`
	// at is when it moves.
	// +optional
	At *metav1.Time `json:"at,omitempty"`
	// chargedNow is what the move invoices at once.
	ChargedNow int64 `json:"chargedNow"`
	// nextBefore and nextAfter are the subscription's next renewal amount
	// without and with the change.
	NextBefore int64 `json:"nextBefore"`
	NextAfter  int64 `json:"nextAfter"`
}

// PlanCurrencyPreview sums a plan change per currency (amounts in different
// currencies are never added).
type PlanCurrencyPreview struct {
	// currency is the currency summed.
	Currency string `json:"currency"`
	// subscriptions is how many subscriptions reference the plan.
	Subscriptions int32 `json:"subscriptions"`
	// movingNow and movingAtNextRenewal are how many move, and when;
	// kept is how many stay on their price.
	MovingNow           int32 `json:"movingNow"`
	MovingAtNextRenewal int32 `json:"movingAtNextRenewal"`
	Kept                int32 `json:"kept"`
	// chargedNow is the total invoiced at once.
	ChargedNow int64 `json:"chargedNow"`
	// nextRenewalsChange is the change in the sum of the next renewals.
	NextRenewalsChange int64 `json:"nextRenewalsChange"`
}

// PlanPreview is what one StripePlan manifest would do to the
// subscriptions that reference the plan.
type PlanPreview struct {
	// name is the StripePlan's name.
	Name string `json:"name"`
	// priceChanges is true when the manifest makes a new Stripe price
	// (amount, currency or interval changed).
	PriceChanges bool `json:"priceChanges"`
	// fromPriceID is the plan's current price ("" for a new plan).
	// +optional
	FromPriceID string `json:"fromPriceID,omitempty"`
	// policy is the manifest's priceChangePolicy.
	// +optional
	Policy PriceChangePolicy `json:"policy,omitempty"`
	// currencies sums the change per currency.
	// +optional
	// +listType=atomic
	Currencies []PlanCurrencyPreview `json:"currencies,omitempty"`
	// subscriptions lists each subscription the change reaches.
	// +optional
	// +listType=atomic
	Subscriptions []PlanSubscriptionPreview `json:"subscriptions,omitempty"`
	// notes say what the preview assumed.
	// +optional
	// +listType=atomic
	Notes []string `json:"notes,omitempty"`
}

// StripeBillingPreviewStatus is the operator's answer.
type StripeBillingPreviewStatus struct {
	// previewedAt is when Stripe was asked: the first subscription's
	// proration date (Stripe's time), else the operator's clock.
	// +optional
	PreviewedAt *metav1.Time `json:"previewedAt,omitempty"`
	// expiresAt is when the operator deletes the preview.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// subscriptions answer spec.subscriptions, in order.
	// +optional
	// +listType=atomic
	Subscriptions []SubscriptionPreview `json:"subscriptions,omitempty"`
	// plans answer spec.plans, in order.
	// +optional
	// +listType=atomic
	Plans []PlanPreview `json:"plans,omitempty"`
	// chargedNow is everything the manifests would invoice at once, per
	// currency.
	// +optional
	// +listType=atomic
	ChargedNow []Amount `json:"chargedNow,omitempty"`
	// stripeCalls is how many Stripe reads the answer took.
	// +optional
	StripeCalls int32 `json:"stripeCalls,omitempty"`

	CommonStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sbp,categories=stripe
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Expires",type=date,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// StripeBillingPreview asks what StripeSubscription and StripePlan
// manifests would bill; the operator answers in status and writes nothing.
type StripeBillingPreview struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the manifests; it cannot change once created.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a preview's spec is immutable: create a new preview"
	Spec StripeBillingPreviewSpec `json:"spec"`

	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status StripeBillingPreviewStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// StripeBillingPreviewList contains a list of StripeBillingPreview.
type StripeBillingPreviewList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StripeBillingPreview `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StripeBillingPreview{}, &StripeBillingPreviewList{})
}
