package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BillingClass is how the billing audit classifies a Stripe object.
// +kubebuilder:validation:Enum=Managed;OrphanedExpected;OrphanedUnexplained;Missing;Duplicate;Drifted;CanceledForNonPayment;CanceledByOperator
type BillingClass string

const (
	// BillingClassManaged: a resource exists and records this Stripe object.
	BillingClassManaged BillingClass = "Managed"
	// BillingClassOrphanedExpected: the object carries the operator's
	// identity, its resource is gone, and the operator left it there on
	// purpose (deletion policy Orphan).
	BillingClassOrphanedExpected BillingClass = "OrphanedExpected"
	// BillingClassOrphanedUnexplained: the object carries the operator's
	// identity but no resource records it and nothing explains why (made by
	// hand, by a crash or by a bug).
	BillingClassOrphanedUnexplained BillingClass = "OrphanedUnexplained"
	// BillingClassMissing: a resource records a Stripe object that was
	// deleted or ended outside the operator.
	BillingClassMissing BillingClass = "Missing"
	// BillingClassDuplicate: a second live Stripe object claims a resource
	// that already has one.
	BillingClassDuplicate BillingClass = "Duplicate"
	// BillingClassDrifted: the resource reports that Stripe differs from its
	// declaration (BillingDrift, or an Observe-mode difference).
	BillingClassDrifted BillingClass = "Drifted"
	// BillingClassCanceledForNonPayment: a subscription a resource records
	// was canceled by Stripe when its payment retries ran out
	// (cancellation_details.reason payment_failed) or expired unpaid
	// (incomplete_expired). Not drift; the resource says so.
	BillingClassCanceledForNonPayment BillingClass = "CanceledForNonPayment"
	// BillingClassCanceledByOperator: a subscription a resource records
	// ended as its declaration asked (cancelAtPeriodEnd, a deletion).
	BillingClassCanceledByOperator BillingClass = "CanceledByOperator"
)

// BillingClasses lists every class in report order.
var BillingClasses = []BillingClass{BillingClassManaged, BillingClassOrphanedExpected, BillingClassOrphanedUnexplained,
	BillingClassMissing, BillingClassDuplicate, BillingClassDrifted, BillingClassCanceledForNonPayment, BillingClassCanceledByOperator}

// Condition types and reasons of StripeBillingReport.
const (
	// ConditionClean is True when the last audit found nothing Unexplained,
	// Missing, Duplicate or Drifted.
	ConditionClean = "Clean"
	// ReasonAudited: the last audit completed.
	ReasonAudited = "Audited"
	// ReasonAuditPending: no audit has completed yet.
	ReasonAuditPending = "AuditPending"
	// ReasonAuditFailed: the last audit could not read Stripe or the cluster.
	ReasonAuditFailed = "AuditFailed"
	// ReasonNoFindings: everything in Stripe is accounted for.
	ReasonNoFindings = "NoFindings"
	// ReasonFindings: the audit found objects that need attention.
	ReasonFindings = "Findings"
)

// AnnotationAuditNow, set on a StripeBillingReport (to any new value, such
// as the current time), asks for an audit now instead of at the next
// period. The handled value is recorded in status.lastAuditRequest.
const AnnotationAuditNow = "billing.stripe-operator.io/audit-now"

// BillingCounts counts Stripe objects by class.
type BillingCounts struct {
	// managed counts objects a resource records.
	// +optional
	Managed int64 `json:"managed"`
	// orphanedExpected counts objects left by a deletion with policy Orphan.
	// +optional
	OrphanedExpected int64 `json:"orphanedExpected"`
	// orphanedUnexplained counts live objects with the operator's identity
	// and no resource, that no Orphan deletion explains.
	// +optional
	OrphanedUnexplained int64 `json:"orphanedUnexplained"`
	// missing counts recorded objects deleted or ended outside the operator
	// (a subscription canceled in the Dashboard or through the API).
	// +optional
	Missing int64 `json:"missing"`
	// duplicate counts second live objects for one resource.
	// +optional
	Duplicate int64 `json:"duplicate"`
	// drifted counts objects whose resource reports drift.
	// +optional
	Drifted int64 `json:"drifted"`
	// canceledForNonPayment counts recorded subscriptions Stripe canceled
	// for non-payment (dunning ended in cancel) or that expired unpaid.
	// +optional
	CanceledForNonPayment int64 `json:"canceledForNonPayment"`
	// canceledByOperator counts recorded subscriptions that ended as their
	// declaration asked.
	// +optional
	CanceledByOperator int64 `json:"canceledByOperator"`
}

// BillingKindCounts counts one kind of Stripe object by class.
type BillingKindCounts struct {
	// kind is the Stripe object type: customer, product, price or
	// subscription.
	// +required
	Kind string `json:"kind"`

	BillingCounts `json:",inline"`
}

// BillingReportEntry is one Stripe object (or resource) that is not simply
// Managed.
type BillingReportEntry struct {
	// kind is the Stripe object type: customer, product, price or
	// subscription.
	// +required
	Kind string `json:"kind"`
	// stripeID is the Stripe object's ID.
	// +optional
	StripeID string `json:"stripeID,omitempty"`
	// resourceKind is the kind of the resource the object belongs or belonged
	// to: StripeCustomer, StripePlan or StripeSubscription.
	// +optional
	ResourceKind string `json:"resourceKind,omitempty"`
	// namespace of the resource.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// name of the resource.
	// +optional
	Name string `json:"name,omitempty"`
	// class is the audit's classification.
	// +required
	Class BillingClass `json:"class"`
	// since is when the object was first seen in this class (for
	// OrphanedExpected, when it was orphaned; for Drifted, when the drift
	// was reported).
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// message explains the classification in plain English.
	// +optional
	Message string `json:"message,omitempty"`
}

// StripeBillingReportSpec is empty: the operator owns the report.
type StripeBillingReportSpec struct{}

// StripeBillingReportStatus is the result of the last billing audit.
type StripeBillingReportStatus struct {
	// totals counts every audited Stripe object by class.
	// +optional
	Totals BillingCounts `json:"totals,omitempty"`
	// counts are per Stripe object kind.
	// +optional
	// +listType=map
	// +listMapKey=kind
	Counts []BillingKindCounts `json:"counts,omitempty"`
	// entries are the first 100 objects that are not Managed, ordered by
	// class, kind, namespace, name and ID.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Entries []BillingReportEntry `json:"entries,omitempty"`
	// omittedEntries is how many more non-Managed objects there are than
	// entries lists.
	// +optional
	OmittedEntries int64 `json:"omittedEntries,omitempty"`
	// lastAuditTime is when the last successful audit started reading
	// Stripe.
	// +optional
	LastAuditTime *metav1.Time `json:"lastAuditTime,omitempty"`
	// lastAuditCalls is the number of Stripe API requests the last audit
	// made.
	// +optional
	LastAuditCalls int64 `json:"lastAuditCalls,omitempty"`
	// lastAuditRequest is the value of the audit-now annotation the last
	// audit answered.
	// +optional
	LastAuditRequest string `json:"lastAuditRequest,omitempty"`
	// finance is what the subscriptions are worth per month (declared and
	// in Stripe) and what Stripe invoiced, collected and refunded in the
	// current and the previous calendar month; see
	// docs/financial-reporting.md.
	// +optional
	Finance *BillingFinance `json:"finance,omitempty"`

	CommonStatus `json:",inline"`
}

// StripeBillingReport is the operator's answer to "is our billing in Stripe
// exactly what the cluster declares?": the result of the periodic billing
// audit of one operator instance. The operator creates it, named after the
// instance.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=sbr,categories=stripe
// +kubebuilder:printcolumn:name="Managed",type=integer,JSONPath=`.status.totals.managed`
// +kubebuilder:printcolumn:name="Orphaned",type=integer,JSONPath=`.status.totals.orphanedExpected`,description="Left by deletion policy Orphan"
// +kubebuilder:printcolumn:name="Unexplained",type=integer,JSONPath=`.status.totals.orphanedUnexplained`
// +kubebuilder:printcolumn:name="Missing",type=integer,JSONPath=`.status.totals.missing`
// +kubebuilder:printcolumn:name="Duplicate",type=integer,JSONPath=`.status.totals.duplicate`
// +kubebuilder:printcolumn:name="Drifted",type=integer,JSONPath=`.status.totals.drifted`
// +kubebuilder:printcolumn:name="Clean",type=string,JSONPath=`.status.conditions[?(@.type=="Clean")].status`
// +kubebuilder:printcolumn:name="Last Audit",type=date,JSONPath=`.status.lastAuditTime`
type StripeBillingReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is empty; the operator owns the report.
	// +optional
	Spec StripeBillingReportSpec `json:"spec,omitempty"`
	// status is the result of the last audit.
	// It defaults to {observedGeneration: 0} so that a report no audit has
	// answered yet reads as in progress (kstatus, Argo CD), never as current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status StripeBillingReportStatus `json:"status,omitempty"`
}

// StripeBillingReportList is a list of StripeBillingReport.
// +kubebuilder:object:root=true
type StripeBillingReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StripeBillingReport `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StripeBillingReport{}, &StripeBillingReportList{})
}

// GetConditions returns the status conditions.
func (r *StripeBillingReport) GetConditions() []metav1.Condition { return r.Status.Conditions }

// SetConditions replaces the status conditions.
func (r *StripeBillingReport) SetConditions(conds []metav1.Condition) { r.Status.Conditions = conds }
