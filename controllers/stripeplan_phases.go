package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

func (r *StripePlanReconciler) phaseFinalizer(ctx context.Context, s *planScope) error {
	return ensureFinalizer(ctx, r.Client, s.obj)
}

// phaseProduct finds the product: recorded, adopted, or created once.
func (r *StripePlanReconciler) phaseProduct(ctx context.Context, s *planScope) error {
	st, spec := &s.obj.Status, &s.obj.Spec
	if st.ProductID == "" && spec.ProductID != "" {
		p, err := r.Stripe.GetProduct(ctx, spec.ProductID)
		if stripe.IsNotFound(err) {
			return newSpecError(billingv1alpha1.ReasonNotFound, "Stripe product %s named by spec.productID does not exist.", spec.ProductID)
		}
		if err != nil {
			return err
		}
		if err := r.adoption().check(ctx, s.obj, s.owner, "product", p.ID, p.Metadata); err != nil {
			return err
		}
		st.ProductID, s.product = p.ID, p
		emit(r.Recorder, s.obj, false, "Adopted", fmt.Sprintf("Adopted Stripe product %s.", p.ID))
	}
	if st.ProductID == "" {
		if s.observeMode() {
			return newSpecError(billingv1alpha1.ReasonInvalidSpec, "managementPolicy Observe needs spec.productID: there is no Stripe product to observe.")
		}
		markReconciling(s.obj, billingv1alpha1.ReasonCreating, "Creating the Stripe product and price.")
		params := stripe.ProductParams{Name: &spec.Product.Name, Metadata: spec.Product.Metadata.Map()}
		if spec.Product.Description != "" {
			params.Description = &spec.Product.Description
		}
		id, adopted, err := createExternal(ctx, r.Client, s.obj, externalCreate{
			find: func(ctx context.Context) (string, error) {
				p, err := r.Stripe.FindProductByOwner(ctx, s.owner, s.obj.CreationTimestamp.Add(-time.Hour))
				if err != nil || p == nil {
					return "", err
				}
				return p.ID, nil
			},
			adopt: func(ctx context.Context) (string, error) {
				found, err := r.Stripe.SearchProductsByIdentity(ctx, s.owner)
				return oldestOwnedHere(s.owner, found, func(p *stripe.Product) (string, int64, map[string]string) { return p.ID, p.Created, p.Metadata }), err
			},
			create: func(ctx context.Context, intent string) (string, error) {
				p, err := r.Stripe.CreateProduct(ctx, s.owner, intent, params)
				if err != nil {
					return "", err
				}
				return p.ID, nil
			},
			record:        func(id string) { s.obj.Status.ProductID = id },
			persistStatus: func(ctx context.Context) error { return r.persistStatus(ctx, s) },
		})
		if err != nil {
			return err
		}
		if adopted {
			emit(r.Recorder, s.obj, false, "Adopted", fmt.Sprintf("Adopted Stripe product %s, which carries this resource's identity.", id))
		} else {
			emit(r.Recorder, s.obj, false, "Created", fmt.Sprintf("Created Stripe product %s.", id))
		}
	}
	if err := clearCreatePending(ctx, r.Client, s.obj); err != nil {
		return err
	}
	if s.product != nil {
		return nil
	}
	p, err := r.Stripe.GetProduct(ctx, st.ProductID)
	if stripe.IsNotFound(err) {
		return newSpecError(billingv1alpha1.ReasonNotFound, "Stripe product %s does not exist.", st.ProductID)
	}
	if err != nil {
		return err
	}
	s.product = p
	return nil
}

// phaseProductUpdate keeps name, description, metadata and active in step.
func (r *StripePlanReconciler) phaseProductUpdate(ctx context.Context, s *planScope) error {
	spec := &s.obj.Spec.Product
	var p stripe.ProductParams
	var fields []string
	if s.product.Name != spec.Name {
		p.Name, fields = &spec.Name, append(fields, "product.name")
	}
	if spec.Description != "" && s.product.Description != spec.Description {
		p.Description, fields = &spec.Description, append(fields, "product.description")
	}
	if !s.product.Active {
		t := true
		p.Active, fields = &t, append(fields, "product.active")
	}
	if md := metadataDiff(desiredMetadata(s.obj, s.owner, spec.Metadata.Map(), s.product.Metadata), s.product.Metadata); md != nil {
		p.Metadata, fields = md, append(fields, metadataField("product.metadata", md, s.product.Metadata))
	}
	if len(fields) == 0 {
		return nil
	}
	if s.observeMode() {
		s.drift = append(s.drift, fields...)
		return nil
	}
	prod, err := r.Stripe.UpdateProduct(ctx, s.owner, s.product.ID, p)
	if err != nil {
		return err
	}
	s.product = prod
	r.announce(s, fields)
	return nil
}

// announce records an update: DriftCorrected when the spec did not change
// since the last successful pass (someone edited Stripe), else Updated.
func (r *StripePlanReconciler) announce(s *planScope, fields []string) {
	if s.obj.Status.ObservedGeneration == s.obj.Generation && !onlyBackfilled(fields) {
		emit(r.Recorder, s.obj, true, "DriftCorrected", "Stripe differed from the spec and was corrected: "+strings.Join(fields, ", ")+".")
		return
	}
	emit(r.Recorder, s.obj, false, "Updated", "Updated "+strings.Join(fields, ", ")+".")
}

// priceMatches reports whether a Stripe price has the spec's immutable
// terms.
func priceMatches(p *stripe.Price, spec *billingv1alpha1.PriceSpec) bool {
	count := spec.IntervalCount
	if count == 0 {
		count = 1
	}
	return p.Currency == spec.Currency && p.UnitAmount == spec.UnitAmount &&
		p.Interval == string(spec.Interval) && p.IntervalCount == count
}

// phasePrice keeps the plan's one active price in step. Prices are
// immutable: new terms make a new price (found first by a strongly
// consistent list, so a crash never makes two), the lookup key moves to it,
// and the old one is archived.
func (r *StripePlanReconciler) phasePrice(ctx context.Context, s *planScope) error {
	spec, st := &s.obj.Spec.Price, &s.obj.Status
	if st.PriceID != "" {
		p, err := r.Stripe.GetPrice(ctx, st.PriceID)
		if err != nil && !stripe.IsNotFound(err) {
			return err
		}
		if err == nil && priceMatches(p, spec) {
			s.price = p
			return r.updatePriceInPlace(ctx, s)
		}
		if err == nil && s.observeMode() {
			s.price = p
			s.drift = append(s.drift, "price (amount, currency or interval)")
			return nil
		}
	}
	if s.observeMode() {
		return r.observePrice(ctx, s)
	}
	old := st.PriceID
	markReconciling(s.obj, billingv1alpha1.ReasonUpdating, "Creating the Stripe price.")
	p, err := r.findOrCreatePrice(ctx, s)
	if err != nil {
		return err
	}
	s.price = p
	st.PriceID = p.ID
	if old != "" && old != p.ID {
		st.PreviousPriceIDs = append(st.PreviousPriceIDs, old)
		f := false
		if _, err := r.Stripe.UpdatePrice(ctx, s.owner, old, stripe.PriceUpdateParams{Active: &f}); err != nil && !stripe.IsNotFound(err) {
			return err
		}
		emit(r.Recorder, s.obj, false, "PriceRolledOver", fmt.Sprintf("Created price %s for the new terms and archived %s.", p.ID, old))
	}
	return r.persistStatus(ctx, s)
}

// findOrCreatePrice reuses an active price of the product that has the
// spec's terms and was created for this resource (a crash after the create
// call), else creates one.
func (r *StripePlanReconciler) findOrCreatePrice(ctx context.Context, s *planScope) (*stripe.Price, error) {
	spec := &s.obj.Spec.Price
	prices, err := r.Stripe.ListPrices(ctx, s.product.ID, true)
	if err != nil {
		return nil, err
	}
	for _, p := range prices {
		own, _ := ownershipOf(s.owner, p.Metadata)
		if priceMatches(p, spec) && (own == ownedHere || p.Metadata[billingv1alpha1.StripeMetadataUID] == s.owner.UID) && p.LookupKey == spec.LookupKey {
			return p, nil
		}
	}
	if s.obj.Spec.ProductID != "" {
		// Adoption: an active price with the spec's terms is the plan's.
		for _, p := range prices {
			if priceMatches(p, spec) && (spec.LookupKey == "" || p.LookupKey == spec.LookupKey) {
				return p, nil
			}
		}
	}
	count := spec.IntervalCount
	if count == 0 {
		count = 1
	}
	p, err := r.Stripe.CreatePrice(ctx, s.owner, stripe.PriceCreateParams{
		ProductID: s.product.ID, Currency: spec.Currency, UnitAmount: spec.UnitAmount,
		Interval: string(spec.Interval), IntervalCount: count, LookupKey: spec.LookupKey,
		TransferLookupKey: spec.LookupKey != "", Metadata: s.obj.Spec.Product.Metadata.Map(),
	})
	if err != nil {
		return nil, err
	}
	emit(r.Recorder, s.obj, false, "Created", fmt.Sprintf("Created Stripe price %s.", p.ID))
	return p, nil
}

// updatePriceInPlace moves the lookup key and re-activates an archived
// price; both are mutable.
func (r *StripePlanReconciler) updatePriceInPlace(ctx context.Context, s *planScope) error {
	spec := &s.obj.Spec.Price
	var p stripe.PriceUpdateParams
	var fields []string
	if s.price.LookupKey != spec.LookupKey {
		lk := spec.LookupKey
		p.LookupKey, p.TransferLookupKey, fields = &lk, lk != "", append(fields, "price.lookupKey")
	}
	if !s.price.Active {
		t := true
		p.Active, fields = &t, append(fields, "price.active")
	}
	if len(fields) == 0 {
		return nil
	}
	if s.observeMode() {
		s.drift = append(s.drift, fields...)
		return nil
	}
	price, err := r.Stripe.UpdatePrice(ctx, s.owner, s.price.ID, p)
	if err != nil {
		return err
	}
	s.price = price
	r.announce(s, fields)
	return nil
}

// observePrice finds, without writing, an active price of the adopted
// product with the spec's terms.
func (r *StripePlanReconciler) observePrice(ctx context.Context, s *planScope) error {
	prices, err := r.Stripe.ListPrices(ctx, s.product.ID, true)
	if err != nil {
		return err
	}
	for _, p := range prices {
		if priceMatches(p, &s.obj.Spec.Price) {
			s.price = p
			s.obj.Status.PriceID = p.ID
			return nil
		}
	}
	s.drift = append(s.drift, "price (no active price with the spec's amount, currency and interval)")
	return nil
}

func (r *StripePlanReconciler) phaseReport(_ context.Context, s *planScope) error {
	markSynced(s.obj)
	if len(s.drift) > 0 {
		markNotReady(s.obj, billingv1alpha1.ReasonDrifted, fmt.Sprintf("Stripe product %s differs from the spec in: %s (Observe mode reports, never writes).",
			s.product.ID, strings.Join(s.drift, ", ")))
		return nil
	}
	markReady(s.obj, fmt.Sprintf("Stripe product %s and price %s match the spec.", s.product.ID, s.price.ID))
	return nil
}

// reconcileDelete applies the deletion policy: Archive deactivates the
// price and the product (Stripe keeps them for existing subscriptions and
// invoices); Orphan leaves them.
func (r *StripePlanReconciler) reconcileDelete(ctx context.Context, s *planScope) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(s.obj, billingv1alpha1.Finalizer) {
		s.skip = true
		return ctrl.Result{}, nil
	}
	if !s.observeMode() && s.obj.Spec.DeletionPolicy != billingv1alpha1.PlanDeletionPolicyOrphan {
		f := false
		for _, id := range []string{s.obj.Status.PriceID} {
			if id == "" {
				continue
			}
			if _, err := r.Stripe.UpdatePrice(ctx, s.owner, id, stripe.PriceUpdateParams{Active: &f}); err != nil && !stripe.IsNotFound(err) {
				res, err, skip := failPass(ctx, s.obj, "delete", err, r.resync())
				s.skip = skip
				return res, err
			}
		}
		if id := s.obj.Status.ProductID; id != "" {
			if _, err := r.Stripe.UpdateProduct(ctx, s.owner, id, stripe.ProductParams{Active: &f}); err != nil && !stripe.IsNotFound(err) {
				res, err, skip := failPass(ctx, s.obj, "delete", err, r.resync())
				s.skip = skip
				return res, err
			}
		}
		emit(r.Recorder, s.obj, false, "Archived", "Archived the Stripe price and product.")
	} else if !s.observeMode() {
		if err := r.markOrphaned(ctx, s); err != nil {
			res, err, skip := failPass(ctx, s.obj, "delete", err, r.resync())
			s.skip = skip
			return res, err
		}
	}
	s.skip = true
	return ctrl.Result{}, client.IgnoreNotFound(releaseFinalizer(ctx, r.Client, s.obj))
}
