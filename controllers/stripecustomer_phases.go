package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ctrl "sigs.k8s.io/controller-runtime"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// inUseRecheck is how often a customer waiting for its subscriptions to go
// looks again (the StripeSubscription watch normally wakes it earlier).
const inUseRecheck = 15 * time.Second

func (r *StripeCustomerReconciler) phaseFinalizer(ctx context.Context, s *customerScope) error {
	return ensureFinalizer(ctx, r.Client, s.obj)
}

// phaseEnsure finds the Stripe customer: the recorded one, an adopted one,
// or a new one created exactly once.
func (r *StripeCustomerReconciler) phaseEnsure(ctx context.Context, s *customerScope) error {
	st, spec := &s.obj.Status, &s.obj.Spec
	if st.CustomerID == "" && spec.CustomerID != "" {
		// Adoption through the spec: only of a customer that carries this
		// resource's identity, or none in a namespace selected for adoption.
		cus, err := r.Stripe.GetCustomer(ctx, spec.CustomerID)
		if stripe.IsNotFound(err) || (err == nil && cus.Deleted) {
			return newSpecError(billingv1alpha1.ReasonNotFound, "Stripe customer %s named by spec.customerID does not exist or was deleted.", spec.CustomerID)
		}
		if err != nil {
			return err
		}
		if err := r.adoption().check(ctx, s.obj, s.owner, "customer", cus.ID, cus.Metadata); err != nil {
			return err
		}
		st.CustomerID, s.cus = cus.ID, cus // metadata is written by phaseUpdate
		emit(r.Recorder, s.obj, false, "Adopted", fmt.Sprintf("Adopted Stripe customer %s.", cus.ID))
	}
	if st.CustomerID == "" {
		if s.observeMode() {
			return newSpecError(billingv1alpha1.ReasonInvalidSpec, "managementPolicy Observe needs spec.customerID: there is no Stripe customer to observe.")
		}
		if spec.TestClock != "" && liveMode(r.Stripe) {
			return newSpecError(billingv1alpha1.ReasonInvalidSpec, "spec.testClock is for Stripe test mode only; the operator runs with a live-mode key.")
		}
		markReconciling(s.obj, billingv1alpha1.ReasonCreating, "Creating the Stripe customer.")
		params := customerCreateParams(spec)
		id, adopted, err := createExternal(ctx, r.Client, s.obj, externalCreate{
			find: func(ctx context.Context) (string, error) {
				c, err := r.Stripe.FindCustomerByOwner(ctx, s.owner, s.obj.CreationTimestamp.Add(-time.Hour))
				if err != nil || c == nil {
					return "", err
				}
				return c.ID, nil
			},
			adopt: func(ctx context.Context) (string, error) {
				found, err := r.Stripe.SearchCustomersByIdentity(ctx, s.owner)
				return oldestOwnedHere(s.owner, found, func(c *stripe.Customer) (string, int64, map[string]string) { return c.ID, c.Created, c.Metadata }), err
			},
			create: func(ctx context.Context, intent string) (string, error) {
				c, err := r.Stripe.CreateCustomer(ctx, s.owner, intent, params)
				if err != nil {
					return "", err
				}
				return c.ID, nil
			},
			record:        func(id string) { s.obj.Status.CustomerID = id },
			persistStatus: func(ctx context.Context) error { return r.persistStatus(ctx, s) },
		})
		if err != nil {
			return err
		}
		if adopted {
			emit(r.Recorder, s.obj, false, "Adopted", fmt.Sprintf("Adopted Stripe customer %s, which carries this resource's identity.", id))
		} else {
			emit(r.Recorder, s.obj, false, "Created", fmt.Sprintf("Created Stripe customer %s.", id))
		}
	}
	if err := clearCreatePending(ctx, r.Client, s.obj); err != nil {
		return err
	}
	if s.cus != nil {
		return nil
	}
	cus, err := r.Stripe.GetCustomer(ctx, st.CustomerID)
	if stripe.IsNotFound(err) || (err == nil && cus.Deleted) {
		return newSpecError(billingv1alpha1.ReasonNotFound, "Stripe customer %s does not exist or was deleted in Stripe; it is not recreated automatically.", st.CustomerID)
	}
	if err != nil {
		return err
	}
	s.cus = cus
	return nil
}

// customerCreateParams are the create call's fields (the default payment
// method is attached and set by phaseUpdate).
func customerCreateParams(spec *billingv1alpha1.StripeCustomerSpec) stripe.CustomerParams {
	p := stripe.CustomerParams{Metadata: spec.Metadata.Map()}
	if spec.Email != "" {
		p.Email = &spec.Email
	}
	if spec.Name != "" {
		p.Name = &spec.Name
	}
	if spec.Description != "" {
		p.Description = &spec.Description
	}
	p.TestClock = spec.TestClock
	return p
}

// customerDiff compares Stripe with the spec. Optional fields left empty in
// the spec are not managed (an adopted customer keeps its email); metadata
// is managed as a whole, including the operator's link-back keys.
func customerDiff(obj *billingv1alpha1.StripeCustomer, owner stripe.Owner, cus *stripe.Customer) (stripe.CustomerParams, []string) {
	spec := &obj.Spec
	var p stripe.CustomerParams
	var fields []string
	set := func(field, want, got string, dst **string) {
		if want != "" && want != got {
			w := want
			*dst = &w
			fields = append(fields, field)
		}
	}
	set("email", spec.Email, cus.Email, &p.Email)
	set("name", spec.Name, cus.Name, &p.Name)
	set("description", spec.Description, cus.Description, &p.Description)
	if attach, _ := paymentMethodWork(obj, cus); attach {
		fields = append(fields, "defaultPaymentMethod")
	}
	if md := metadataDiff(desiredMetadata(obj, owner, spec.Metadata.Map(), cus.Metadata), cus.Metadata); md != nil {
		p.Metadata = md
		fields = append(fields, metadataField("metadata", md, cus.Metadata))
	}
	return p, fields
}

// isTestPaymentMethod reports whether pm is one of Stripe's test
// PaymentMethods (pm_card_visa, ...), which make a new PaymentMethod each
// time they are attached.
func isTestPaymentMethod(pm string) bool { return strings.HasPrefix(pm, "pm_card_") }

// paymentMethodWork decides whether spec.defaultPaymentMethod must be
// attached and made the default, judged against the record of what the
// operator last set (status.defaultPaymentMethod): only a changed spec, or a
// default someone changed in Stripe, attaches again. record is the status
// value to keep when nothing needs doing (nil: none).
func paymentMethodWork(obj *billingv1alpha1.StripeCustomer, cus *stripe.Customer) (attach bool, record *billingv1alpha1.PaymentMethodStatus) {
	want := obj.Spec.DefaultPaymentMethod
	if want == "" {
		return false, nil
	}
	rec := obj.Status.DefaultPaymentMethod
	switch {
	case rec != nil && rec.Source == want && rec.ID != "" && cus.DefaultPaymentMethod == rec.ID:
		return false, rec
	case !isTestPaymentMethod(want) && cus.DefaultPaymentMethod == want:
		// Already the default (adopted customer, or recorded before).
		return false, &billingv1alpha1.PaymentMethodStatus{ID: want, Source: want}
	}
	return true, nil
}

// phaseUpdate writes what differs (Manage) or records it (Observe).
func (r *StripeCustomerReconciler) phaseUpdate(ctx context.Context, s *customerScope) error {
	params, fields := customerDiff(s.obj, s.owner, s.cus)
	attach, record := paymentMethodWork(s.obj, s.cus)
	if !attach {
		s.obj.Status.DefaultPaymentMethod = record
	}
	if len(fields) == 0 {
		return nil
	}
	if s.observeMode() {
		s.drift = fields
		return nil
	}
	markReconciling(s.obj, billingv1alpha1.ReasonUpdating, "Updating the Stripe customer.")
	want := s.obj.Spec.DefaultPaymentMethod
	var attached string
	if attach {
		id, err := r.Stripe.AttachPaymentMethod(ctx, s.owner, want, s.cus.ID)
		if err != nil {
			if stripe.ClassOf(err) == stripe.ClassTerminal || stripe.IsNotFound(err) {
				return newSpecError(billingv1alpha1.ReasonInvalidSpec, "Stripe refused to attach spec.defaultPaymentMethod %s to customer %s: %s", want, s.cus.ID, stripeMessage(err))
			}
			return err
		}
		attached = id
		params.DefaultPaymentMethod = &attached
	}
	cus, err := r.Stripe.UpdateCustomer(ctx, s.owner, s.cus.ID, params)
	if err != nil {
		return err
	}
	s.cus = cus
	if attach {
		// Recorded only as Stripe answered this very update.
		if cus.DefaultPaymentMethod != attached {
			return fmt.Errorf("stripe customer %s did not take PaymentMethod %s as its default", cus.ID, attached)
		}
		s.obj.Status.DefaultPaymentMethod = &billingv1alpha1.PaymentMethodStatus{ID: attached, Source: want}
	}
	msg := fmt.Sprintf("Updated %s of Stripe customer %s.", strings.Join(fields, ", "), cus.ID)
	if s.obj.Status.ObservedGeneration == s.obj.Generation && s.orig.CustomerID != "" && !onlyBackfilled(fields) {
		// The spec did not change since the last successful pass: Stripe
		// was edited behind the operator's back.
		emit(r.Recorder, s.obj, true, "DriftCorrected", "Stripe differed from the spec and was corrected: "+strings.Join(fields, ", ")+".")
	} else {
		emit(r.Recorder, s.obj, false, "Updated", msg)
	}
	log.FromContext(ctx).Info("Updated Stripe customer", "fields", fields)
	return nil
}

func (r *StripeCustomerReconciler) phaseReport(_ context.Context, s *customerScope) error {
	markSynced(s.obj)
	if len(s.drift) > 0 {
		markNotReady(s.obj, billingv1alpha1.ReasonDrifted,
			fmt.Sprintf("Stripe customer %s differs from the spec in: %s (Observe mode reports, never writes).", s.cus.ID, strings.Join(s.drift, ", ")))
		return nil
	}
	markReady(s.obj, fmt.Sprintf("Stripe customer %s matches the spec.", s.cus.ID))
	return nil
}

// reconcileDelete applies the deletion policy. A customer still referenced
// by a StripeSubscription is not deleted in Stripe until the subscription is
// gone.
func (r *StripeCustomerReconciler) reconcileDelete(ctx context.Context, s *customerScope) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(s.obj, billingv1alpha1.Finalizer) {
		s.skip = true
		return ctrl.Result{}, nil
	}
	id := s.obj.Status.CustomerID
	deleteInStripe := id != "" && !s.observeMode() && s.obj.Spec.DeletionPolicy == billingv1alpha1.CustomerDeletionPolicyDelete
	if deleteInStripe {
		users, err := r.subscriptionsUsing(ctx, s.obj)
		if err != nil {
			return ctrl.Result{}, err
		}
		if len(users) > 0 {
			markReconciling(s.obj, billingv1alpha1.ReasonInUse, fmt.Sprintf(
				"Waiting for StripeSubscription %s to be deleted before deleting Stripe customer %s.", strings.Join(users, ", "), id))
			return ctrl.Result{RequeueAfter: inUseRecheck}, nil
		}
		// Deleting a Stripe customer cancels all its subscriptions at once,
		// including ones no resource manages: refused while any is live.
		live, err := r.liveSubscriptions(ctx, id)
		if err != nil {
			res, err, skip := failPass(ctx, s.obj, "delete", err, r.resync())
			s.skip = skip
			return res, err
		}
		if len(live) > 0 {
			markStalled(s.obj, billingv1alpha1.ReasonInUse, fmt.Sprintf(
				"deletionPolicy Delete would cancel the Stripe subscriptions of customer %s that have not ended: %s. Cancel them first, or set deletionPolicy: Orphan.", id, strings.Join(live, ", ")))
			return ctrl.Result{RequeueAfter: r.resync()}, nil
		}
		if err := r.Stripe.DeleteCustomer(ctx, s.owner, id); err != nil && !stripe.IsNotFound(err) {
			res, err, skip := failPass(ctx, s.obj, "delete", err, r.resync())
			s.skip = skip
			return res, err
		}
		emit(r.Recorder, s.obj, false, "Deleted", fmt.Sprintf("Deleted Stripe customer %s.", id))
	} else if !s.observeMode() && s.obj.Spec.DeletionPolicy == billingv1alpha1.CustomerDeletionPolicyOrphan {
		if err := r.markOrphaned(ctx, s); err != nil {
			res, err, skip := failPass(ctx, s.obj, "delete", err, r.resync())
			s.skip = skip
			return res, err
		}
	}
	s.skip = true
	return ctrl.Result{}, client.IgnoreNotFound(releaseFinalizer(ctx, r.Client, s.obj))
}

// subscriptionsUsing lists the StripeSubscriptions in obj's namespace that
// reference it.
func (r *StripeCustomerReconciler) subscriptionsUsing(ctx context.Context, obj *billingv1alpha1.StripeCustomer) ([]string, error) {
	var list billingv1alpha1.StripeSubscriptionList
	if err := r.List(ctx, &list, client.InNamespace(obj.Namespace)); err != nil {
		return nil, fmt.Errorf("listing StripeSubscriptions: %w", err)
	}
	var names []string
	for i := range list.Items {
		if ref := list.Items[i].Spec.CustomerRef; ref != nil && ref.Name == obj.Name {
			names = append(names, list.Items[i].Name)
		}
	}
	return names, nil
}

// liveMode reports whether the Stripe client runs with a live-mode key.
func liveMode(api stripe.API) bool {
	m, ok := api.(interface{ Mode() string })
	return ok && m.Mode() == "live"
}

// stripeMessage is Stripe's message of err without the operation prefix.
func stripeMessage(err error) string {
	var se *stripe.Error
	if errors.As(err, &se) && se.Message != "" {
		return se.Message
	}
	return err.Error()
}

// liveSubscriptions lists the IDs of a Stripe customer's subscriptions that
// have not ended, in a stable order.
func (r *StripeCustomerReconciler) liveSubscriptions(ctx context.Context, customerID string) ([]string, error) {
	subs, err := r.Stripe.ListCustomerSubscriptions(ctx, customerID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, sub := range subs {
		if !subscriptionEnded(sub.Status) {
			ids = append(ids, sub.ID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}
