package controllers

import (
	"context"
	"fmt"
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
		st.CustomerID = spec.CustomerID // adoption; metadata is written by phaseUpdate
	}
	if st.CustomerID == "" {
		if s.observeMode() {
			return newSpecError(billingv1alpha1.ReasonInvalidSpec, "managementPolicy Observe needs spec.customerID: there is no Stripe customer to observe.")
		}
		markReconciling(s.obj, billingv1alpha1.ReasonCreating, "Creating the Stripe customer.")
		params := customerCreateParams(spec)
		id, err := createExternal(ctx, r.Client, s.obj, externalCreate{
			find: func(ctx context.Context) (string, error) {
				c, err := r.Stripe.FindCustomerByOwner(ctx, s.owner, s.obj.CreationTimestamp.Add(-time.Hour))
				if err != nil || c == nil {
					return "", err
				}
				return c.ID, nil
			},
			create: func(ctx context.Context) (string, error) {
				c, err := r.Stripe.CreateCustomer(ctx, s.owner, params)
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
		emit(r.Recorder, s.obj, false, "Created", fmt.Sprintf("Created Stripe customer %s.", id))
	}
	if err := clearCreatePending(ctx, r.Client, s.obj); err != nil {
		return err
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
	p := stripe.CustomerParams{Metadata: map[string]string(spec.Metadata)}
	if spec.Email != "" {
		p.Email = &spec.Email
	}
	if spec.Name != "" {
		p.Name = &spec.Name
	}
	if spec.Description != "" {
		p.Description = &spec.Description
	}
	return p
}

// customerDiff compares Stripe with the spec. Optional fields left empty in
// the spec are not managed (an adopted customer keeps its email); metadata
// is managed as a whole, including the operator's link-back keys.
func customerDiff(obj *billingv1alpha1.StripeCustomer, cus *stripe.Customer) (stripe.CustomerParams, []string) {
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
	set("defaultPaymentMethod", spec.DefaultPaymentMethod, cus.DefaultPaymentMethod, &p.DefaultPaymentMethod)
	if md := metadataDiff(desiredMetadata(obj, spec.Metadata, cus.Metadata), cus.Metadata); md != nil {
		p.Metadata = md
		fields = append(fields, "metadata")
	}
	return p, fields
}

// phaseUpdate writes what differs (Manage) or records it (Observe).
func (r *StripeCustomerReconciler) phaseUpdate(ctx context.Context, s *customerScope) error {
	params, fields := customerDiff(s.obj, s.cus)
	if len(fields) == 0 {
		return nil
	}
	if s.observeMode() {
		s.drift = fields
		return nil
	}
	markReconciling(s.obj, billingv1alpha1.ReasonUpdating, "Updating the Stripe customer.")
	if params.DefaultPaymentMethod != nil {
		if err := r.Stripe.AttachPaymentMethod(ctx, s.owner, *params.DefaultPaymentMethod, s.cus.ID); err != nil {
			return err
		}
	}
	cus, err := r.Stripe.UpdateCustomer(ctx, s.owner, s.cus.ID, params)
	if err != nil {
		return err
	}
	s.cus = cus
	msg := fmt.Sprintf("Updated %s of Stripe customer %s.", strings.Join(fields, ", "), cus.ID)
	if s.obj.Status.ObservedGeneration == s.obj.Generation && s.orig.CustomerID != "" {
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
	deleteInStripe := id != "" && !s.observeMode() && s.obj.Spec.DeletionPolicy != billingv1alpha1.CustomerDeletionPolicyOrphan
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
		if err := r.Stripe.DeleteCustomer(ctx, s.owner, id); err != nil && !stripe.IsNotFound(err) {
			res, err, skip := failPass(ctx, s.obj, "delete", err, r.resync())
			s.skip = skip
			return res, err
		}
		emit(r.Recorder, s.obj, false, "Deleted", fmt.Sprintf("Deleted Stripe customer %s.", id))
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
