package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/identity"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// resolve resolves the customer and the items' prices from the references.
// A missing reference stalls (a watch re-triggers the pass when it
// appears); a reference without its Stripe ID yet waits.
func (s *subscriptionScope) resolve(ctx context.Context) error {
	r := s.r
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
		s.tax.customerTax = customerTaxLocation(&c)
	default:
		return newSpecError(billingv1alpha1.ReasonInvalidSpec, "The spec names no customer: set customerRef or customerID.")
	}

	s.desired = make([]desiredItem, 0, len(spec.Items))
	seen := map[string]int{}
	for i, it := range spec.Items {
		d := desiredItem{Quantity: max(it.Quantity, 1), SpecQuantity: it.Quantity}
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
			d.PlanPriceID, d.Policy = p.Status.PriceID, priceChangePolicy(&p.Spec)
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

// Observe resolves the declaration, reads the bound subscription (from a
// whole list on a resync, when allowed), notes a final state, applies the
// recreate annotation and compares Stripe with the declaration.
func (s *subscriptionScope) Observe(ctx context.Context) (observation, error) {
	r := s.r
	if err := s.resolve(ctx); err != nil {
		return observation{}, err
	}
	if err := s.resolveDiscount(ctx); err != nil {
		return observation{}, err
	}
	id := s.obj.Status.SubscriptionID
	if id == "" {
		// A create redeems the declared promotion code.
		if err := s.lookupPromotionCode(ctx); err != nil {
			return observation{}, err
		}
		if s.observeMode() {
			return observation{}, nil
		}
		return observation{}, s.checkTaxLocation(ctx, true)
	}
	if s.sub == nil && r.statusCarriesNews(s.obj) {
		s.sub, s.fromStatus = subscriptionFromStatus(&s.obj.Status), true
		s.ended = subscriptionEnded(s.sub.Status)
		if !s.ended {
			if err := s.applyPriceChangePolicy(ctx); err != nil {
				return observation{}, err
			}
		}
		return observation{bound: true}, s.prices(ctx)
	}
	switch {
	case s.sub != nil && s.sub.ID == id:
		r.noteObserved(s) // this pass created, adopted or found it
	default:
		if s.sub = r.listedSubscription(ctx, s); s.sub == nil {
			sub, err := r.Stripe.GetSubscription(ctx, id)
			switch {
			case stripe.IsNotFound(err):
				s.ended = true
			case err != nil:
				return observation{}, fmt.Errorf("reading subscription %s: %w", id, err)
			default:
				s.sub = sub
			}
		}
	}
	if s.sub != nil {
		s.guard.observed(s.sub.ID, s.sub.Metadata)
	}
	s.ended = s.sub == nil || subscriptionEnded(s.sub.Status)
	if replaces, err := s.recreateRequest(ctx); replaces != "" || err != nil {
		return observation{replaces: replaces}, err
	}
	if !s.ended {
		if err := s.applyPriceChangePolicy(ctx); err != nil {
			return observation{}, err
		}
	}
	if err := s.prices(ctx); err != nil {
		return observation{}, err
	}
	if s.ended {
		return observation{bound: true}, nil
	}
	if s.sub.CustomerID != "" && s.sub.CustomerID != s.customerID {
		return observation{}, newSpecError(billingv1alpha1.ReasonInvalidSpec, "Subscription %s belongs to customer %s in Stripe but the spec names customer %s; a subscription cannot move to another customer.", s.sub.ID, s.sub.CustomerID, s.customerID)
	}
	spec := &s.obj.Spec
	desiredMetadata := spec.Metadata.Map()
	if !s.observeMode() {
		desiredMetadata = ownerMetadata(s.owner, spec.Metadata.Map())
	}
	s.diff = diffSubscription(spec, s.desired, desiredMetadata, s.observeMode(), s.sub)
	s.diffTaxAndDates(&s.diff)
	if err := s.checkTaxLocation(ctx, false); err != nil {
		return observation{}, err
	}
	if err := s.diffDiscount(ctx); err != nil {
		return observation{}, err
	}
	if !s.observeMode() {
		if err := s.observeSchedule(ctx); err != nil {
			return observation{}, err
		}
	}
	return observation{bound: true, diff: s.diff.texts(), bookkeeping: s.diff.onlyRollover()}, nil
}

// recreateRequest applies the recreate annotation: on an ended
// subscription in Manage mode it returns the ended ID to replace; otherwise
// it records why the request is ignored and asks the core to remove it. A
// granted request is removed once this pass recorded the replacement (only
// then, so a crash in between keeps the request).
func (s *subscriptionScope) recreateRequest(ctx context.Context) (string, error) {
	v, ok := s.obj.GetAnnotations()[billingv1alpha1.AnnotationRecreate]
	switch {
	case !ok:
		return "", nil
	case s.recreated:
	case !s.ended:
		s.r.event(s.obj, true, "RecreateIgnored", fmt.Sprintf("Ignored %s: subscription %s has not ended (status %s); only an ended subscription is recreated", billingv1alpha1.AnnotationRecreate, s.sub.ID, s.sub.Status))
	case s.observeMode():
		s.r.event(s.obj, true, "RecreateIgnored", fmt.Sprintf("Ignored %s: Observe mode never creates a subscription", billingv1alpha1.AnnotationRecreate))
	case v != "true" && v != recreateForce:
		s.r.event(s.obj, true, "RecreateIgnored", fmt.Sprintf("Ignored %s: its value must be \"true\" (or \"force\")", billingv1alpha1.AnnotationRecreate))
	case v != recreateForce && s.sameFailedCard(ctx):
		s.r.event(s.obj, true, "RecreateRefused", fmt.Sprintf("Refused %s: subscription %s was canceled for non-payment and the customer's default payment method is still %s, the one whose payments failed; a new subscription would charge it again. Update the customer's payment method, or set %s=force to charge it anyway.",
			billingv1alpha1.AnnotationRecreate, s.obj.Status.SubscriptionID, s.obj.Status.Cancellation.FailedPaymentMethod, billingv1alpha1.AnnotationRecreate))
	default:
		old := s.obj.Status.SubscriptionID
		log.FromContext(ctx).Info("Recreating ended subscription on request", "endedSubscription", old)
		s.sub, s.replaces = nil, old
		return old, nil
	}
	// Done or ignored: the request is over; the core's deferred write
	// removes it after the status that answers it.
	s.dropAnnotation(billingv1alpha1.AnnotationRecreate)
	return "", nil
}

// Creation adopts spec.subscriptionID, finds in Observe mode the
// subscription created for this resource, or creates one exactly once (a
// replacement, after a recreate request).
func (s *subscriptionScope) Creation() creation {
	r, spec := s.r, &s.obj.Spec
	c := creation{
		what: "subscription", specID: spec.SubscriptionID, specField: "spec.subscriptionID",
		read: func(ctx context.Context, id string) (map[string]string, error) {
			sub, err := r.Stripe.GetSubscription(ctx, id)
			if err != nil {
				if stripe.IsNotFound(err) {
					return nil, newSpecError(billingv1alpha1.ReasonNotFound, "Subscription %s named by spec.subscriptionID does not exist in Stripe.", id)
				}
				return nil, fmt.Errorf("reading subscription %s to adopt it: %w", id, err)
			}
			s.sub = sub
			return sub.Metadata, nil
		},
		observeFind: func(ctx context.Context) (string, error) {
			found, err := r.Stripe.FindSubscriptionByOwner(ctx, s.owner, s.customerID)
			if err != nil || found == nil {
				return "", err
			}
			s.sub = found
			return found.ID, nil
		},
		ready: func() error {
			if !s.customerSettled {
				// Creating now could charge before the customer's default
				// payment method is attached, leaving the subscription
				// incomplete.
				return newWaitError(billingv1alpha1.ReasonWaitingForCustomer, waitRecheck,
					"Waiting for StripeCustomer %q to be Ready (its payment method in place) before creating the subscription.", spec.CustomerRef.Name)
			}
			return nil
		},
		externalCreate: externalCreate{
			find: func(ctx context.Context) (string, error) {
				found, err := r.Stripe.FindSubscriptionByOwner(ctx, s.owner, s.customerID)
				if err != nil || found == nil {
					return "", err
				}
				if s.replaces != "" && (found.ID == s.replaces || found.Metadata[metadataReplaces] != s.replaces) {
					return "", nil // the ended subscription, not its replacement
				}
				s.sub = found
				return found.ID, nil
			},
			create: func(ctx context.Context, intent string) (string, error) {
				// The prices' terms first: a metered item is created without
				// a quantity, and a declared quantity on one is refused
				// before anything is sent.
				if err := s.prices(ctx); err != nil {
					return "", err
				}
				var attempt *chargeAttempt
				if s.createCharges() {
					a, err := s.beforeCharge(ctx, "create")
					if err != nil {
						return "", err
					}
					attempt = a
				}
				sub, err := s.writes.CreateSubscription(ctx, s.owner, intent, s.createParams())
				if attempt != nil {
					if cerr := s.afterCharge(ctx, attempt, sub, err); cerr != nil {
						return "", fmt.Errorf("creating subscription: %w", cerr)
					}
				}
				if err != nil {
					return "", fmt.Errorf("creating subscription: %w", err)
				}
				s.sub = sub
				return sub.ID, nil
			},
			record: func(id string) {
				s.obj.Status.SubscriptionID = id
				s.obj.Status.CustomerID = s.customerID
				if s.sub != nil && s.sub.ID == id {
					s.recordBillingDates(s.sub, true)
					setObservedStatus(&s.obj.Status, s.sub)
					r.identities.add(s.customerID, s.sub)
				}
				s.recreated = s.replaces != ""
			},
		},
	}
	if s.replaces == "" {
		c.adopt = s.lookupIdentity
	} else {
		c.createdNote = "replacing ended subscription " + s.replaces
	}
	return c
}

// lookupIdentity finds, before a first create, the oldest live
// subscription of the customer that carries this resource's identity. The
// customer's subscriptions are listed (consistent at once, so a manifest
// re-applied seconds after its resource was deleted with CancelAtPeriodEnd
// finds its subscription again) once per process and customer
// (subscriptionIdentities); a match is read again, since the snapshot may
// predate its end.
func (s *subscriptionScope) lookupIdentity(ctx context.Context) (string, error) {
	r := s.r
	list := func(ctx context.Context) ([]*stripe.Subscription, error) {
		return r.Stripe.ListCustomerSubscriptions(ctx, s.customerID)
	}
	for {
		found, err := r.identities.candidates(ctx, s.customerID, list)
		if err != nil {
			return "", err
		}
		id := oldestOwnedHere(s.owner, found, func(x *stripe.Subscription) (string, int64, map[string]string) { return x.ID, x.Created, x.Metadata })
		if id == "" {
			return "", nil
		}
		sub, err := r.Stripe.GetSubscription(ctx, id)
		switch {
		case stripe.IsNotFound(err) || (err == nil && subscriptionEnded(sub.Status)):
			r.identities.drop(s.customerID, id)
			continue
		case err != nil:
			return "", err
		}
		s.sub = sub
		return id, nil
	}
}

// createParams are the create call's fields.
func (s *subscriptionScope) createParams() stripe.SubscriptionCreateParams {
	spec := &s.obj.Spec
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
	if s.replaces != "" {
		p.Metadata[metadataReplaces] = s.replaces
	}
	for _, d := range s.desired {
		p.Items = append(p.Items, stripe.SubscriptionItemParams{PriceID: d.PriceID, Quantity: d.Quantity})
	}
	s.createTaxParams(&p)
	s.discountCreateParams(&p)
	return p
}

// prices resolves each declared price's unit amount and currency (cache,
// then the subscription's items, then Stripe) and computes the expected
// amount of a full period.
func (s *subscriptionScope) prices(ctx context.Context) error {
	r := s.r
	if s.sub != nil {
		for _, it := range s.sub.Items {
			if it.Currency != "" {
				r.prices.LoadOrStore(it.PriceID, priceInfo{unitAmount: it.UnitAmount, currency: it.Currency, interval: it.Interval, intervalCount: it.IntervalCount, price: it.Price})
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
		if err := s.itemPrice(ctx, i, info); err != nil {
			if stripe.IsNotFound(err) {
				return newSpecError(billingv1alpha1.ReasonNotFound, "Price %s (item %d) does not exist in Stripe.", d.PriceID, i+1)
			}
			return err
		}
		if i > 0 && d.Currency != s.desired[0].Currency {
			return newSpecError(billingv1alpha1.ReasonInvalidSpec, "Item %d is priced in %s but item 1 in %s; a subscription bills in one currency.", i+1, d.Currency, s.desired[0].Currency)
		}
	}
	if err := s.resolveTaxRates(ctx); err != nil {
		return err
	}
	s.expected = s.expectedTotal()
	return nil
}

func (r *StripeSubscriptionReconciler) priceInfo(ctx context.Context, id string) (priceInfo, error) {
	// An entry without its interval (loaded from an item that lacked it)
	// is completed by one read.
	if v, ok := r.prices.Load(id); ok && v.(priceInfo).interval != "" {
		return v.(priceInfo), nil
	}
	p, err := r.Stripe.GetPrice(ctx, id)
	if err != nil {
		return priceInfo{}, err
	}
	info := priceInfo{unitAmount: p.UnitAmount, currency: p.Currency, interval: p.Interval, intervalCount: p.IntervalCount, price: p}
	r.prices.Store(id, info)
	return info, nil
}

// Update applies every difference in one update call with the spec's
// proration behavior.
func (s *subscriptionScope) Update(ctx context.Context) error {
	if err := s.releaseUnwantedSchedule(ctx); err != nil {
		return err
	}
	if !s.diff.paramsEmpty() {
		params := s.diff.params
		if params.CancelAtPeriodEnd != nil && *params.CancelAtPeriodEnd {
			// cancellation_details.comment tells, when the subscription
			// ends, that the declaration asked for it.
			comment := operatorCancelComment
			params.CancellationComment = &comment
		}
		var attempt *chargeAttempt
		if s.updateCharges() {
			a, err := s.beforeCharge(ctx, "update")
			if err != nil {
				return err
			}
			attempt = a
		}
		if params.ResetAnchorNow {
			// A reset to now restarts the period and invoices at once, and
			// a repeated request would do it again (each attempt has a new
			// idempotency key): it is recorded as made before it is sent,
			// so a lost status write never repeats it (at most once).
			if err := s.markAnchorReset(ctx); err != nil {
				return err
			}
		}
		updated, err := s.writes.UpdateSubscription(ctx, s.owner, s.sub.ID, params)
		if err != nil && params.ResetAnchorNow && (stripe.IsCardDeclined(err) || refusedBeforeCharging(err)) {
			// Stripe applied nothing: the reset was not made.
			var was int64
			if bd := s.orig.Status.BillingDates; bd != nil {
				was = bd.AnchorResetGeneration
			}
			s.obj.Status.BillingDates.AnchorResetGeneration = was
		}
		if attempt != nil {
			if cerr := s.afterCharge(ctx, attempt, updated, err); cerr != nil {
				return fmt.Errorf("updating subscription %s: %w", s.sub.ID, cerr)
			}
		}
		if err != nil {
			return fmt.Errorf("updating subscription %s: %w", s.sub.ID, err)
		}
		s.sub = updated
		s.afterTaxUpdate(params, updated)
		s.r.noteObserved(s)
	}
	if err := s.removeDiscount(ctx); err != nil {
		return err
	}
	return s.scheduleMoves(ctx)
}

// Report writes the observed state and the BillingDrift, PaymentFailed,
// Synced and Ready conditions.
func (s *subscriptionScope) Report(ctx context.Context, drift []string, corrected bool) {
	r, obj := s.r, s.obj
	st := &obj.Status
	switch {
	case s.fromStatus:
		// Status is the source this pass; BillingDrift keeps the last read's
		// verdict.
	case s.sub != nil:
		setObservedStatus(st, s.sub)
	case s.ended:
		st.StripeStatus = ""
		st.LatestInvoice = nil
	}
	if !s.fromStatus {
		prev := st.Cancellation
		st.Cancellation = cancellationStatus(s.sub, s.ended, &obj.Spec)
		if c := st.Cancellation; c != nil && prev != nil && c.FailedPaymentMethod == "" && c.EndedBy == prev.EndedBy {
			// A read from a list does not expand the invoice's payment:
			// keep what an earlier read found.
			c.FailedPaymentMethod = prev.FailedPaymentMethod
		}
		clearSettledDecline(st, s.sub)
	}
	if s.sub != nil && !s.fromStatus {
		r.noteRead(obj.UID, obj)
	}
	if st.CustomerID == "" {
		st.CustomerID = s.customerID
	}
	st.ExpectedAmount = s.expected
	s.reportScheduledPriceChange()
	s.reportDiscount(ctx)
	if s.sub != nil && !s.ended && !s.fromStatus {
		s.diff.invoiceDiscount = s.invoiceDiscountDrift(ctx)
	}

	// PaymentFailed.
	pay := condition{metav1.ConditionFalse, billingv1alpha1.ReasonPaid, "No invoice is owed."}
	if s.sub != nil {
		pay = paymentCondition(s.sub)
	}
	// Its Warning Event is recorded by statusWritten once the status that
	// reports the failure is written.
	setCondition(obj, billingv1alpha1.ConditionPaymentFailed, pay.status, pay.reason, pay.message)

	// BillingDrift: judged on what this pass read; a pass that took status
	// keeps the last read's verdict.
	prevDrift := findCondition(s.orig.Status.Conditions, billingv1alpha1.ConditionBillingDrift)
	drifted := s.fromStatus && prevDrift != nil && prevDrift.Status == metav1.ConditionTrue
	if !s.fromStatus {
		drifted = s.reportDrift(drift, corrected, prevDrift)
	}

	// Synced, Stalled, Ready.
	if s.ended {
		reason, msg := endedCondition(st, s.sub)
		if !findConditionIs(s.orig.Status.Conditions, billingv1alpha1.ConditionStalled, reason) {
			r.event(obj, true, reason, msg)
		}
		setCondition(obj, billingv1alpha1.ConditionSynced, metav1.ConditionFalse, reason, msg)
		markStalled(obj, reason, msg)
		obj.SetObservedGeneration(obj.Generation)
		return
	}
	markSynced(obj)
	switch {
	case s.observeMode() && drifted:
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
	s.reportTax()
}

// reportDrift sets BillingDrift from this pass's read: what Observe mode
// left uncorrected, an invoice that bills other than declared, an ended
// subscription; or the correction this pass made. It reports whether
// Stripe differs from the declaration.
func (s *subscriptionScope) reportDrift(drift []string, corrected bool, prevDrift *metav1.Condition) bool {
	obj, st := s.obj, &s.obj.Status
	uncorrected := append([]string(nil), drift...)
	var note string
	if s.sub != nil && !s.ended {
		var invDrift string
		invDrift, note = invoiceCheck(s, s.sub, s.desired, s.expected)
		if invDrift != "" {
			uncorrected = append(uncorrected, invDrift)
		}
		uncorrected = append(uncorrected, s.taxDrift()...)
		if s.diff.invoiceDiscount != "" {
			uncorrected = append(uncorrected, s.diff.invoiceDiscount)
		}
	}
	if s.ended {
		switch {
		case s.sub == nil:
			uncorrected = append(uncorrected, fmt.Sprintf("subscription %s no longer exists in Stripe", st.SubscriptionID))
		case st.Cancellation != nil && st.Cancellation.EndedBy == billingv1alpha1.ReasonCanceledOutsideOperator:
			// Only a cancellation nobody declared is drift; Stripe's own for
			// non-payment and the declared one are not.
			uncorrected = append(uncorrected, fmt.Sprintf("subscription %s was canceled outside the operator", s.sub.ID))
		}
	}
	unrecorded, hasUnrecorded := s.unrecordedCorrection()
	switch {
	case len(uncorrected) > 0:
		s.forgetCorrection()
		setCondition(obj, billingv1alpha1.ConditionBillingDrift, metav1.ConditionTrue, billingv1alpha1.ReasonDrifted,
			"Stripe differs from the declaration: "+joinDifferences(uncorrected)+".")
	case corrected:
		msg := "Stripe had drifted from the declaration and was corrected: " + joinDifferences(s.diff.texts()) + "."
		s.noteCorrection(msg)
		setCondition(obj, billingv1alpha1.ConditionBillingDrift, metav1.ConditionFalse, billingv1alpha1.ReasonDriftCorrected, msg)
	case prevDrift != nil && prevDrift.Reason == billingv1alpha1.ReasonDriftCorrected && prevDrift.ObservedGeneration == obj.Generation &&
		(!hasUnrecorded || prevDrift.Message == unrecorded):
		// Keep the record of the last correction until the spec changes or
		// Stripe drifts again.
		s.forgetCorrection()
	case hasUnrecorded:
		// This process corrected Stripe but the status write of that pass
		// conflicted (drift_corrections.go): report the correction made.
		setCondition(obj, billingv1alpha1.ConditionBillingDrift, metav1.ConditionFalse, billingv1alpha1.ReasonDriftCorrected, unrecorded)
	default:
		msg := "Stripe matches the declaration."
		if note != "" {
			msg += " " + note
		}
		setCondition(obj, billingv1alpha1.ConditionBillingDrift, metav1.ConditionFalse, billingv1alpha1.ReasonInSync, msg)
	}

	return len(uncorrected) > 0
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

// Delete applies the deletion policy: CancelAtPeriodEnd (the default) sets
// cancel_at_period_end, so re-applying the manifest before the period ends
// resumes the subscription; Cancel cancels at once (invoicing and prorating
// what is owed); Orphan leaves it, marked as left behind.
func (s *subscriptionScope) Delete(ctx context.Context) (bool, time.Duration, error) {
	return true, 0, s.deleteExternal(ctx)
}

func (s *subscriptionScope) deleteExternal(ctx context.Context) error {
	r := s.r
	logger := log.FromContext(ctx)
	obj := s.obj
	policy := obj.Spec.DeletionPolicy
	if policy == "" {
		policy = billingv1alpha1.SubscriptionDeletionPolicyCancelAtPeriodEnd
	}
	if policy == billingv1alpha1.SubscriptionDeletionPolicyOrphan {
		logger.Info("Deletion policy Orphan: leaving the Stripe subscription", "subscriptionID", obj.Status.SubscriptionID)
		return s.markOrphaned(ctx)
	}
	// Only the bound subscription (status), or one a crash left unrecorded
	// under this resource's own identity, is acted on: never the one
	// spec.subscriptionID names unless it was bound (the core's guard
	// refuses any other write, and records that it left it alone).
	id := obj.Status.SubscriptionID
	if id == "" {
		if _, pending := obj.GetAnnotations()[billingv1alpha1.AnnotationCreatePending]; !pending {
			return nil // never created
		}
		// A create may have succeeded without its ID being recorded.
		customerID := obj.Status.CustomerID
		if customerID == "" {
			if err := s.resolve(ctx); err != nil {
				logger.Info("Cannot resolve the customer to look for a subscription created before a crash; releasing", "error", err.Error())
				return nil
			}
			customerID = s.customerID
		}
		found, err := r.Stripe.FindSubscriptionByOwner(ctx, s.owner, customerID)
		if err != nil {
			return fmt.Errorf("looking up a subscription created before a crash: %w", err)
		}
		if found == nil || !s.guard.bindFound(s.owner, found.ID, found.Metadata) {
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
	s.guard.observed(id, sub.Metadata)
	if subscriptionEnded(sub.Status) {
		logger.Info("Subscription already ended in Stripe", "subscriptionID", id, "status", sub.Status)
		return nil
	}
	if sc := obj.Status.ScheduledPriceChange; sc != nil && sub.ScheduleID == sc.ScheduleID {
		// A price change this operator scheduled for the period end is
		// not made for a subscription that is going away.
		if _, err := s.writes.ReleaseSubscriptionSchedule(ctx, s.owner, sc.ScheduleID); err != nil && !stripe.IsNotFound(err) {
			return fmt.Errorf("releasing subscription schedule %s before deletion: %w", sc.ScheduleID, err)
		}
	}
	switch policy {
	case billingv1alpha1.SubscriptionDeletionPolicyCancelAtPeriodEnd:
		if !sub.CancelAtPeriodEnd {
			yes := true
			if _, err := s.writes.UpdateSubscription(ctx, s.owner, id, stripe.SubscriptionUpdateParams{CancelAtPeriodEnd: &yes}); err != nil {
				if stripe.IsNotFound(err) {
					return nil
				}
				return fmt.Errorf("setting cancel_at_period_end on subscription %s: %w", id, err)
			}
		}
		r.event(obj, false, "Canceled", fmt.Sprintf("Stripe subscription %s cancels at the end of the current period", id))
	default:
		if _, err := s.writes.CancelSubscription(ctx, s.owner, id, stripe.SubscriptionCancelParams{InvoiceNow: true, Prorate: true}); err != nil {
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
		if cid, ok := identity.Read(cus.Metadata, s.owner.Instance, "StripeCustomer"); ok {
			tenant = cid.Resource() // a broken identity ("/name") is no namespace's
		}
		ns, _ = r.customerTenants.LoadOrStore(id, tenant)
	}
	if owner := ns.(string); owner != "" && !strings.HasPrefix(owner, s.obj.Namespace+"/") {
		return newSpecError(ReasonOwnedElsewhere, "Stripe customer %s belongs to %s, another namespace; a subscription here cannot bill it.", id, owner)
	}
	return nil
}
