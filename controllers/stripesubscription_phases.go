package controllers

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// phaseFinalizer adds the finalizer in Manage mode (Observe mode never
// writes to Stripe, so there is nothing to do on deletion).
func (r *StripeSubscriptionReconciler) phaseFinalizer(ctx context.Context, s *subscriptionScope) error {
	if s.observeMode() || controllerutil.ContainsFinalizer(s.obj, billingv1alpha1.Finalizer) {
		return nil
	}
	return r.patchMetaKeepStatus(ctx, s, func() { controllerutil.AddFinalizer(s.obj, billingv1alpha1.Finalizer) })
}

// phaseResolve resolves the customer and the items' prices from the
// references. A missing reference stalls (a watch re-triggers the pass when
// it appears); a reference without its Stripe ID yet waits.
func (r *StripeSubscriptionReconciler) phaseResolve(ctx context.Context, s *subscriptionScope) error {
	spec := &s.obj.Spec
	switch {
	case spec.CustomerID != "":
		if s.obj.Status.SubscriptionID == "" {
			if err := r.checkCustomerTenant(ctx, s); err != nil {
				return err
			}
		}
		s.customerID, s.customerSettled = spec.CustomerID, true
	case spec.CustomerRef != nil:
		var c billingv1alpha1.StripeCustomer
		if err := r.Get(ctx, types.NamespacedName{Namespace: s.obj.Namespace, Name: spec.CustomerRef.Name}, &c); err != nil {
			if apierrors.IsNotFound(err) {
				return newSpecError(billingv1alpha1.ReasonReferenceNotFound, "StripeCustomer %q does not exist.", spec.CustomerRef.Name)
			}
			return fmt.Errorf("reading StripeCustomer %s: %w", spec.CustomerRef.Name, err)
		}
		if c.Status.CustomerID == "" {
			return newWaitError(billingv1alpha1.ReasonWaitingForCustomer, waitRecheck, "Waiting for StripeCustomer %q to get its Stripe customer ID.", spec.CustomerRef.Name)
		}
		s.customerID, s.customerSettled = c.Status.CustomerID, customerSettled(&c)
	default:
		return newSpecError(billingv1alpha1.ReasonInvalidSpec, "The spec names no customer: set customerRef or customerID.")
	}

	s.desired = make([]desiredItem, 0, len(spec.Items))
	seen := map[string]int{}
	for i, it := range spec.Items {
		d := desiredItem{Quantity: max(it.Quantity, 1)}
		if it.PlanRef != nil {
			var p billingv1alpha1.StripePlan
			if err := r.Get(ctx, types.NamespacedName{Namespace: s.obj.Namespace, Name: it.PlanRef.Name}, &p); err != nil {
				if apierrors.IsNotFound(err) {
					return newSpecError(billingv1alpha1.ReasonReferenceNotFound, "StripePlan %q (item %d) does not exist.", it.PlanRef.Name, i+1)
				}
				return fmt.Errorf("reading StripePlan %s: %w", it.PlanRef.Name, err)
			}
			if p.Status.PriceID == "" {
				return newWaitError(billingv1alpha1.ReasonWaitingForPlan, waitRecheck, "Waiting for StripePlan %q (item %d) to get its Stripe price.", it.PlanRef.Name, i+1)
			}
			d.PriceID, d.PlanName, d.PreviousPriceIDs = p.Status.PriceID, p.Name, p.Status.PreviousPriceIDs
		} else {
			d.PriceID = it.PriceID
		}
		if j, dup := seen[d.PriceID]; dup {
			return newSpecError(billingv1alpha1.ReasonInvalidSpec, "Items %d and %d resolve to the same price %s; Stripe allows each price once per subscription.", j+1, i+1, d.PriceID)
		}
		seen[d.PriceID] = i
		s.desired = append(s.desired, d)
	}
	return nil
}

// phaseCreate makes sure a Stripe subscription is recorded in status:
// adopting spec.subscriptionID, finding the one created for this resource
// (Observe mode), or creating one exactly once (Manage mode).
func (r *StripeSubscriptionReconciler) phaseCreate(ctx context.Context, s *subscriptionScope) error {
	if s.obj.Status.SubscriptionID != "" {
		// The ID may have reached status another way than through
		// createExternal (the webhook server can record it first): the
		// create intent is over either way.
		if _, pending := s.obj.GetAnnotations()[billingv1alpha1.AnnotationCreatePending]; !pending {
			return nil
		}
		return r.patchMetaKeepStatus(ctx, s, func() {
			ann := s.obj.GetAnnotations()
			delete(ann, billingv1alpha1.AnnotationCreatePending)
			s.obj.SetAnnotations(ann)
		})
	}
	if id := s.obj.Spec.SubscriptionID; id != "" {
		sub, err := r.Stripe.GetSubscription(ctx, id)
		if err != nil {
			if stripe.IsNotFound(err) {
				return newSpecError(billingv1alpha1.ReasonNotFound, "Subscription %s named by spec.subscriptionID does not exist in Stripe.", id)
			}
			return fmt.Errorf("reading subscription %s to adopt it: %w", id, err)
		}
		if err := r.adoption().check(ctx, s.obj, s.owner, "subscription", sub.ID, sub.Metadata); err != nil {
			return err
		}
		s.sub = sub
		s.obj.Status.SubscriptionID = sub.ID
		r.event(s.obj, false, "Adopted", fmt.Sprintf("Adopted Stripe subscription %s", sub.ID))
		return nil
	}
	if s.observeMode() {
		found, err := r.Stripe.FindSubscriptionByOwner(ctx, s.owner, s.customerID)
		if err != nil {
			return fmt.Errorf("looking up the subscription of this resource: %w", err)
		}
		if found == nil {
			return newSpecError(billingv1alpha1.ReasonNotFound, "Observe mode found no Stripe subscription for this resource and never creates one; set spec.subscriptionID to observe an existing subscription.")
		}
		s.sub = found
		s.obj.Status.SubscriptionID = found.ID
		return nil
	}
	return r.createSubscription(ctx, s, "")
}

// createSubscription creates the Stripe subscription through the crash-safe
// createExternal. replaces names an ended subscription being recreated ("" on
// a first create).
func (r *StripeSubscriptionReconciler) createSubscription(ctx context.Context, s *subscriptionScope, replaces string) error {
	spec := &s.obj.Spec
	if !s.customerSettled {
		// Creating now could charge before the customer's default payment
		// method is attached, leaving the subscription incomplete.
		return newWaitError(billingv1alpha1.ReasonWaitingForCustomer, waitRecheck,
			"Waiting for StripeCustomer %q to be Ready (its payment method in place) before creating the subscription.", spec.CustomerRef.Name)
	}
	created := false
	var adopt func(ctx context.Context) (string, error)
	if replaces == "" {
		// The customer's subscriptions, listed: consistent at once, so a
		// manifest re-applied seconds after its resource was deleted with
		// CancelAtPeriodEnd finds its subscription again.
		adopt = func(ctx context.Context) (string, error) {
			found, err := r.Stripe.ListCustomerSubscriptions(ctx, s.customerID)
			live := found[:0]
			for _, f := range found {
				if !subscriptionEnded(f.Status) {
					live = append(live, f)
				}
			}
			return oldestOwnedHere(s.owner, live, func(x *stripe.Subscription) (string, int64, map[string]string) { return x.ID, x.Created, x.Metadata }), err
		}
	}
	id, adopted, err := createExternal(ctx, r.Client, s.obj, externalCreate{
		adopt: adopt,
		find: func(ctx context.Context) (string, error) {
			found, err := r.Stripe.FindSubscriptionByOwner(ctx, s.owner, s.customerID)
			if err != nil || found == nil {
				return "", err
			}
			if replaces != "" && (found.ID == replaces || found.Metadata[metadataReplaces] != replaces) {
				return "", nil // the ended subscription, not its replacement
			}
			s.sub = found
			return found.ID, nil
		},
		create: func(ctx context.Context, intent string) (string, error) {
			p := stripe.SubscriptionCreateParams{
				CustomerID:        s.customerID,
				TrialPeriodDays:   spec.TrialPeriodDays,
				CollectionMethod:  string(collectionMethod(spec)),
				DaysUntilDue:      spec.DaysUntilDue,
				PaymentBehavior:   string(paymentBehavior(spec)),
				ProrationBehavior: string(prorationBehavior(spec)),
				CancelAtPeriodEnd: spec.CancelAtPeriodEnd,
				Metadata:          ownerMetadata(s.owner, spec.Metadata.Map()),
			}
			if replaces != "" {
				p.Metadata[metadataReplaces] = replaces
			}
			for _, d := range s.desired {
				p.Items = append(p.Items, stripe.SubscriptionItemParams{PriceID: d.PriceID, Quantity: d.Quantity})
			}
			sub, err := r.Stripe.CreateSubscription(ctx, s.owner, intent, p)
			if err != nil {
				return "", fmt.Errorf("creating subscription: %w", err)
			}
			s.sub, created = sub, true
			return sub.ID, nil
		},
		record: func(id string) {
			s.obj.Status.SubscriptionID = id
			s.obj.Status.CustomerID = s.customerID
			if s.sub != nil && s.sub.ID == id {
				setObservedStatus(&s.obj.Status, s.sub)
			}
		},
		persistStatus: func(ctx context.Context) error { return r.persistStatus(ctx, s) },
	})
	if err != nil {
		return err
	}
	// createExternal's metadata patches returned the persisted status.
	s.orig = s.obj.Status.DeepCopy()
	if adopted {
		r.event(s.obj, false, "Adopted", fmt.Sprintf("Adopted Stripe subscription %s, which carries this resource's identity", id))
	}
	if created {
		msg := fmt.Sprintf("Created Stripe subscription %s", id)
		if replaces != "" {
			msg += " replacing ended subscription " + replaces
		}
		r.event(s.obj, false, "Created", msg)
	}
	return nil
}

// phaseObserve reads the subscription (unless this pass just created or
// adopted it), notes a final state, and applies the recreate annotation.
func (r *StripeSubscriptionReconciler) phaseObserve(ctx context.Context, s *subscriptionScope) error {
	if s.sub != nil {
		r.noteObserved(s)
	} else if s.sub = r.listedSubscription(ctx, s); s.sub == nil {
		sub, err := r.Stripe.GetSubscription(ctx, s.obj.Status.SubscriptionID)
		switch {
		case stripe.IsNotFound(err):
			s.ended = true
		case err != nil:
			return fmt.Errorf("reading subscription %s: %w", s.obj.Status.SubscriptionID, err)
		default:
			s.sub = sub
		}
	}
	if s.sub != nil && subscriptionEnded(s.sub.Status) {
		s.ended = true
	}

	v, ok := s.obj.GetAnnotations()[billingv1alpha1.AnnotationRecreate]
	if !ok {
		return nil
	}
	switch {
	case !s.ended:
		r.event(s.obj, true, "RecreateIgnored", fmt.Sprintf("Ignored %s: subscription %s has not ended (status %s); only an ended subscription is recreated", billingv1alpha1.AnnotationRecreate, s.sub.ID, s.sub.Status))
	case s.observeMode():
		r.event(s.obj, true, "RecreateIgnored", fmt.Sprintf("Ignored %s: Observe mode never creates a subscription", billingv1alpha1.AnnotationRecreate))
	case v != "true":
		r.event(s.obj, true, "RecreateIgnored", fmt.Sprintf("Ignored %s: its value must be \"true\"", billingv1alpha1.AnnotationRecreate))
	default:
		old := s.obj.Status.SubscriptionID
		log.FromContext(ctx).Info("Recreating ended subscription on request", "endedSubscription", old)
		s.sub = nil
		if err := r.createSubscription(ctx, s, old); err != nil {
			return err
		}
		s.ended = s.sub != nil && subscriptionEnded(s.sub.Status)
	}
	// The annotation is removed only after the new subscription is recorded,
	// so a crash in between keeps the request.
	return r.patchMetaKeepStatus(ctx, s, func() {
		ann := s.obj.GetAnnotations()
		delete(ann, billingv1alpha1.AnnotationRecreate)
		s.obj.SetAnnotations(ann)
	})
}

// phasePrices resolves each declared price's unit amount and currency
// (cache, then the subscription's items, then Stripe) and computes the
// expected amount of a full period.
func (r *StripeSubscriptionReconciler) phasePrices(ctx context.Context, s *subscriptionScope) error {
	if s.sub != nil {
		for _, it := range s.sub.Items {
			if it.Currency != "" {
				r.prices.LoadOrStore(it.PriceID, priceInfo{unitAmount: it.UnitAmount, currency: it.Currency})
			}
		}
	}
	for i := range s.desired {
		d := &s.desired[i]
		info, err := r.priceInfo(ctx, d.PriceID)
		if err != nil {
			if stripe.IsNotFound(err) {
				return newSpecError(billingv1alpha1.ReasonNotFound, "Price %s (item %d) does not exist in Stripe.", d.PriceID, i+1)
			}
			return fmt.Errorf("reading price %s: %w", d.PriceID, err)
		}
		d.UnitAmount, d.Currency = info.unitAmount, info.currency
		if i > 0 && d.Currency != s.desired[0].Currency {
			return newSpecError(billingv1alpha1.ReasonInvalidSpec, "Item %d is priced in %s but item 1 in %s; a subscription bills in one currency.", i+1, d.Currency, s.desired[0].Currency)
		}
	}
	s.expected = expectedAmount(s.desired)
	return nil
}

func (r *StripeSubscriptionReconciler) priceInfo(ctx context.Context, id string) (priceInfo, error) {
	if v, ok := r.prices.Load(id); ok {
		return v.(priceInfo), nil
	}
	p, err := r.Stripe.GetPrice(ctx, id)
	if err != nil {
		return priceInfo{}, err
	}
	info := priceInfo{unitAmount: p.UnitAmount, currency: p.Currency}
	r.prices.Store(id, info)
	return info, nil
}

// phaseUpdate compares Stripe with the declaration and, in Manage mode,
// applies every difference in one update call with the spec's proration
// behavior.
func (r *StripeSubscriptionReconciler) phaseUpdate(ctx context.Context, s *subscriptionScope) error {
	if s.ended || s.sub == nil {
		return nil
	}
	if s.sub.CustomerID != "" && s.sub.CustomerID != s.customerID {
		return newSpecError(billingv1alpha1.ReasonInvalidSpec, "Subscription %s belongs to customer %s in Stripe but the spec names customer %s; a subscription cannot move to another customer.", s.sub.ID, s.sub.CustomerID, s.customerID)
	}
	spec := &s.obj.Spec
	desiredMetadata := spec.Metadata.Map()
	if !s.observeMode() {
		desiredMetadata = ownerMetadata(s.owner, spec.Metadata.Map())
	}
	s.diff = diffSubscription(spec, s.desired, desiredMetadata, s.observeMode(), s.sub)
	if s.diff.empty() || s.observeMode() {
		return nil
	}
	updated, err := r.Stripe.UpdateSubscription(ctx, s.owner, s.sub.ID, s.diff.params)
	if err != nil {
		return fmt.Errorf("updating subscription %s: %w", s.sub.ID, err)
	}
	s.sub, s.applied = updated, true
	r.noteObserved(s)
	if s.driftCorrected() {
		r.event(s.obj, false, "DriftCorrected", "Corrected Stripe subscription "+updated.ID+": "+joinDifferences(s.diff.texts()))
	} else {
		r.event(s.obj, false, "Updated", "Updated Stripe subscription "+updated.ID+": "+joinDifferences(s.diff.texts()))
	}
	return nil
}

// driftCorrected tells whether the applied change undid a change made in
// Stripe (rather than applying a new spec or a plan's price rollover): the
// spec is the one the last successful pass applied.
func (s *subscriptionScope) driftCorrected() bool {
	st := s.obj.Status
	return s.applied && st.ObservedGeneration != 0 && st.ObservedGeneration == s.obj.Generation && !s.diff.onlyRollover()
}

// phaseReport writes the observed state and the BillingDrift,
// PaymentFailed, Synced and Ready conditions.
func (r *StripeSubscriptionReconciler) phaseReport(ctx context.Context, s *subscriptionScope) error {
	obj := s.obj
	st := &obj.Status
	if s.sub != nil {
		setObservedStatus(st, s.sub)
	} else if s.ended {
		st.StripeStatus = ""
		st.LatestInvoice = nil
	}
	if st.CustomerID == "" {
		st.CustomerID = s.customerID
	}
	st.ExpectedAmount = s.expected

	// PaymentFailed.
	pay := condition{metav1.ConditionFalse, billingv1alpha1.ReasonPaid, "No invoice is owed."}
	if s.sub != nil {
		pay = paymentCondition(s.sub)
	}
	// Its Warning Event is recorded by persistStatus once the status that
	// reports the failure is written.
	setCondition(obj, billingv1alpha1.ConditionPaymentFailed, pay.status, pay.reason, pay.message)

	// BillingDrift.
	var uncorrected []string
	if s.observeMode() {
		uncorrected = s.diff.texts()
	}
	var note string
	if s.sub != nil && !s.ended {
		var invDrift string
		invDrift, note = invoiceNote(s.sub, s.desired, s.expected)
		if invDrift != "" {
			uncorrected = append(uncorrected, invDrift)
		}
	}
	if s.ended {
		switch {
		case s.sub == nil:
			uncorrected = append(uncorrected, fmt.Sprintf("subscription %s no longer exists in Stripe", st.SubscriptionID))
		case s.sub.Status == subStatusCanceled && !obj.Spec.CancelAtPeriodEnd:
			uncorrected = append(uncorrected, fmt.Sprintf("subscription %s was canceled in Stripe", s.sub.ID))
		}
	}
	prevDrift := findCondition(s.orig.Conditions, billingv1alpha1.ConditionBillingDrift)
	switch {
	case len(uncorrected) > 0:
		setCondition(obj, billingv1alpha1.ConditionBillingDrift, metav1.ConditionTrue, billingv1alpha1.ReasonDrifted,
			"Stripe differs from the declaration: "+joinDifferences(uncorrected)+".")
	case s.driftCorrected():
		setCondition(obj, billingv1alpha1.ConditionBillingDrift, metav1.ConditionFalse, billingv1alpha1.ReasonDriftCorrected,
			"Stripe had drifted from the declaration and was corrected: "+joinDifferences(s.diff.texts())+".")
	case prevDrift != nil && prevDrift.Reason == billingv1alpha1.ReasonDriftCorrected && prevDrift.ObservedGeneration == obj.Generation:
		// Keep the record of the last correction until the spec changes or
		// Stripe drifts again.
	default:
		msg := "Stripe matches the declaration."
		if note != "" {
			msg += " " + note
		}
		setCondition(obj, billingv1alpha1.ConditionBillingDrift, metav1.ConditionFalse, billingv1alpha1.ReasonInSync, msg)
	}

	// Synced, Stalled, Ready.
	if s.ended {
		msg := fmt.Sprintf("Subscription %s has ended in Stripe (%s) and is not recreated automatically; annotate the resource with %s=true to create a new subscription.",
			st.SubscriptionID, endedState(s.sub), billingv1alpha1.AnnotationRecreate)
		if !findConditionIs(s.orig.Conditions, billingv1alpha1.ConditionStalled, billingv1alpha1.ReasonSubscriptionEnded) {
			r.event(obj, true, billingv1alpha1.ReasonSubscriptionEnded, msg)
		}
		setCondition(obj, billingv1alpha1.ConditionSynced, metav1.ConditionFalse, billingv1alpha1.ReasonSubscriptionEnded, msg)
		markStalled(obj, billingv1alpha1.ReasonSubscriptionEnded, msg)
		obj.SetObservedGeneration(obj.Generation)
		return nil
	}
	markSynced(obj)
	switch {
	case s.observeMode() && len(uncorrected) > 0:
		markNotReady(obj, billingv1alpha1.ReasonDrifted, "Stripe differs from the declaration; Observe mode reports and does not correct it.")
	case pay.status == metav1.ConditionTrue:
		markNotReady(obj, pay.reason, pay.message)
	case s.sub.Status == subStatusPaused:
		markNotReady(obj, billingv1alpha1.ReasonPaused, "The subscription is paused in Stripe (its trial ended without a payment method).")
	case s.sub.Status == subStatusActive || s.sub.Status == subStatusTrialing:
		markReady(obj, readyMessage(s.sub))
	default:
		markNotReady(obj, billingv1alpha1.ReasonNotActive, fmt.Sprintf("The subscription is %s in Stripe.", s.sub.Status))
	}
	if reason, msg, stalled := subscriptionNeedsPerson(s.sub, pay); stalled {
		markStalled(obj, reason, msg)
	}
	return nil
}

func readyMessage(sub *stripe.Subscription) string {
	msg := fmt.Sprintf("The subscription is %s in Stripe and matches the spec", sub.Status)
	if sub.PauseCollection != "" {
		msg += "; payment collection is paused (" + sub.PauseCollection + ") as declared"
	}
	if sub.CancelAtPeriodEnd {
		msg += "; it cancels at the end of the current period"
	}
	return msg + "."
}

func endedState(sub *stripe.Subscription) string {
	if sub == nil {
		return "deleted"
	}
	return sub.Status
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

func findConditionIs(conds []metav1.Condition, t, reason string) bool {
	c := findCondition(conds, t)
	return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason
}

// reconcileDelete applies the deletion policy and releases the finalizer.
func (r *StripeSubscriptionReconciler) reconcileDelete(ctx context.Context, s *subscriptionScope) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(s.obj, billingv1alpha1.Finalizer) {
		s.skipStatus = true
		return ctrl.Result{}, nil
	}
	if err := r.deleteExternal(ctx, s); err != nil {
		return r.fail(ctx, s, "delete", err)
	}
	if err := releaseFinalizer(ctx, r.Client, s.obj); err != nil {
		return r.fail(ctx, s, "release", err)
	}
	s.skipStatus = true
	return ctrl.Result{}, nil
}

func (r *StripeSubscriptionReconciler) deleteExternal(ctx context.Context, s *subscriptionScope) error {
	logger := log.FromContext(ctx)
	obj := s.obj
	if s.observeMode() {
		logger.Info("Observe mode: leaving the Stripe subscription alone on deletion")
		return nil
	}
	policy := obj.Spec.DeletionPolicy
	if policy == "" {
		policy = billingv1alpha1.SubscriptionDeletionPolicyCancelAtPeriodEnd
	}
	if policy == billingv1alpha1.SubscriptionDeletionPolicyOrphan {
		logger.Info("Deletion policy Orphan: leaving the Stripe subscription", "subscriptionID", obj.Status.SubscriptionID)
		return r.markOrphaned(ctx, s)
	}
	id := obj.Status.SubscriptionID
	if id == "" {
		id = obj.Spec.SubscriptionID
	}
	if id == "" {
		if _, pending := obj.GetAnnotations()[billingv1alpha1.AnnotationCreatePending]; !pending {
			return nil // never created
		}
		// A create may have succeeded without its ID being recorded.
		customerID := obj.Status.CustomerID
		if customerID == "" {
			if err := r.phaseResolve(ctx, s); err != nil {
				logger.Info("Cannot resolve the customer to look for a subscription created before a crash; releasing", "error", err.Error())
				return nil
			}
			customerID = s.customerID
		}
		found, err := r.Stripe.FindSubscriptionByOwner(ctx, s.owner, customerID)
		if err != nil {
			return fmt.Errorf("looking up a subscription created before a crash: %w", err)
		}
		if found == nil {
			return nil
		}
		id = found.ID
	}
	sub, err := r.Stripe.GetSubscription(ctx, id)
	if stripe.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading subscription %s before deletion: %w", id, err)
	}
	if subscriptionEnded(sub.Status) {
		logger.Info("Subscription already ended in Stripe", "subscriptionID", id, "status", sub.Status)
		return nil
	}
	switch policy {
	case billingv1alpha1.SubscriptionDeletionPolicyCancelAtPeriodEnd:
		if !sub.CancelAtPeriodEnd {
			yes := true
			if _, err := r.Stripe.UpdateSubscription(ctx, s.owner, id, stripe.SubscriptionUpdateParams{CancelAtPeriodEnd: &yes}); err != nil {
				if stripe.IsNotFound(err) {
					return nil
				}
				return fmt.Errorf("setting cancel_at_period_end on subscription %s: %w", id, err)
			}
		}
		r.event(obj, false, "Canceled", fmt.Sprintf("Stripe subscription %s cancels at the end of the current period", id))
	default:
		if _, err := r.Stripe.CancelSubscription(ctx, s.owner, id, stripe.SubscriptionCancelParams{InvoiceNow: true, Prorate: true}); err != nil {
			if stripe.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("canceling subscription %s: %w", id, err)
		}
		r.event(obj, false, "Canceled", fmt.Sprintf("Canceled Stripe subscription %s", id))
	}
	return nil
}

// checkCustomerTenant refuses, before a subscription is created or adopted,
// a spec.customerID that belongs to a StripeCustomer of another namespace:
// a tenant must not bill another tenant's customer. A customer made outside
// the operator (no identity) may be referenced; it stays unmanaged. The
// answer is cached per customer ID (a customer's identity does not move).
func (r *StripeSubscriptionReconciler) checkCustomerTenant(ctx context.Context, s *subscriptionScope) error {
	id := s.obj.Spec.CustomerID
	ns, ok := r.customerTenants.Load(id)
	if !ok {
		cus, err := r.Stripe.GetCustomer(ctx, id)
		if stripe.IsNotFound(err) || (err == nil && cus.Deleted) {
			return newSpecError(billingv1alpha1.ReasonNotFound, "Stripe customer %s named by spec.customerID does not exist or was deleted.", id)
		}
		if err != nil {
			return fmt.Errorf("reading customer %s: %w", id, err)
		}
		tenant := ""
		if cus.Metadata[billingv1alpha1.StripeMetadataName] != "" {
			tenant = cus.Metadata[billingv1alpha1.StripeMetadataNamespace] + "/" + cus.Metadata[billingv1alpha1.StripeMetadataName]
		}
		ns, _ = r.customerTenants.LoadOrStore(id, tenant)
	}
	if owner := ns.(string); owner != "" && !strings.HasPrefix(owner, s.obj.Namespace+"/") {
		return newSpecError(ReasonOwnedElsewhere, "Stripe customer %s belongs to %s, another namespace; a subscription here cannot bill it.", id, owner)
	}
	return nil
}
