package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SubscriptionDeletionPolicy says what happens to the Stripe subscription
// when the StripeSubscription is deleted.
// +kubebuilder:validation:Enum=Cancel;CancelAtPeriodEnd;Orphan
type SubscriptionDeletionPolicy string

const (
	// SubscriptionDeletionPolicyCancel cancels the subscription now, invoicing
	// usage still owed.
	SubscriptionDeletionPolicyCancel SubscriptionDeletionPolicy = "Cancel"
	// SubscriptionDeletionPolicyCancelAtPeriodEnd sets cancel_at_period_end
	// and lets the resource go; Stripe ends the subscription at period end.
	SubscriptionDeletionPolicyCancelAtPeriodEnd SubscriptionDeletionPolicy = "CancelAtPeriodEnd"
	// SubscriptionDeletionPolicyOrphan leaves the subscription in Stripe.
	SubscriptionDeletionPolicyOrphan SubscriptionDeletionPolicy = "Orphan"
)

// ProrationBehavior is Stripe's proration_behavior.
// +kubebuilder:validation:Enum=create_prorations;none;always_invoice
type ProrationBehavior string

// CollectionMethod is Stripe's collection_method.
// +kubebuilder:validation:Enum=charge_automatically;send_invoice
type CollectionMethod string

// PaymentBehavior is Stripe's payment_behavior on create and update.
// +kubebuilder:validation:Enum=default_incomplete;allow_incomplete;error_if_incomplete
type PaymentBehavior string

// Stripe values of the enums above.
const (
	ProrationBehaviorCreateProrations ProrationBehavior = "create_prorations"
	ProrationBehaviorNone             ProrationBehavior = "none"
	ProrationBehaviorAlwaysInvoice    ProrationBehavior = "always_invoice"

	CollectionMethodChargeAutomatically CollectionMethod = "charge_automatically"
	CollectionMethodSendInvoice         CollectionMethod = "send_invoice"

	PaymentBehaviorDefaultIncomplete PaymentBehavior = "default_incomplete"
	PaymentBehaviorAllowIncomplete   PaymentBehavior = "allow_incomplete"
	PaymentBehaviorErrorIfIncomplete PaymentBehavior = "error_if_incomplete"
)

// SubscriptionItem is one line of a subscription: a plan or a price and a
// quantity.
// +kubebuilder:validation:XValidation:rule="has(self.planRef) != has(self.priceID)",message="each item needs exactly one of planRef or priceID"
type SubscriptionItem struct {
	// planRef names a StripePlan in the same namespace; the item follows the
	// plan's current price.
	// +optional
	PlanRef *LocalObjectReference `json:"planRef,omitempty"`

	// priceID pins a Stripe price (price_...) directly.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^price_[A-Za-z0-9]+$`
	PriceID string `json:"priceID,omitempty"`

	// quantity is the number of units billed for this item (1 when unset).
	// An item whose price is metered (usageType metered) has no quantity:
	// Stripe bills the usage the application reports, and refuses a
	// quantity ("Quantity should not be specified where usage_type is
	// metered"). The API server cannot see the price of a planRef or a
	// priceID, so a quantity on a metered item is refused by the
	// reconciler: the resource is Stalled (InvalidSpec) with a message
	// naming spec.items[N].quantity, and nothing is sent to Stripe.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Quantity int64 `json:"quantity,omitempty"`
}

// PauseCollectionBehavior is what Stripe does with invoices while collection
// is paused.
// +kubebuilder:validation:Enum=keep_as_draft;mark_uncollectible;void
type PauseCollectionBehavior string

// PauseCollection pauses payment collection.
type PauseCollection struct {
	// behavior is what happens to invoices created while paused:
	// keep_as_draft, mark_uncollectible or void.
	// +required
	Behavior PauseCollectionBehavior `json:"behavior"`
}

// StripeSubscriptionSpec is the desired state of a Stripe subscription.
// +kubebuilder:validation:XValidation:rule="has(self.customerRef) != has(self.customerID)",message="exactly one of customerRef or customerID must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.collectionMethod) || self.collectionMethod != 'send_invoice' || has(self.daysUntilDue)",message="daysUntilDue is required when collectionMethod is send_invoice",fieldPath=".daysUntilDue"
// +kubebuilder:validation:XValidation:rule="!has(self.daysUntilDue) || (has(self.collectionMethod) && self.collectionMethod == 'send_invoice')",message="daysUntilDue is only allowed when collectionMethod is send_invoice",fieldPath=".daysUntilDue"
type StripeSubscriptionSpec struct {
	// customerRef names a StripeCustomer in the same namespace. Exactly one
	// of customerRef and customerID is set.
	// +optional
	CustomerRef *LocalObjectReference `json:"customerRef,omitempty"`

	// customerID is a Stripe customer ID (cus_...) not managed by a
	// StripeCustomer. Exactly one of customerRef and customerID is set.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^cus_[A-Za-z0-9]+$`
	CustomerID string `json:"customerID,omitempty"`

	// items are the subscription's lines, 1 to 20.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	Items []SubscriptionItem `json:"items"`

	// trialPeriodDays starts the subscription with a free trial of this many
	// days. It applies when the subscription is created.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=730
	TrialPeriodDays *int64 `json:"trialPeriodDays,omitempty"`

	// cancelAtPeriodEnd cancels the subscription at the end of the current
	// period; setting it back to false resumes it.
	// +optional
	CancelAtPeriodEnd bool `json:"cancelAtPeriodEnd,omitempty"`

	// prorationBehavior is how Stripe prorates item changes:
	// create_prorations, none or always_invoice.
	// +optional
	// +kubebuilder:default=create_prorations
	ProrationBehavior ProrationBehavior `json:"prorationBehavior,omitempty"`

	// collectionMethod is charge_automatically (the default payment method is
	// charged) or send_invoice (the customer is emailed an invoice).
	// +optional
	// +kubebuilder:default=charge_automatically
	CollectionMethod CollectionMethod `json:"collectionMethod,omitempty"`

	// daysUntilDue is the number of days a sent invoice is due in; required
	// with collectionMethod send_invoice.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=365
	DaysUntilDue *int64 `json:"daysUntilDue,omitempty"`

	// paymentBehavior is Stripe's payment_behavior: default_incomplete,
	// allow_incomplete or error_if_incomplete.
	// +optional
	// +kubebuilder:default=allow_incomplete
	PaymentBehavior PaymentBehavior `json:"paymentBehavior,omitempty"`

	// pauseCollection, when set, pauses payment collection; removing it
	// resumes collection.
	// +optional
	PauseCollection *PauseCollection `json:"pauseCollection,omitempty"`

	// discount applies a coupon or a promotion code to the subscription.
	// +optional
	Discount *SubscriptionDiscount `json:"discount,omitempty"`

	// metadata is copied to the Stripe subscription's metadata: at most 43
	// keys, since Stripe allows 50 and the operator writes up to 7 of its
	// own.
	// +optional
	// +kubebuilder:validation:MaxProperties=43
	Metadata Metadata `json:"metadata,omitempty"`

	// deletionPolicy says what happens in Stripe when this resource is
	// deleted: CancelAtPeriodEnd (the default) lets the paid period run out,
	// and re-applying the manifest before it ends binds to the subscription
	// again and resumes it; Cancel ends it at once (with a prorated final
	// invoice), which cannot be undone; Orphan leaves it as it is.
	// +optional
	// +kubebuilder:default=CancelAtPeriodEnd
	DeletionPolicy SubscriptionDeletionPolicy `json:"deletionPolicy,omitempty"`

	// managementPolicy is Manage (the operator writes to Stripe) or Observe
	// (it never writes, it only reports).
	// +optional
	// +kubebuilder:default=Manage
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`

	// subscriptionID adopts an existing Stripe subscription (sub_...)
	// instead of creating one. It cannot be changed once set.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^sub_[A-Za-z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="subscriptionID is immutable"
	SubscriptionID string `json:"subscriptionID,omitempty"`
}

// ObservedItem is a subscription item as Stripe reports it.
type ObservedItem struct {
	// itemID is the Stripe subscription item ID (si_...).
	// +optional
	ItemID string `json:"itemID,omitempty"`
	// priceID is the item's Stripe price.
	// +optional
	PriceID string `json:"priceID,omitempty"`
	// quantity is the item's quantity.
	// +optional
	Quantity int64 `json:"quantity,omitempty"`
}

// ScheduledPriceChange is a price move that a Stripe subscription schedule
// makes at a phase end.
type ScheduledPriceChange struct {
	// scheduleID is the Stripe subscription schedule (sub_sched_...).
	// +required
	ScheduleID string `json:"scheduleID"`
	// priceIDs are the prices the subscription's items move to.
	// +optional
	// +listType=atomic
	PriceIDs []string `json:"priceIDs,omitempty"`
	// at is when the move happens (the end of the current period).
	// +optional
	At *metav1.Time `json:"at,omitempty"`
}

// InvoiceStatus summarises the subscription's latest invoice.
type InvoiceStatus struct {
	// id is the Stripe invoice ID (in_...).
	// +optional
	ID string `json:"id,omitempty"`
	// status is draft, open, paid, uncollectible or void.
	// +optional
	Status string `json:"status,omitempty"`
	// amountDue is the amount due in the currency's minor unit.
	// +optional
	AmountDue int64 `json:"amountDue,omitempty"`
	// amountPaid is the amount paid in the currency's minor unit.
	// +optional
	AmountPaid int64 `json:"amountPaid,omitempty"`
	// currency is the invoice's currency.
	// +optional
	Currency string `json:"currency,omitempty"`
	// attemptCount is the number of payment attempts made.
	// +optional
	AttemptCount int64 `json:"attemptCount,omitempty"`
	// nextPaymentAttempt is when Stripe next tries to collect payment.
	// +optional
	NextPaymentAttempt *metav1.Time `json:"nextPaymentAttempt,omitempty"`
	// hostedInvoiceURL is the page where the customer can pay the invoice.
	// +optional
	HostedInvoiceURL string `json:"hostedInvoiceURL,omitempty"`
	// billingReason is why the invoice was created (subscription_create,
	// subscription_cycle, subscription_update, manual).
	// +optional
	BillingReason string `json:"billingReason,omitempty"`
	// paymentError is the decline or error code of the last failed payment.
	// +optional
	PaymentError string `json:"paymentError,omitempty"`
	// paymentIntentStatus is the status of the invoice's payment (Stripe's
	// payment intent status, such as requires_action), when known.
	// +optional
	PaymentIntentStatus string `json:"paymentIntentStatus,omitempty"`
	// created is when Stripe created the invoice; it tells which of two
	// invoices is the latest.
	// +optional
	Created *metav1.Time `json:"created,omitempty"`
	// lastEvent is the newest event about this invoice the webhook server
	// applied; events about the invoice are ordered by it.
	// +optional
	LastEvent *EventRef `json:"lastEvent,omitempty"`
}

// Amount is an amount of money.
type Amount struct {
	// amount is in the currency's minor unit.
	// +optional
	Amount int64 `json:"amount"`
	// currency is the ISO 4217 code, lowercase.
	// +optional
	Currency string `json:"currency,omitempty"`
}

// EventRef identifies a Stripe event.
type EventRef struct {
	// id is the Stripe event ID (evt_...).
	// +optional
	ID string `json:"id,omitempty"`
	// type is the event type, such as invoice.paid.
	// +optional
	Type string `json:"type,omitempty"`
	// created is the event's creation time in Unix seconds.
	// +optional
	Created int64 `json:"created,omitempty"`
	// sameSecondIDs is no longer written: redeliveries are recognised by
	// the event-ID annotations (billing.stripe-operator.io/recent-event-ids).
	// Kept so that stored objects stay valid.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=255
	SameSecondIDs []string `json:"sameSecondIDs,omitempty"`
}

// StripeSubscriptionStatus is the observed state of a subscription.
type StripeSubscriptionStatus struct {
	// subscriptionID is the Stripe subscription ID (sub_...).
	// +optional
	SubscriptionID string `json:"subscriptionID,omitempty"`
	// customerID is the resolved Stripe customer ID.
	// +optional
	CustomerID string `json:"customerID,omitempty"`
	// stripeStatus is the subscription's status in Stripe: incomplete,
	// incomplete_expired, trialing, active, past_due, canceled, unpaid or
	// paused.
	// +optional
	StripeStatus string `json:"stripeStatus,omitempty"`
	// items are the subscription items Stripe reports.
	// +optional
	// +listType=atomic
	Items []ObservedItem `json:"items,omitempty"`
	// currentPeriodStart is the start of the current billing period.
	// +optional
	CurrentPeriodStart *metav1.Time `json:"currentPeriodStart,omitempty"`
	// currentPeriodEnd is the end of the current billing period.
	// +optional
	CurrentPeriodEnd *metav1.Time `json:"currentPeriodEnd,omitempty"`
	// cancelAtPeriodEnd is Stripe's cancel_at_period_end.
	// +optional
	CancelAtPeriodEnd bool `json:"cancelAtPeriodEnd,omitempty"`
	// cancelAt is when the subscription will be canceled, if scheduled.
	// +optional
	CancelAt *metav1.Time `json:"cancelAt,omitempty"`
	// canceledAt is when the subscription was canceled.
	// +optional
	CanceledAt *metav1.Time `json:"canceledAt,omitempty"`
	// trialEnd is the end of the trial, if any.
	// +optional
	TrialEnd *metav1.Time `json:"trialEnd,omitempty"`
	// pauseCollection is the active pause_collection behavior, if any.
	// +optional
	PauseCollection string `json:"pauseCollection,omitempty"`
	// latestInvoice summarises the latest invoice.
	// +optional
	LatestInvoice *InvoiceStatus `json:"latestInvoice,omitempty"`
	// scheduledPriceChange is a move of items to a plan's new price that a
	// Stripe subscription schedule makes when the current period ends
	// (priceChangePolicy AtNextRenewal), as the operator last read it.
	// +optional
	ScheduledPriceChange *ScheduledPriceChange `json:"scheduledPriceChange,omitempty"`
	// discount is the subscription's discount as Stripe last reported it,
	// kept with ended set once its duration is over.
	// +optional
	Discount *DiscountStatus `json:"discount,omitempty"`
	// expectedAmount is what one full period costs by the declared items:
	// the sum of price unit amount times quantity.
	// +optional
	ExpectedAmount *Amount `json:"expectedAmount,omitempty"`
	// lastEvent is the newest subscription event (customer.subscription.*)
	// the status reflects; subscription events are ordered by it. Invoice
	// events are ordered per invoice by latestInvoice.lastEvent.
	// +optional
	LastEvent *EventRef `json:"lastEvent,omitempty"`
	// readAt is Stripe's time (the Date of its answer, to the second) of
	// the operator's read that the observed fields above come from: Stripe
	// held that state then. The webhook server applies an event that would
	// change status only when it was created after readAt (and after its
	// stream's last applied event); otherwise it records it in
	// deferredEvent and the operator reads Stripe.
	// +optional
	ReadAt *metav1.Time `json:"readAt,omitempty"`
	// deferredEvent is the newest subscription or invoice event the webhook
	// server recorded without applying, because its order against status
	// could not be known; the operator reads Stripe when it is set, and
	// that read clears it.
	// +optional
	DeferredEvent *EventRef `json:"deferredEvent,omitempty"`
	// charges records the operator's own charge attempts (creates and
	// updates that make Stripe charge the customer) and the last definitive
	// decline, so that a declined card is not charged again without a
	// reason, across restarts. Written by the operator only.
	// +optional
	Charges *ChargeStatus `json:"charges,omitempty"`
	// cancellation is Stripe's cancellation_details of an ended
	// subscription and who ended it. Written by the operator only, from
	// its reads of Stripe.
	// +optional
	Cancellation *CancellationStatus `json:"cancellation,omitempty"`

	CommonStatus `json:",inline"`
}

// ChargeStatus is the operator's record of its charge attempts.
type ChargeStatus struct {
	// attempts are the times of the operator's charge attempts in the last
	// 24 hours (older ones are dropped), at most --max-charge-attempts.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Attempts []metav1.Time `json:"attempts,omitempty"`
	// declined is the last definitive decline (a card error) of an operator
	// charge attempt; cleared when an attempt succeeds. While it is set the
	// operator makes no request that can charge until the spec's
	// generation, the customer's default payment method or the
	// retry-payment annotation changes.
	// +optional
	Declined *ChargeDecline `json:"declined,omitempty"`
}

// ChargeDecline describes a declined charge attempt.
type ChargeDecline struct {
	// at is when the attempt was declined.
	At metav1.Time `json:"at"`
	// request is the declined request: create or update.
	// +optional
	Request string `json:"request,omitempty"`
	// code is Stripe's error or decline code, such as card_declined.
	// +optional
	Code string `json:"code,omitempty"`
	// generation is the spec's generation the attempt was made for.
	// +optional
	Generation int64 `json:"generation,omitempty"`
	// paymentMethod is the customer's default payment method when the
	// attempt was made ("" when it had none).
	// +optional
	PaymentMethod string `json:"paymentMethod,omitempty"`
	// retryPayment is the value of the retry-payment annotation when the
	// attempt was made.
	// +optional
	RetryPayment string `json:"retryPayment,omitempty"`
}

// CancellationStatus is why a subscription ended.
type CancellationStatus struct {
	// endedBy says who ended the subscription: CanceledForNonPayment,
	// CanceledByOperator or CanceledOutsideOperator.
	// +optional
	EndedBy string `json:"endedBy,omitempty"`
	// reason is Stripe's cancellation_details.reason: payment_failed,
	// payment_disputed or cancellation_requested ("" when Stripe gave none).
	// +optional
	Reason string `json:"reason,omitempty"`
	// feedback is the customer's cancellation_details.feedback.
	// +optional
	Feedback string `json:"feedback,omitempty"`
	// comment is cancellation_details.comment.
	// +optional
	// +kubebuilder:validation:MaxLength=5000
	Comment string `json:"comment,omitempty"`
	// failedPaymentMethod is the customer's default payment method when a
	// subscription canceled for non-payment was read; a recreate while it
	// is still the default is refused unless recreate=force.
	// +optional
	FailedPaymentMethod string `json:"failedPaymentMethod,omitempty"`
}

// StripeSubscription is a Stripe subscription declared as a Kubernetes
// resource.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ssub,categories=stripe
// +kubebuilder:printcolumn:name="Customer",type=string,JSONPath=`.status.customerID`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.stripeStatus`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Drift",type=string,JSONPath=`.status.conditions[?(@.type=="BillingDrift")].status`
// +kubebuilder:printcolumn:name="Payment",type=string,JSONPath=`.status.conditions[?(@.type=="PaymentFailed")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
type StripeSubscription struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the subscription.
	// +required
	Spec StripeSubscriptionSpec `json:"spec"`
	// status is the observed state of the subscription.
	// It defaults to {observedGeneration: 0} so that a resource the operator
	// has not yet observed reads as in progress (kstatus, Argo CD), never as
	// current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status StripeSubscriptionStatus `json:"status,omitempty"`
}

// StripeSubscriptionList is a list of StripeSubscription.
// +kubebuilder:object:root=true
type StripeSubscriptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StripeSubscription `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StripeSubscription{}, &StripeSubscriptionList{})
}
