package webhookserver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// IndexSubscriptionID indexes StripeSubscriptions by status.subscriptionID.
const IndexSubscriptionID = "status.subscriptionID"

// RecentEventIDs is how many applied event IDs an object remembers.
const RecentEventIDs = 20

// Outcomes of an event, in responses and logs.
const (
	OutcomeApplied    = "applied"
	OutcomeDuplicate  = "duplicate"
	OutcomeOutOfOrder = "out_of_order"
	OutcomeIgnored    = "ignored"
)

// SetupIndexes registers the status.subscriptionID field index; call once
// per manager.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &billingv1alpha1.StripeSubscription{}, IndexSubscriptionID, func(o client.Object) []string {
		if id := o.(*billingv1alpha1.StripeSubscription).Status.SubscriptionID; id != "" {
			return []string{id}
		}
		return nil
	})
}

// mutation changes a StripeSubscription for one event; tie is true when the
// event has the same created second as status.lastEvent. It returns false
// when the event must not change state (a tie that would regress it).
type mutation func(obj *billingv1alpha1.StripeSubscription, tie bool) bool

func (s *Server) apply(ctx context.Context, ev *event) (string, error) {
	var (
		subID string
		md    map[string]string
		mut   mutation
	)
	switch {
	case strings.HasPrefix(ev.Type, "customer.subscription."):
		so, err := ev.subscription()
		if err != nil {
			ignored.WithLabelValues("undecodable_object").Inc()
			return OutcomeIgnored, nil
		}
		subID, md, mut = so.ID, so.Metadata, s.subscriptionMutation(ev, so)
	case strings.HasPrefix(ev.Type, "invoice.") && ev.Type != "invoice.upcoming":
		in, err := ev.invoice()
		if err != nil || in.ID == "" {
			ignored.WithLabelValues("undecodable_object").Inc()
			return OutcomeIgnored, nil
		}
		subID, md, mut = in.Subscription.ID, in.SubscriptionDetails.Metadata, s.invoiceMutation(ev, in)
	default:
		// invoice.upcoming is informational (no invoice exists yet), and
		// other types concern nothing the operator tracks.
		ignored.WithLabelValues("unhandled_type").Inc()
		return OutcomeIgnored, nil
	}
	if mut == nil {
		ignored.WithLabelValues("unhandled_type").Inc()
		return OutcomeIgnored, nil
	}
	target, err := s.findTarget(ctx, subID, md)
	if err != nil {
		return "", err
	}
	if target == nil {
		ignored.WithLabelValues("unmanaged").Inc()
		return OutcomeIgnored, nil
	}
	// Cheap dedup from the informer cache: a storm of duplicates costs no
	// API call.
	if recorded(target, ev.ID) {
		duplicates.Inc()
		return OutcomeDuplicate, nil
	}
	return s.persist(ctx, client.ObjectKeyFromObject(target), ev, mut)
}

// findTarget resolves the StripeSubscription an event concerns, or nil.
func (s *Server) findTarget(ctx context.Context, subID string, md map[string]string) (*billingv1alpha1.StripeSubscription, error) {
	ns, name, uid := md[billingv1alpha1.StripeMetadataNamespace], md[billingv1alpha1.StripeMetadataName], md[billingv1alpha1.StripeMetadataUID]
	if ns != "" && name != "" {
		key := types.NamespacedName{Namespace: ns, Name: name}
		obj := &billingv1alpha1.StripeSubscription{}
		err := s.opts.Client.Get(ctx, key, obj)
		if apierrors.IsNotFound(err) {
			// The cache may lag a just-created object: ask the API server
			// before declaring the event unmanaged.
			err = s.opts.APIReader.Get(ctx, key, obj)
		}
		switch {
		case err == nil && (uid == "" || string(obj.UID) == uid):
			return obj, nil
		case err != nil && !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("reading StripeSubscription %s: %w", key, err)
		}
	}
	if subID == "" {
		return nil, nil
	}
	var list billingv1alpha1.StripeSubscriptionList
	if err := s.opts.Client.List(ctx, &list, client.MatchingFields{IndexSubscriptionID: subID}); err != nil {
		return nil, fmt.Errorf("listing StripeSubscriptions by subscription ID: %w", err)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	return &list.Items[0], nil
}

// recorded reports whether the event ID is in the object's annotations.
func recorded(obj *billingv1alpha1.StripeSubscription, id string) bool {
	ann := obj.GetAnnotations()
	return ann[billingv1alpha1.AnnotationLastEventID] == id || slices.Contains(recentIDs(ann), id)
}

func recentIDs(ann map[string]string) []string {
	v := ann[billingv1alpha1.AnnotationRecentEventIDs]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// persist applies ev to the object at key: status first, then the event
// annotations, each with an optimistic lock, retried on conflict.
func (s *Server) persist(ctx context.Context, key types.NamespacedName, ev *event, mut mutation) (string, error) {
	log := logr.FromContextOrDiscard(ctx)
	outcome := OutcomeApplied
	var final *billingv1alpha1.StripeSubscription
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj := &billingv1alpha1.StripeSubscription{}
		if err := s.opts.APIReader.Get(ctx, key, obj); err != nil {
			return err
		}
		if recorded(obj, ev.ID) {
			outcome = OutcomeDuplicate
			return nil
		}
		last := obj.Status.LastEvent
		switch {
		case last != nil && last.ID == ev.ID:
			// Status was written by an earlier delivery that did not get to
			// the annotations: record it only.
			outcome = OutcomeApplied
		case last != nil && ev.Created < last.Created:
			outcome = OutcomeOutOfOrder
		default:
			before := obj.Status.DeepCopy()
			tie := last != nil && ev.Created == last.Created
			if mut(obj, tie) {
				obj.Status.LastEvent = &billingv1alpha1.EventRef{ID: ev.ID, Type: ev.Type, Created: ev.Created}
				outcome = OutcomeApplied
			} else {
				outcome = OutcomeOutOfOrder
			}
			if !equality.Semantic.DeepEqual(before, &obj.Status) {
				if err := s.opts.Client.Status().Update(ctx, obj); err != nil {
					return err
				}
			}
		}
		base := obj.DeepCopy()
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ids := append(recentIDs(ann), ev.ID)
		if len(ids) > RecentEventIDs {
			ids = ids[len(ids)-RecentEventIDs:]
		}
		ann[billingv1alpha1.AnnotationRecentEventIDs] = strings.Join(ids, ",")
		if outcome == OutcomeApplied {
			ann[billingv1alpha1.AnnotationLastEventID] = ev.ID
		}
		obj.SetAnnotations(ann)
		if err := s.opts.Client.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return err
		}
		final = obj
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("persisting event on %s: %w", key, err)
	}
	switch outcome {
	case OutcomeDuplicate:
		duplicates.Inc()
	case OutcomeOutOfOrder:
		outOfOrder.Inc()
		log.Info("Skipped an event older than the state it would overwrite")
	case OutcomeApplied:
		applied.WithLabelValues(ev.Type).Inc()
		s.recordEvent(final, ev)
	}
	return outcome, nil
}

func unixTime(sec int64) *metav1.Time {
	if sec == 0 {
		return nil
	}
	t := metav1.NewTime(time.Unix(sec, 0).UTC())
	return &t
}

func terminal(status string) bool { return status == "canceled" || status == "incomplete_expired" }

// subscriptionMutation copies a subscription object into status.
func (s *Server) subscriptionMutation(ev *event, so *subscriptionObject) mutation {
	return func(obj *billingv1alpha1.StripeSubscription, tie bool) bool {
		st := &obj.Status
		if tie && terminal(st.StripeStatus) && !terminal(so.Status) {
			return false
		}
		if st.SubscriptionID == "" {
			st.SubscriptionID = so.ID
		}
		if st.SubscriptionID != so.ID {
			return false // an earlier subscription of a recreated resource
		}
		st.StripeStatus = so.Status
		if ev.Type == "customer.subscription.deleted" && !terminal(so.Status) {
			st.StripeStatus = "canceled"
		}
		st.CustomerID = so.Customer.ID
		st.Items = nil
		for _, it := range so.Items.Data {
			st.Items = append(st.Items, billingv1alpha1.ObservedItem{ItemID: it.ID, PriceID: it.Price.ID, Quantity: it.Quantity})
		}
		st.CurrentPeriodStart, st.CurrentPeriodEnd = unixTime(so.CurrentPeriodStart), unixTime(so.CurrentPeriodEnd)
		st.CancelAtPeriodEnd = so.CancelAtPeriodEnd
		st.CancelAt, st.CanceledAt, st.TrialEnd = unixTime(so.CancelAt), unixTime(so.CanceledAt), unixTime(so.TrialEnd)
		st.PauseCollection = ""
		if so.PauseCollection != nil {
			st.PauseCollection = so.PauseCollection.Behavior
		}
		return true
	}
}

// invoiceMutation records the latest invoice and the PaymentFailed
// condition.
func (s *Server) invoiceMutation(ev *event, in *invoiceObject) mutation {
	switch ev.Type {
	case "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded",
		"invoice.payment_failed", "invoice.payment_action_required", "invoice.voided", "invoice.marked_uncollectible", "invoice.updated":
	default:
		return nil
	}
	return func(obj *billingv1alpha1.StripeSubscription, tie bool) bool {
		st := &obj.Status
		if st.SubscriptionID != "" && in.Subscription.ID != "" && st.SubscriptionID != in.Subscription.ID {
			return false
		}
		if li := st.LatestInvoice; tie && li != nil && li.ID == in.ID && li.Status == "paid" && in.Status != "paid" {
			return false
		}
		inv := &billingv1alpha1.InvoiceStatus{
			ID: in.ID, Status: in.Status, AmountDue: in.AmountDue, AmountPaid: in.AmountPaid, Currency: in.Currency,
			AttemptCount: in.AttemptCount, NextPaymentAttempt: unixTime(in.NextPaymentAttempt),
			HostedInvoiceURL: in.HostedInvoiceURL, BillingReason: in.BillingReason,
		}
		pi := in.paymentIntent()
		if pi != nil && pi.LastPaymentError != nil {
			inv.PaymentError = pi.LastPaymentError.Code
		}
		st.LatestInvoice = inv
		if cond, ok := paymentCondition(ev.Type, in, pi); ok {
			cond.ObservedGeneration = obj.Generation
			meta.SetStatusCondition(&st.Conditions, cond)
		}
		return true
	}
}

// paymentCondition derives PaymentFailed from a payment event.
func paymentCondition(evType string, in *invoiceObject, pi *paymentIntentObject) (metav1.Condition, bool) {
	amount := fmt.Sprintf("%d.%02d %s", in.AmountDue/100, in.AmountDue%100, in.Currency)
	next := "Stripe will not retry it"
	if in.NextPaymentAttempt != 0 {
		next = "next attempt at " + time.Unix(in.NextPaymentAttempt, 0).UTC().Format(time.RFC3339)
	}
	switch evType {
	case "invoice.paid", "invoice.payment_succeeded":
		return metav1.Condition{Type: billingv1alpha1.ConditionPaymentFailed, Status: metav1.ConditionFalse,
			Reason: billingv1alpha1.ReasonPaid, Message: fmt.Sprintf("Invoice %s is paid.", in.ID)}, true
	case "invoice.payment_action_required":
		return metav1.Condition{Type: billingv1alpha1.ConditionPaymentFailed, Status: metav1.ConditionTrue,
			Reason:  billingv1alpha1.ReasonAuthenticationRequired,
			Message: fmt.Sprintf("Payment of %s for invoice %s needs the customer to authenticate (attempt %d); %s.", amount, in.ID, in.AttemptCount, next)}, true
	case "invoice.payment_failed":
		reason := billingv1alpha1.ReasonPaymentDeclined
		code := ""
		if pi != nil && pi.LastPaymentError != nil {
			code = pi.LastPaymentError.Code
		}
		switch {
		case (pi != nil && pi.Status == "requires_action") || code == "authentication_required":
			reason = billingv1alpha1.ReasonAuthenticationRequired
		case in.NextPaymentAttempt == 0 && in.AttemptCount > 1:
			reason = billingv1alpha1.ReasonRetriesExhausted
		}
		detail := ""
		if code != "" {
			detail = " (" + code + ")"
		}
		return metav1.Condition{Type: billingv1alpha1.ConditionPaymentFailed, Status: metav1.ConditionTrue, Reason: reason,
			Message: fmt.Sprintf("Payment of %s for invoice %s failed%s after %d attempt(s); %s.", amount, in.ID, detail, in.AttemptCount, next)}, true
	}
	return metav1.Condition{}, false
}

// recordEvent emits a Kubernetes Event for changes a person cares about.
func (s *Server) recordEvent(obj *billingv1alpha1.StripeSubscription, ev *event) {
	if s.opts.Recorder == nil || obj == nil {
		return
	}
	switch ev.Type {
	case "invoice.payment_failed":
		s.opts.Recorder.Event(obj, corev1.EventTypeWarning, "PaymentFailed", "A payment for this subscription failed; see the PaymentFailed condition.")
	case "invoice.payment_action_required":
		s.opts.Recorder.Event(obj, corev1.EventTypeWarning, "PaymentActionRequired", "A payment needs the customer to authenticate.")
	case "invoice.paid":
		s.opts.Recorder.Event(obj, corev1.EventTypeNormal, "PaymentSucceeded", "The latest invoice is paid.")
	case "customer.subscription.deleted":
		s.opts.Recorder.Event(obj, corev1.EventTypeNormal, "SubscriptionCanceled", "The subscription was canceled in Stripe.")
	case "customer.subscription.trial_will_end":
		s.opts.Recorder.Event(obj, corev1.EventTypeNormal, "TrialWillEnd", "The trial ends in three days.")
	}
}
