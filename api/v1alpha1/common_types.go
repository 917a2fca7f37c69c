package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ManagementPolicy says whether the operator may write to Stripe.
// +kubebuilder:validation:Enum=Manage;Observe
type ManagementPolicy string

const (
	// ManagementPolicyManage lets the operator create, update and delete the
	// Stripe object so that it matches the spec.
	ManagementPolicyManage ManagementPolicy = "Manage"
	// ManagementPolicyObserve makes the operator read the Stripe object and
	// report differences in status and conditions; it never writes to Stripe.
	ManagementPolicyObserve ManagementPolicy = "Observe"
)

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// name is the name of the referenced object in the same namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// Metadata keys the operator writes on every Stripe object it creates or
// adopts. They are the lasting link from a Stripe object back to its resource
// (Stripe prunes idempotency keys after 24 hours; metadata stays).
const (
	// StripeMetadataInstance names the operator instance (--instance-name)
	// that owns the object; two clusters sharing one Stripe account need
	// different instance names.
	StripeMetadataInstance = "stripe-operator.io/instance"
	// StripeMetadataKind is the owning resource's kind (StripeCustomer,
	// StripePlan, StripeSubscription).
	StripeMetadataKind      = "stripe-operator.io/kind"
	StripeMetadataNamespace = "stripe-operator.io/namespace"
	StripeMetadataName      = "stripe-operator.io/name"
	StripeMetadataUID       = "stripe-operator.io/uid"
	StripeMetadataPrefix    = "stripe-operator.io/"
)

// Stripe allows 50 metadata keys on an object. The operator writes up to 6
// keys of its own on a customer, a product or a price (the five identity
// keys and stripe-operator.io/orphaned) and up to 7 on a subscription (also
// stripe-operator.io/replaces), so spec.metadata holds at most:
const (
	StripeMaxMetadataKeys           = 50
	MaxUserMetadataKeysCustomer     = 44
	MaxUserMetadataKeysPlan         = 44
	MaxUserMetadataKeysSubscription = 43
)

// Annotations and the finalizer shared by all kinds.
const (
	// Finalizer holds a resource until its Stripe object is handled according
	// to the deletion policy.
	Finalizer = "billing.stripe-operator.io/finalizer"
	// AnnotationCreatePending is set just before a Stripe create call and
	// removed once the created ID is recorded in status. Its value is the
	// create's intent, the nonce of its idempotency key. A pass that finds it
	// without an ID looks the object up by its metadata instead of creating a
	// second one.
	AnnotationCreatePending = "billing.stripe-operator.io/create-pending"
	// AnnotationLastEventID is the ID of the newest Stripe event the webhook
	// server applied to the StripeSubscription. It is written after the
	// status write that applied the event (the commit point).
	AnnotationLastEventID = "billing.stripe-operator.io/last-event-id"
	// AnnotationRecentEventIDs is the comma-separated list of the last
	// Stripe event IDs the webhook server applied or deferred, oldest
	// first, bounded (20): a redelivery it names is a duplicate, answered
	// with no API request.
	AnnotationRecentEventIDs = "billing.stripe-operator.io/recent-event-ids"
	// AnnotationRecreate, set to "true" on a StripeSubscription whose Stripe
	// subscription ended (canceled or incomplete_expired), makes the operator
	// forget the old subscription ID and create a new subscription.
	AnnotationRecreate = "billing.stripe-operator.io/recreate"
	// AnnotationRetryPayment, set to a new value (a timestamp, say) on a
	// StripeSubscription stalled with PaymentDeclined, allows one more charge
	// attempt with the same payment method, within --max-charge-attempts.
	AnnotationRetryPayment = "billing.stripe-operator.io/retry-payment"
)

// Condition types. They follow the kstatus convention (Ready, Reconciling,
// Stalled) so that kubectl wait, Flux and Argo CD read health correctly.
const (
	// ConditionReady is True when the Stripe object exists and matches the
	// spec (and, for subscriptions, is active or trialing with no failed
	// payment).
	ConditionReady = "Ready"
	// ConditionSynced is True when the last pass reached Stripe and applied
	// (or, in Observe mode, compared) the spec.
	ConditionSynced = "Synced"
	// ConditionReconciling is True while the operator has work in flight.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the operator hit an error a retry cannot
	// fix without a change to the spec or to Stripe.
	ConditionStalled = "Stalled"
	// ConditionBillingDrift is True when Stripe differs from the declaration.
	ConditionBillingDrift = "BillingDrift"
	// ConditionPaymentFailed is True when the latest payment failed.
	ConditionPaymentFailed = "PaymentFailed"
)

// Condition reasons, CamelCase as metav1.Condition requires.
const (
	// ReasonAvailable: the Stripe object exists and matches the spec.
	ReasonAvailable = "Available"
	// ReasonReconcileSuccess: the last pass applied the spec.
	ReasonReconcileSuccess = "ReconcileSuccess"
	// ReasonObserved: Observe mode compared Stripe with the spec, wrote nothing.
	ReasonObserved = "Observed"
	// ReasonReconcileError: a Stripe or API server call failed; it is retried.
	ReasonReconcileError = "ReconcileError"
	// ReasonRateLimited: Stripe or the client-side limiter asked to slow down.
	ReasonRateLimited = "RateLimited"
	// ReasonAuthenticationFailed: Stripe refused the API key.
	ReasonAuthenticationFailed = "AuthenticationFailed"
	// ReasonInvalidSpec: Stripe rejected the spec; it needs a change.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonNotFound: the named Stripe object does not exist.
	ReasonNotFound = "NotFound"
	// ReasonCreating: the Stripe object is being created.
	ReasonCreating = "Creating"
	// ReasonUpdating: the Stripe object is being updated.
	ReasonUpdating = "Updating"
	// ReasonDeleting: the resource is being deleted.
	ReasonDeleting = "Deleting"
	// ReasonProgressing: work is in flight.
	ReasonProgressing = "Progressing"
	// ReasonIdle: no work is in flight.
	ReasonIdle = "Idle"
	// ReasonWaitingForCustomer: the referenced StripeCustomer has no ID yet.
	ReasonWaitingForCustomer = "WaitingForCustomer"
	// ReasonWaitingForPlan: a referenced StripePlan has no price yet.
	ReasonWaitingForPlan = "WaitingForPlan"
	// ReasonReferenceNotFound: a referenced resource does not exist.
	ReasonReferenceNotFound = "ReferenceNotFound"
	// ReasonInUse: the customer is still referenced by a live subscription.
	ReasonInUse = "InUse"
	// ReasonDrifted: Stripe differs from the declaration.
	ReasonDrifted = "Drifted"
	// ReasonDriftCorrected: Stripe differed and the operator corrected it.
	ReasonDriftCorrected = "DriftCorrected"
	// ReasonInSync: Stripe matches the declaration.
	ReasonInSync = "InSync"
	// ReasonPaymentDeclined: the card was declined.
	ReasonPaymentDeclined = "PaymentDeclined"
	// ReasonAuthenticationRequired: the payment needs customer action (3DS).
	ReasonAuthenticationRequired = "AuthenticationRequired"
	// ReasonRetriesExhausted: Stripe stopped retrying the payment.
	ReasonRetriesExhausted = "RetriesExhausted"
	// ReasonPaid: the latest invoice is paid or nothing is owed.
	ReasonPaid = "Paid"
	// ReasonSubscriptionEnded: the subscription is canceled or
	// incomplete_expired in Stripe and is not recreated without an explicit
	// action.
	ReasonSubscriptionEnded = "SubscriptionEnded"
	// ReasonPaused: collection is paused or the subscription is paused.
	ReasonPaused = "Paused"
	// ReasonNotActive: the subscription is not active or trialing.
	ReasonNotActive = "NotActive"
)

// CommonStatus is embedded in every kind's status.
type CommonStatus struct {
	// observedGeneration is the metadata.generation the operator last
	// reconciled successfully or found Stalled; 0 until the operator first
	// observes the resource.
	// +optional
	// +kubebuilder:default=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions describe the resource's state: Ready, Synced, Reconciling,
	// Stalled and, on subscriptions, BillingDrift and PaymentFailed.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// GetConditions returns the conditions.
func (s *CommonStatus) GetConditions() []metav1.Condition { return s.Conditions }

// SetConditions replaces the conditions.
func (s *CommonStatus) SetConditions(c []metav1.Condition) { s.Conditions = c }

// Metadata is a set of key-value pairs copied to the Stripe object's
// metadata. Stripe allows 50 keys of at most 40 characters, with values of
// at most 500 (https://docs.stripe.com/metadata). The operator writes keys
// of its own under stripe-operator.io/ (the identity keys, and on some kinds
// replaces and orphaned), so each kind's field bounds the number of keys at
// 50 less the operator's most (MaxUserMetadataKeys*); a test counts them.
// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) > 0 && size(k) <= 40)",message="metadata keys must be 1 to 40 characters long"
// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('stripe-operator.io/'))",message="metadata keys starting with stripe-operator.io/ are reserved for the operator"
// +kubebuilder:validation:XValidation:rule="self.all(k, size(self[k]) > 0)",message="metadata values must not be empty: Stripe deletes a key whose value is empty; remove the key instead"
// +kubebuilder:validation:XValidation:rule="self.all(k, !k.matches('(?:[0-9][ -]?){12,18}[0-9]') && !self[k].matches('(?:[0-9][ -]?){12,18}[0-9]'))",message="metadata keys and values must not contain a card number"
type Metadata map[string]MetadataValue

// MetadataValue is one metadata value (Stripe allows 500 characters). The
// bound also keeps the cost of the map's CEL rules within the API server's
// budget.
// +kubebuilder:validation:MaxLength=500
type MetadataValue string

// Map returns the metadata as a plain map.
func (m Metadata) Map() map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}
