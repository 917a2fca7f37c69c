package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WebhookEndpointDeletionPolicy says what happens to the Stripe webhook
// endpoint when the StripeWebhookEndpoint is deleted.
// +kubebuilder:validation:Enum=Delete;Disable;Orphan
type WebhookEndpointDeletionPolicy string

const (
	// WebhookEndpointDeletionPolicyDelete deletes the endpoint in Stripe.
	WebhookEndpointDeletionPolicyDelete WebhookEndpointDeletionPolicy = "Delete"
	// WebhookEndpointDeletionPolicyDisable disables it (kept in Stripe,
	// nothing delivered).
	WebhookEndpointDeletionPolicyDisable WebhookEndpointDeletionPolicy = "Disable"
	// WebhookEndpointDeletionPolicyOrphan leaves it as it is.
	WebhookEndpointDeletionPolicyOrphan WebhookEndpointDeletionPolicy = "Orphan"
)

// OperatorAPIVersion is the Stripe API version of the operator's client
// (stripe-go v76): events in this version have the shapes the operator reads.
const OperatorAPIVersion = "2023-10-16"

// DefaultWebhookEvents are exactly the event types the webhook server
// applies; spec.enabledEvents defaults to them.
var DefaultWebhookEvents = []string{
	"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
	"customer.subscription.paused", "customer.subscription.resumed", "customer.subscription.trial_will_end",
	"invoice.created", "invoice.finalized", "invoice.updated", "invoice.paid", "invoice.payment_succeeded",
	"invoice.payment_failed", "invoice.payment_action_required", "invoice.voided", "invoice.marked_uncollectible",
}

// Annotations of StripeWebhookEndpoint.
const (
	// AnnotationRotateSecret, set to any new value (a timestamp, say),
	// rotates the endpoint's signing secret once per value.
	AnnotationRotateSecret = "billing.stripe-operator.io/rotate-secret"
)

// SecretKeySelector names the Secret the signing secrets are written to.
type SecretKeySelector struct {
	// name is the Secret's name, in the resource's namespace. The Secret
	// must exist (the operator may update only Secrets it is allowed to by
	// name, and cannot be allowed to create them by name).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// StripeWebhookEndpointSpec is the desired state of a Stripe webhook
// endpoint.
// +kubebuilder:validation:XValidation:rule="!self.url.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="url must not contain a card number",fieldPath=".url"
// +kubebuilder:validation:XValidation:rule="!has(self.description) || !self.description.matches('(?:[0-9][ -]?){12,18}[0-9]')",message="description must not contain a card number",fieldPath=".description"
type StripeWebhookEndpointSpec struct {
	// url is where Stripe sends events: the webhook server's public URL,
	// path /webhooks/stripe.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.startsWith('http://')",message="url must be an http or https URL"
	URL string `json:"url"`

	// enabledEvents are the event types Stripe sends; they default to
	// exactly the types the operator applies.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=100
	// +kubebuilder:validation:items:Pattern=`^(\*|[a-z_]+(\.[a-z_]+)+)$`
	// +kubebuilder:default={"customer.subscription.created","customer.subscription.updated","customer.subscription.deleted","customer.subscription.paused","customer.subscription.resumed","customer.subscription.trial_will_end","invoice.created","invoice.finalized","invoice.updated","invoice.paid","invoice.payment_succeeded","invoice.payment_failed","invoice.payment_action_required","invoice.voided","invoice.marked_uncollectible"}
	EnabledEvents []string `json:"enabledEvents,omitempty"`

	// apiVersion is the Stripe API version of the events sent, defaulting
	// to the operator client's 2023-10-16 so that events and API reads have
	// one shape. Stripe sets it only when an endpoint is created: changing
	// it replaces the endpoint (as a rotation does).
	// +optional
	// +kubebuilder:default="2023-10-16"
	// +kubebuilder:validation:Pattern=`^[0-9]{4}-[0-9]{2}-[0-9]{2}(\.[a-z]+)?$`
	APIVersion string `json:"apiVersion,omitempty"`

	// description is shown in the Stripe Dashboard.
	// +optional
	// +kubebuilder:validation:MaxLength=5000
	Description string `json:"description,omitempty"`

	// secretRef names the Secret the signing secret is written to, under
	// the key webhookSigningSecrets (one whsec_ per line), which the
	// webhook server reads.
	// +required
	SecretRef SecretKeySelector `json:"secretRef"`

	// secretOverlap is how long the previous signing secret stays in the
	// Secret, and the previous endpoint in Stripe, after a rotation, so that
	// deliveries signed with it are still accepted.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	SecretOverlap metav1.Duration `json:"secretOverlap,omitempty"`

	// deletionPolicy says what happens in Stripe when this resource is
	// deleted: Delete, Disable or Orphan.
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy WebhookEndpointDeletionPolicy `json:"deletionPolicy,omitempty"`
}

// StripeWebhookEndpointStatus is the observed state of the endpoint.
type StripeWebhookEndpointStatus struct {
	// endpointID is the Stripe webhook endpoint's ID (we_...).
	// +optional
	EndpointID string `json:"endpointID,omitempty"`
	// url is the URL Stripe sends to.
	// +optional
	URL string `json:"url,omitempty"`
	// enabledEvents are the event types Stripe sends.
	// +optional
	// +listType=atomic
	EnabledEvents []string `json:"enabledEvents,omitempty"`
	// apiVersion is the endpoint's API version in Stripe.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// endpointStatus is enabled or disabled.
	// +optional
	EndpointStatus string `json:"endpointStatus,omitempty"`
	// lastRotation is when the signing secret was last replaced.
	// +optional
	LastRotation *metav1.Time `json:"lastRotation,omitempty"`
	// rotatedFor is the rotate-secret annotation value last acted on.
	// +optional
	RotatedFor string `json:"rotatedFor,omitempty"`
	// previousEndpointID is the endpoint replaced by the last rotation,
	// kept (with its secret) until overlapEnd.
	// +optional
	PreviousEndpointID string `json:"previousEndpointID,omitempty"`
	// overlapEnd is when the previous endpoint and secret are removed.
	// +optional
	OverlapEnd *metav1.Time `json:"overlapEnd,omitempty"`

	CommonStatus `json:",inline"`
}

// StripeWebhookEndpoint is a Stripe webhook endpoint declared as a
// Kubernetes resource, in the operator's namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=swhe,categories=stripe
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.endpointID`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="API-Version",type=string,JSONPath=`.status.apiVersion`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StripeWebhookEndpoint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the endpoint.
	// +required
	Spec StripeWebhookEndpointSpec `json:"spec"`
	// status is the observed state of the endpoint.
	// It defaults to {observedGeneration: 0} so that a resource the operator
	// has not yet observed reads as in progress (kstatus, Argo CD), never as
	// current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status StripeWebhookEndpointStatus `json:"status,omitempty"`
}

// StripeWebhookEndpointList is a list of StripeWebhookEndpoint.
// +kubebuilder:object:root=true
type StripeWebhookEndpointList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StripeWebhookEndpoint `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StripeWebhookEndpoint{}, &StripeWebhookEndpointList{})
}

// GetConditions returns the status conditions.
func (w *StripeWebhookEndpoint) GetConditions() []metav1.Condition { return w.Status.Conditions }

// SetConditions replaces the status conditions.
func (w *StripeWebhookEndpoint) SetConditions(conds []metav1.Condition) { w.Status.Conditions = conds }

// SetObservedGeneration records the generation last reconciled.
func (w *StripeWebhookEndpoint) SetObservedGeneration(g int64) { w.Status.ObservedGeneration = g }

// GetObservedGeneration returns the generation last reconciled.
func (w *StripeWebhookEndpoint) GetObservedGeneration() int64 { return w.Status.ObservedGeneration }

// GetManagementPolicy is always Manage: the operator owns the endpoints it
// creates.
func (w *StripeWebhookEndpoint) GetManagementPolicy() ManagementPolicy { return ManagementPolicyManage }
