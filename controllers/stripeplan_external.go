package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/identity"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// planExternal is the StripePlan kind's external client for one pass: the
// Stripe product bound through status.productID, and its one active
// recurring price (status.priceID).
type planExternal struct {
	r *StripePlanReconciler
	*pass[*billingv1alpha1.StripePlan]
	product *stripe.Product
	price   *stripe.Price
	// oldPrice is the recorded price when its terms are no longer the
	// spec's (a rollover is due); created is the price this pass made or
	// found for the rollover.
	oldPrice *stripe.Price
	created  *stripe.Price
	// What Observe found to differ: the product's update, the price's
	// in-place update, and whether the terms need a new price.
	productParams stripe.ProductParams
	priceParams   stripe.PriceUpdateParams
	productFields []string
	priceFields   []string
	newPrice      bool
}

// Observe reads the product and the price and compares them with the spec.
func (x *planExternal) Observe(ctx context.Context) (observation, error) {
	st := &x.obj.Status
	if st.ProductID == "" {
		return observation{}, nil
	}
	if x.product == nil || x.product.ID != st.ProductID {
		p, err := readListed(ctx, x.pass, productListing, st.ProductID, x.r.Stripe.GetProduct)
		if stripe.IsNotFound(err) {
			return observation{}, newSpecError(billingv1alpha1.ReasonNotFound, "Stripe product %s does not exist.", st.ProductID)
		}
		if err != nil {
			return observation{}, err
		}
		x.product = p
	}
	x.guard.observed(x.product.ID, x.product.Metadata)
	x.diffProduct()
	if err := x.observePrice(ctx); err != nil {
		return observation{}, err
	}
	diff := append(append([]string(nil), x.productFields...), x.priceFields...)
	return observation{bound: true, diff: diff, bookkeeping: onlyBackfilled(diff), replace: x.newPrice}, nil
}

// diffProduct compares name, description, metadata and active.
func (x *planExternal) diffProduct() {
	spec := &x.obj.Spec.Product
	var p stripe.ProductParams
	var fields []string
	if x.product.Name != spec.Name {
		p.Name, fields = &spec.Name, append(fields, "product.name")
	}
	if spec.Description != "" && x.product.Description != spec.Description {
		p.Description, fields = &spec.Description, append(fields, "product.description")
	}
	if !x.product.Active {
		t := true
		p.Active, fields = &t, append(fields, "product.active")
	}
	if md := metadataDiff(desiredMetadata(x.obj, x.owner, spec.Metadata.Map(), x.product.Metadata), x.product.Metadata); md != nil {
		p.Metadata, fields = md, append(fields, metadataField("product.metadata", md, x.product.Metadata))
	}
	x.productParams, x.productFields = p, fields
}

// observePrice reads the recorded price. Prices are immutable: when its
// terms are not the spec's (or there is none), Manage mode needs a new
// price, which the core's replacement makes (Replacement); Observe mode
// looks for an active one with the spec's terms.
func (x *planExternal) observePrice(ctx context.Context) error {
	spec, st := &x.obj.Spec.Price, &x.obj.Status
	x.price, x.oldPrice, x.newPrice, x.priceFields, x.priceParams = nil, nil, false, nil, stripe.PriceUpdateParams{}
	if st.PriceID != "" {
		p, err := x.created, error(nil)
		if p == nil || p.ID != st.PriceID {
			// Read unless this pass made it (a replacement); on a resync,
			// from the list of active prices when allowed.
			p, err = readListed(ctx, x.pass, priceListing, st.PriceID, x.r.Stripe.GetPrice)
		}
		if err != nil && !stripe.IsNotFound(err) {
			return err
		}
		if err == nil {
			x.guard.observed(p.ID, p.Metadata)
		}
		if err == nil && priceMatches(p, spec) {
			x.price = p
			x.diffPriceInPlace()
			return nil
		}
		if err == nil && x.observeMode() {
			x.price = p
			x.priceFields = append(x.priceFields, priceChangeText(priceTermsDiff(p, spec)))
			return nil
		}
		if err == nil {
			x.oldPrice = p
		}
	}
	if x.observeMode() {
		prices, err := x.r.Stripe.ListPrices(ctx, x.product.ID, true)
		if err != nil {
			return err
		}
		for _, p := range prices {
			if priceMatches(p, spec) {
				x.price = p // Report records it
				return nil
			}
		}
		x.priceFields = append(x.priceFields, "price (no active price with the spec's terms)")
		return nil
	}
	x.newPrice = true
	switch {
	case x.oldPrice != nil:
		// Any term that differs is a price change (stripeplan_priceterms.go).
		x.priceFields = append(x.priceFields, priceChangeText(priceTermsDiff(x.oldPrice, spec)))
	case st.PriceID == "":
		x.priceFields = append(x.priceFields, "price (none yet)")
	default:
		x.priceFields = append(x.priceFields, "price (price "+st.PriceID+" no longer exists)")
	}
	return nil
}

// diffPriceInPlace compares the lookup key and active, both mutable.
func (x *planExternal) diffPriceInPlace() {
	spec := &x.obj.Spec.Price
	var p stripe.PriceUpdateParams
	var fields []string
	if x.price.LookupKey != spec.LookupKey {
		lk := spec.LookupKey
		p.LookupKey, p.TransferLookupKey, fields = &lk, lk != "", append(fields, "price.lookupKey")
	}
	if !x.price.Active {
		t := true
		p.Active, fields = &t, append(fields, "price.active")
	}
	x.priceParams, x.priceFields = p, fields
}

// Creation adopts spec.productID, or creates the product once.
func (x *planExternal) Creation() creation {
	spec := &x.obj.Spec
	params := stripe.ProductParams{Name: &spec.Product.Name, Metadata: spec.Product.Metadata.Map()}
	if spec.Product.Description != "" {
		params.Description = &spec.Product.Description
	}
	find, adopt := lookupSteps(x.owner, x.obj.CreationTimestamp.Add(-time.Hour), x.r.Stripe.FindProductByOwner, x.r.Stripe.SearchProductsByIdentity,
		func(p *stripe.Product) (string, int64, map[string]string) { return p.ID, p.Created, p.Metadata })
	return creation{
		what: "product", specID: spec.ProductID, specField: "spec.productID",
		read: func(ctx context.Context, id string) (map[string]string, error) {
			p, err := x.r.Stripe.GetProduct(ctx, id)
			if stripe.IsNotFound(err) {
				return nil, newSpecError(billingv1alpha1.ReasonNotFound, "Stripe product %s named by spec.productID does not exist.", id)
			}
			if err != nil {
				return nil, err
			}
			x.product = p
			return p.Metadata, nil
		},
		externalCreate: externalCreate{
			find:  find,
			adopt: adopt,
			create: func(ctx context.Context, intent string) (string, error) {
				p, err := x.writes.CreateProduct(ctx, x.owner, intent, params)
				if err != nil {
					return "", err
				}
				x.product = p
				return p.ID, nil
			},
			record: func(id string) { x.obj.Status.ProductID = id },
		},
	}
}

// Update writes the product's and the price's in-place differences (new
// terms are a replacement, made by the core before: Replacement).
func (x *planExternal) Update(ctx context.Context) error {
	if len(x.productFields) > 0 {
		prod, err := x.writes.UpdateProduct(ctx, x.owner, x.product.ID, x.productParams)
		if err != nil {
			return err
		}
		x.product = prod
	}
	if x.newPrice || len(x.priceFields) == 0 {
		return nil
	}
	price, err := x.writes.UpdatePrice(ctx, x.owner, x.price.ID, x.priceParams)
	if err != nil {
		return err
	}
	x.price = price
	return nil
}

// Replacement is the price rollover: new terms make a new price (found
// first by a strongly consistent list, so a crash never makes two), the
// lookup key moves to it with the create, it is recorded at once with the
// old one among status.previousPriceIDs, and the old one is archived.
// Subscriptions on the old price follow the plan's priceChangePolicy
// (stripesubscription_pricechange.go).
func (x *planExternal) Replacement() replacement {
	st := &x.obj.Status
	return replacement{
		what: "price", old: st.PriceID, note: "new terms",
		find: func(ctx context.Context) (string, error) {
			p, err := x.findPrice(ctx)
			if err != nil || p == nil {
				return "", err
			}
			x.created = p
			return p.ID, nil
		},
		create: func(ctx context.Context, _ string) (string, error) {
			p, err := x.createPrice(ctx)
			if err != nil {
				return "", err
			}
			x.created = p
			return p.ID, nil
		},
		record: func(id string) {
			if old := st.PriceID; old != "" && old != id {
				st.PreviousPriceIDs = append(st.PreviousPriceIDs, old)
			}
			st.PriceID = id
		},
		retire: x.archiveOldPrice,
	}
}

// archiveOldPrice archives the price a rollover replaced and reports the
// rollover.
func (x *planExternal) archiveOldPrice(ctx context.Context, old, id string) error {
	f := false
	if _, err := x.writes.UpdatePrice(ctx, x.owner, old, stripe.PriceUpdateParams{Active: &f}); err != nil && !stripe.IsNotFound(err) {
		return err
	}
	x.event(false, "PriceRolledOver", fmt.Sprintf("Created price %s for the new terms and archived %s; existing subscriptions follow priceChangePolicy %s.", id, old, priceChangePolicy(&x.obj.Spec)))
	if p := x.created; x.oldPrice != nil && x.oldPrice.ID == old && p != nil && x.oldPrice.Currency != p.Currency {
		// A Stripe customer bills in one currency: no existing
		// subscription can move to this price, whatever the policy.
		msg := fmt.Sprintf("The price's currency changed from %s to %s (price %s to %s). A Stripe customer bills in one currency, so subscriptions on earlier prices stay on them whatever priceChangePolicy says; new subscriptions get %s.",
			x.oldPrice.Currency, p.Currency, old, p.ID, p.ID)
		setCondition(x.obj, billingv1alpha1.ConditionExistingSubscriptionsKept, metav1.ConditionTrue, billingv1alpha1.ReasonCurrencyChanged, msg)
		x.event(true, billingv1alpha1.ReasonCurrencyChanged, msg)
	}
	return nil
}

// priceChangePolicy is the plan's policy, Keep when unset.
func priceChangePolicy(spec *billingv1alpha1.StripePlanSpec) billingv1alpha1.PriceChangePolicy {
	if spec.PriceChangePolicy == "" {
		return billingv1alpha1.PriceChangePolicyKeep
	}
	return spec.PriceChangePolicy
}

// findPrice finds an active price of the product that has the spec's
// terms and was created for this resource (a crash after the create
// call), or, for an adopted product, any active price with the spec's
// terms; nil when none.
func (x *planExternal) findPrice(ctx context.Context) (*stripe.Price, error) {
	spec := &x.obj.Spec.Price
	prices, err := x.r.Stripe.ListPrices(ctx, x.product.ID, true)
	if err != nil {
		return nil, err
	}
	for _, p := range prices {
		own, _ := ownershipOf(x.owner, p.Metadata)
		if priceMatches(p, spec) && (own == ownedHere || identity.SameUID(x.owner, p.Metadata)) && p.LookupKey == spec.LookupKey {
			return p, nil
		}
	}
	if x.obj.Spec.ProductID != "" {
		// Adoption: an active price with the spec's terms is the plan's.
		for _, p := range prices {
			if priceMatches(p, spec) && (spec.LookupKey == "" || p.LookupKey == spec.LookupKey) {
				return p, nil
			}
		}
	}
	return nil, nil
}

// createPrice creates the price of the spec's terms, taking its lookup key.
func (x *planExternal) createPrice(ctx context.Context) (*stripe.Price, error) {
	spec := &x.obj.Spec.Price
	count := spec.IntervalCount
	if count == 0 {
		count = 1
	}
	return x.writes.CreatePrice(ctx, x.owner, stripe.PriceCreateParams{
		ProductID: x.product.ID, Currency: spec.Currency, UnitAmount: spec.UnitAmount,
		Interval: string(spec.Interval), IntervalCount: count, LookupKey: spec.LookupKey,
		TransferLookupKey: spec.LookupKey != "", Metadata: x.obj.Spec.Product.Metadata.Map(),
		PriceTerms: specPriceTerms(spec),
	})
}

// Report records the price Observe mode found and sets Synced and Ready.
func (x *planExternal) Report(_ context.Context, drift []string, _ bool) {
	if x.observeMode() && x.price != nil {
		// Observe mode binds the active price with the spec's terms.
		x.obj.Status.PriceID = x.price.ID
	}
	markSynced(x.obj)
	if len(drift) > 0 {
		markNotReady(x.obj, billingv1alpha1.ReasonDrifted, fmt.Sprintf("Stripe product %s differs from the spec in: %s (Observe mode reports, never writes).",
			x.product.ID, strings.Join(drift, ", ")))
		return
	}
	markReady(x.obj, fmt.Sprintf("Stripe product %s and price %s match the spec.", x.product.ID, x.price.ID))
}

// Delete applies the deletion policy: Archive deactivates the price and
// the product (Stripe keeps them for existing subscriptions and invoices);
// Orphan leaves them, marked as left behind.
func (x *planExternal) Delete(ctx context.Context) (bool, time.Duration, error) {
	if x.obj.Spec.DeletionPolicy == billingv1alpha1.PlanDeletionPolicyOrphan {
		return true, 0, x.markOrphaned(ctx)
	}
	f := false
	if id := x.obj.Status.PriceID; id != "" {
		if _, err := x.writes.UpdatePrice(ctx, x.owner, id, stripe.PriceUpdateParams{Active: &f}); err != nil && !stripe.IsNotFound(err) {
			return false, 0, err
		}
	}
	if id := x.obj.Status.ProductID; id != "" {
		if _, err := x.writes.UpdateProduct(ctx, x.owner, id, stripe.ProductParams{Active: &f}); err != nil && !stripe.IsNotFound(err) {
			return false, 0, err
		}
	}
	x.event(false, "Archived", "Archived the Stripe price and product.")
	return true, 0, nil
}
