package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// couponExternal is the StripeCoupon kind's external client for one pass:
// the Stripe coupon bound through status.couponID, the coupons of earlier
// terms (status.previousCouponIDs), and the promotion codes.
//
// A Stripe coupon is immutable except for name and metadata
// (https://docs.stripe.com/api/coupons/update). New terms make a new coupon,
// as a new price does for a plan: the old coupon is kept (recorded in
// status.previousCouponIDs) so every discount already made from it runs on
// unchanged, and the promotion codes move to the new coupon.
//
// A promotion code is immutable except for active and metadata
// (https://docs.stripe.com/api/promotion_codes/update), and its code must
// be unique, regardless of case, among the account's active codes
// (https://docs.stripe.com/api/promotion_codes/create#create_promotion_code-code).
// So a code that moves to a new coupon, or whose restrictions, expiry or
// limit change, is deactivated first and then made again with the same
// code: between the two calls the code is briefly not redeemable (a crash
// there leaves it inactive until the next pass makes it), which is
// preferred to a code that cannot be made at all.
type couponExternal struct {
	r *StripeCouponReconciler
	*pass[*billingv1alpha1.StripeCoupon]
	coupon *stripe.Coupon
	// products is the resolved appliesTo (plans' products and product
	// IDs), sorted; nil for every product.
	products []string
	// What Observe found to differ.
	params stripe.CouponUpdateParams
	fields []string
	// gone: the recorded coupon no longer exists in Stripe.
	gone  bool
	codes codePlan
	// codesNow are the current coupon's promotion codes as last read or
	// written, for status.
	codesNow []*stripe.PromotionCode
}

// couponTerms are a coupon's immutable terms.
type couponTerms struct {
	percent, currency, duration       string
	amountOff, months, maxRedemptions int64
	redeemBy                          int64
	currencyOptions                   map[string]int64
	products                          []string
}

func specCouponTerms(spec *billingv1alpha1.StripeCouponSpec, products []string) couponTerms {
	t := couponTerms{percent: normalizePercent(spec.PercentOff), currency: spec.Currency, duration: string(spec.Duration), products: products}
	if spec.AmountOff != nil {
		t.amountOff = *spec.AmountOff
	}
	if spec.DurationInMonths != nil {
		t.months = *spec.DurationInMonths
	}
	if spec.MaxRedemptions != nil {
		t.maxRedemptions = *spec.MaxRedemptions
	}
	if spec.RedeemBy != nil {
		t.redeemBy = spec.RedeemBy.Unix()
	}
	for cur, o := range spec.CurrencyOptions {
		if t.currencyOptions == nil {
			t.currencyOptions = map[string]int64{}
		}
		t.currencyOptions[cur] = o.AmountOff
	}
	return t
}

func stripeCouponTerms(c *stripe.Coupon) couponTerms {
	products := append([]string(nil), c.AppliesToProducts...)
	sort.Strings(products)
	if len(products) == 0 {
		products = nil
	}
	opts := map[string]int64{}
	for cur, amt := range c.CurrencyOptions {
		if cur != c.Currency { // Stripe lists the coupon's own currency too
			opts[cur] = amt
		}
	}
	if len(opts) == 0 {
		opts = nil
	}
	return couponTerms{percent: normalizePercent(c.PercentOff), currency: c.Currency, duration: c.Duration, amountOff: c.AmountOff,
		months: c.DurationInMonths, maxRedemptions: c.MaxRedemptions, redeemBy: c.RedeemBy, currencyOptions: opts, products: products}
}

// differences names the terms in which have differs from want.
func (want couponTerms) differences(have couponTerms) []string {
	var out []string
	if want.percent != have.percent {
		out = append(out, "percentOff")
	}
	if want.amountOff != have.amountOff || want.currency != have.currency {
		out = append(out, "amountOff")
	}
	if !maps.Equal(want.currencyOptions, have.currencyOptions) {
		out = append(out, "currencyOptions")
	}
	if want.duration != have.duration || want.months != have.months {
		out = append(out, "duration")
	}
	if want.maxRedemptions != have.maxRedemptions {
		out = append(out, "maxRedemptions")
	}
	if want.redeemBy != have.redeemBy {
		out = append(out, "redeemBy")
	}
	if !slices.Equal(want.products, have.products) {
		out = append(out, "appliesTo")
	}
	return out
}

// normalizePercent writes a decimal percentage without trailing zeros
// ("25.50" is "25.5", "100.00" is "100").
func normalizePercent(p string) string {
	if strings.Contains(p, ".") {
		p = strings.TrimRight(strings.TrimRight(p, "0"), ".")
	}
	return p
}

// resolveProducts resolves appliesTo into product IDs: a plan without its
// product yet waits; a missing plan stalls.
func (x *couponExternal) resolveProducts(ctx context.Context) error {
	at := x.obj.Spec.AppliesTo
	if at == nil {
		x.products = nil
		return nil
	}
	set := map[string]bool{}
	for _, id := range at.ProductIDs {
		set[id] = true
	}
	for _, ref := range at.PlanRefs {
		var p billingv1alpha1.StripePlan
		if err := x.r.Get(ctx, types.NamespacedName{Namespace: x.obj.Namespace, Name: ref.Name}, &p); err != nil {
			if apierrors.IsNotFound(err) {
				return newSpecError(billingv1alpha1.ReasonReferenceNotFound, "StripePlan %q named by spec.appliesTo.planRefs does not exist.", ref.Name)
			}
			return fmt.Errorf("reading StripePlan %s: %w", ref.Name, err)
		}
		if p.Status.ProductID == "" {
			return newWaitError(billingv1alpha1.ReasonWaitingForPlan, waitRecheck, "Waiting for StripePlan %q (spec.appliesTo.planRefs) to get its Stripe product.", ref.Name)
		}
		set[p.Status.ProductID] = true
	}
	x.products = slices.Sorted(maps.Keys(set))
	return nil
}

// Observe reads the coupon and its promotion codes and compares them with
// the spec.
func (x *couponExternal) Observe(ctx context.Context) (observation, error) {
	if err := x.resolveProducts(ctx); err != nil {
		return observation{}, err
	}
	st := &x.obj.Status
	if st.CouponID == "" {
		return observation{}, nil
	}
	if x.coupon == nil || x.coupon.ID != st.CouponID {
		c, err := x.r.Stripe.GetCoupon(ctx, st.CouponID)
		switch {
		case stripe.IsNotFound(err) && x.observeMode():
			return observation{}, newSpecError(billingv1alpha1.ReasonNotFound, "Stripe coupon %s does not exist (it was deleted in Stripe).", st.CouponID)
		case stripe.IsNotFound(err):
			// Deleted in Stripe: the core makes a new coupon
			// (Replacement) and this pass observes it.
			x.gone = true
			x.fields = []string{fmt.Sprintf("coupon %s no longer exists in Stripe", st.CouponID)}
			return observation{bound: true, diff: x.fields, replace: true}, nil
		case err != nil:
			return observation{}, err
		}
		x.coupon = c
	}
	x.guard.observed(x.coupon.ID, x.coupon.Metadata)
	x.fields, x.params = nil, stripe.CouponUpdateParams{}
	if d := specCouponTerms(&x.obj.Spec, x.products).differences(stripeCouponTerms(x.coupon)); len(d) > 0 {
		// Terms Stripe never changes on a coupon: in Manage mode the core
		// replaces it (Replacement); Observe mode reports.
		x.fields = append(x.fields, "coupon terms ("+strings.Join(d, ", ")+"), which Stripe cannot change on a coupon")
		return observation{bound: true, diff: x.fields, replace: !x.observeMode()}, nil
	}
	if x.coupon.Name != x.obj.Spec.Name && x.obj.Spec.Name != "" {
		name := x.obj.Spec.Name
		x.params.Name, x.fields = &name, append(x.fields, "name")
	}
	if md := metadataDiff(desiredMetadata(x.obj, x.owner, x.obj.Spec.Metadata.Map(), x.coupon.Metadata), x.coupon.Metadata); md != nil {
		x.params.Metadata, x.fields = md, append(x.fields, metadataField("metadata", md, x.coupon.Metadata))
	}
	plan, err := x.planCodes(ctx, x.coupon.ID)
	if err != nil {
		return observation{}, err
	}
	x.codes = plan
	x.fields = append(x.fields, plan.texts...)
	return observation{bound: true, diff: x.fields, bookkeeping: onlyBackfilled(x.fields)}, nil
}

// codePlan is what makes the promotion codes match the spec.
type codePlan struct {
	deactivate []*stripe.PromotionCode
	activate   []*stripe.PromotionCode
	create     []billingv1alpha1.PromotionCodeSpec
	metadata   map[*stripe.PromotionCode]map[string]string
	texts      []string
	// current are the coupon's codes as listed.
	current []*stripe.PromotionCode
}

func (p *codePlan) empty() bool {
	return len(p.deactivate)+len(p.activate)+len(p.create)+len(p.metadata) == 0
}

// planCodes compares the promotion codes of coupon couponID, and the
// active codes of the earlier coupons, with the spec.
func (x *couponExternal) planCodes(ctx context.Context, couponID string) (codePlan, error) {
	plan := codePlan{metadata: map[*stripe.PromotionCode]map[string]string{}}
	current, err := x.r.Stripe.ListPromotionCodes(ctx, couponID, "", false)
	if err != nil {
		return plan, err
	}
	plan.current = current
	for _, old := range x.obj.Status.PreviousCouponIDs {
		codes, err := x.r.Stripe.ListPromotionCodes(ctx, old, "", true)
		if err != nil && !stripe.IsNotFound(err) {
			return plan, err
		}
		for _, pc := range codes {
			plan.deactivate = append(plan.deactivate, pc)
			plan.texts = append(plan.texts, fmt.Sprintf("promotion code %s is still active on earlier coupon %s", pc.Code, old))
		}
	}
	declared := map[string]bool{}
	for _, want := range x.obj.Spec.PromotionCodes {
		declared[strings.ToLower(want.Code)] = true
		active := want.Active == nil || *want.Active
		var have *stripe.PromotionCode
		for _, pc := range current {
			if strings.EqualFold(pc.Code, want.Code) && (have == nil || pc.Active && !have.Active || pc.Active == have.Active && pc.Created > have.Created) {
				have = pc
			}
		}
		switch {
		case have == nil:
			plan.create = append(plan.create, want)
			plan.texts = append(plan.texts, fmt.Sprintf("promotion code %s is declared but not in Stripe", want.Code))
			continue
		case codeTermsDiffer(have, want) != "":
			if have.Active {
				plan.deactivate = append(plan.deactivate, have)
			}
			plan.create = append(plan.create, want)
			plan.texts = append(plan.texts, fmt.Sprintf("promotion code %s has other %s in Stripe, which Stripe cannot change on a code", want.Code, codeTermsDiffer(have, want)))
			continue
		case have.Active && !active:
			plan.deactivate = append(plan.deactivate, have)
			plan.texts = append(plan.texts, fmt.Sprintf("promotion code %s is active in Stripe, inactive declared", want.Code))
		case !have.Active && active:
			plan.activate = append(plan.activate, have)
			plan.texts = append(plan.texts, fmt.Sprintf("promotion code %s is inactive in Stripe, active declared", want.Code))
		}
		if md := metadataDiff(desiredMetadata(x.obj, x.owner, x.obj.Spec.Metadata.Map(), have.Metadata), have.Metadata); md != nil {
			plan.metadata[have] = md
			plan.texts = append(plan.texts, metadataField("promotion code "+want.Code+" metadata", md, have.Metadata))
		}
	}
	for _, pc := range current {
		if pc.Active && !declared[strings.ToLower(pc.Code)] {
			plan.deactivate = append(plan.deactivate, pc)
			plan.texts = append(plan.texts, fmt.Sprintf("promotion code %s is active in Stripe but not declared", pc.Code))
		}
	}
	return plan, nil
}

// codeTermsDiffer names the immutable terms in which a Stripe promotion
// code differs from the spec ("" when none).
func codeTermsDiffer(pc *stripe.PromotionCode, want billingv1alpha1.PromotionCodeSpec) string {
	var out []string
	var exp, maxR, minA int64
	var first bool
	var minC string
	if want.ExpiresAt != nil {
		exp = want.ExpiresAt.Unix()
	}
	if want.MaxRedemptions != nil {
		maxR = *want.MaxRedemptions
	}
	if r := want.Restrictions; r != nil {
		first, minC = r.FirstTimeTransaction, r.MinimumAmountCurrency
		if r.MinimumAmount != nil {
			minA = *r.MinimumAmount
		}
	}
	if pc.ExpiresAt != exp {
		out = append(out, "expiresAt")
	}
	if pc.MaxRedemptions != maxR {
		out = append(out, "maxRedemptions")
	}
	if pc.FirstTimeTransaction != first || pc.MinimumAmount != minA || (minA != 0 && pc.MinimumAmountCurrency != minC) {
		out = append(out, "restrictions")
	}
	if pc.Code != want.Code {
		out = append(out, "code case")
	}
	return strings.Join(out, ", ")
}

// createParams are the spec's coupon.
func (x *couponExternal) createParams() stripe.CouponCreateParams {
	spec := &x.obj.Spec
	t := specCouponTerms(spec, x.products)
	return stripe.CouponCreateParams{Name: spec.Name, PercentOff: t.percent, AmountOff: t.amountOff, Currency: t.currency,
		CurrencyOptions: t.currencyOptions, Duration: t.duration, DurationInMonths: t.months, MaxRedemptions: t.maxRedemptions,
		RedeemBy: t.redeemBy, AppliesToProducts: t.products, Metadata: spec.Metadata.Map()}
}

// Creation adopts spec.couponID, or creates the coupon once.
func (x *couponExternal) Creation() creation {
	return creation{
		what: whatCoupon, specID: x.obj.Spec.CouponID, specField: "spec.couponID",
		read: func(ctx context.Context, id string) (map[string]string, error) {
			c, err := x.r.Stripe.GetCoupon(ctx, id)
			if stripe.IsNotFound(err) {
				return nil, newSpecError(billingv1alpha1.ReasonNotFound, "Stripe coupon %s named by spec.couponID does not exist.", id)
			}
			if err != nil {
				return nil, err
			}
			x.coupon = c
			return c.Metadata, nil
		},
		externalCreate: externalCreate{
			find: func(ctx context.Context) (string, error) {
				found, err := x.r.Stripe.ListCoupons(ctx, x.obj.CreationTimestamp.Add(-time.Hour))
				if err != nil {
					return "", err
				}
				for _, c := range found {
					if c.Metadata[billingv1alpha1.StripeMetadataUID] == x.owner.UID {
						x.coupon = c
						return c.ID, nil
					}
				}
				return "", nil
			},
			adopt: func(ctx context.Context) (string, error) {
				// Coupons have no Search API: a full (strongly consistent)
				// list; an account holds few coupons.
				found, err := x.r.Stripe.ListCoupons(ctx, time.Time{})
				return oldestOwnedHere(x.owner, found, func(c *stripe.Coupon) (string, int64, map[string]string) { return c.ID, c.Created, c.Metadata }), err
			},
			create: func(ctx context.Context, intent string) (string, error) {
				c, err := x.writes.CreateCoupon(ctx, x.owner, intent, x.createParams())
				if err != nil {
					return "", err
				}
				x.coupon = c
				return c.ID, nil
			},
			record: func(id string) { x.obj.Status.CouponID = id },
		},
	}
}

// Update writes the coupon's name and metadata and makes the promotion
// codes match (after a replacement, they move to the new coupon).
func (x *couponExternal) Update(ctx context.Context) error {
	if x.params.Name != nil || x.params.Metadata != nil {
		c, err := x.writes.UpdateCoupon(ctx, x.owner, x.coupon.ID, x.params)
		if err != nil {
			return err
		}
		x.coupon = c
	}
	return x.applyCodes(ctx, x.codes)
}

// Replacement makes the coupon of the spec's terms (one an earlier pass
// made and did not record is found by a strongly consistent list first)
// and records the old one in previousCouponIDs: it is kept, so every
// discount made from it runs on. The promotion codes move in the Update
// that follows (deactivated on the old coupon first, then made again).
func (x *couponExternal) Replacement() replacement {
	st := &x.obj.Status
	return replacement{
		what: whatCoupon, old: st.CouponID, note: "new terms",
		find: func(ctx context.Context) (string, error) {
			since := x.obj.CreationTimestamp.Add(-time.Hour)
			if x.coupon != nil {
				since = time.Unix(x.coupon.Created, 0)
			}
			found, err := x.r.Stripe.ListCoupons(ctx, since)
			if err != nil {
				return "", err
			}
			want := specCouponTerms(&x.obj.Spec, x.products)
			for _, c := range found {
				if own, _ := ownershipOf(x.owner, c.Metadata); own == ownedHere && c.ID != st.CouponID && len(want.differences(stripeCouponTerms(c))) == 0 {
					x.guard.bindFound(x.owner, c.ID, c.Metadata)
					x.coupon = c
					return c.ID, nil
				}
			}
			return "", nil
		},
		create: func(ctx context.Context, _ string) (string, error) {
			c, err := x.writes.CreateCoupon(ctx, x.owner, "", x.createParams())
			if err != nil {
				return "", err
			}
			x.coupon = c
			return c.ID, nil
		},
		record: func(id string) {
			if old := st.CouponID; old != "" && old != id && !x.gone && !slices.Contains(st.PreviousCouponIDs, old) {
				st.PreviousCouponIDs = append(st.PreviousCouponIDs, old)
			}
			st.CouponID = id
		},
		retire: func(_ context.Context, old, id string) error {
			if !x.gone {
				x.event(false, "CouponRolledOver", fmt.Sprintf("Created coupon %s for the new terms; coupon %s is kept for the subscriptions already using it, and the promotion codes move to %s.", id, old, id))
			}
			return nil
		},
	}
}

// applyCodes deactivates first (a code string is free again only once no
// active code holds it), then activates, updates metadata and creates.
func (x *couponExternal) applyCodes(ctx context.Context, plan codePlan) error {
	if plan.empty() {
		x.codesNow = plan.current
		return nil
	}
	f, t := false, true
	for _, pc := range plan.deactivate {
		if _, err := x.writes.UpdatePromotionCode(ctx, x.owner, pc, stripe.PromotionCodeUpdateParams{Active: &f}); err != nil {
			return fmt.Errorf("deactivating promotion code %s (%s): %w", pc.Code, pc.ID, err)
		}
	}
	for _, pc := range plan.activate {
		if _, err := x.writes.UpdatePromotionCode(ctx, x.owner, pc, stripe.PromotionCodeUpdateParams{Active: &t}); err != nil {
			return fmt.Errorf("activating promotion code %s (%s): %w", pc.Code, pc.ID, err)
		}
	}
	for pc, md := range plan.metadata {
		if _, err := x.writes.UpdatePromotionCode(ctx, x.owner, pc, stripe.PromotionCodeUpdateParams{Metadata: md}); err != nil {
			return fmt.Errorf("updating promotion code %s (%s): %w", pc.Code, pc.ID, err)
		}
	}
	for _, want := range plan.create {
		p := stripe.PromotionCodeCreateParams{CouponID: x.coupon.ID, Code: want.Code, Active: want.Active == nil || *want.Active,
			Metadata: x.obj.Spec.Metadata.Map()}
		if want.ExpiresAt != nil {
			p.ExpiresAt = want.ExpiresAt.Unix()
		}
		if want.MaxRedemptions != nil {
			p.MaxRedemptions = *want.MaxRedemptions
		}
		if r := want.Restrictions; r != nil {
			p.FirstTimeTransaction, p.MinimumAmountCurrency = r.FirstTimeTransaction, r.MinimumAmountCurrency
			if r.MinimumAmount != nil {
				p.MinimumAmount = *r.MinimumAmount
			}
		}
		pc, err := x.writes.CreatePromotionCode(ctx, x.owner, p)
		if err != nil {
			return fmt.Errorf("creating promotion code %s: %w", want.Code, err)
		}
		x.event(false, "Created", fmt.Sprintf("Created Stripe promotion code %s (%s) on coupon %s.", pc.Code, pc.ID, x.coupon.ID))
	}
	codes, err := x.r.Stripe.ListPromotionCodes(ctx, x.coupon.ID, "", false)
	if err != nil {
		return err
	}
	x.codesNow = codes
	return nil
}

// Report records the coupon and its codes and sets Synced and Ready.
func (x *couponExternal) Report(_ context.Context, drift []string, _ bool) {
	st := &x.obj.Status
	if x.coupon != nil {
		st.TimesRedeemed, st.Valid = x.coupon.TimesRedeemed, x.coupon.Valid
	}
	codes := x.codesNow
	if codes == nil {
		codes = x.codes.current
	}
	st.PromotionCodes = nil
	for _, pc := range codes {
		st.PromotionCodes = append(st.PromotionCodes, billingv1alpha1.ObservedPromotionCode{Code: pc.Code, ID: pc.ID, CouponID: pc.CouponID,
			Active: pc.Active, TimesRedeemed: pc.TimesRedeemed})
	}
	markSynced(x.obj)
	if len(drift) > 0 {
		markNotReady(x.obj, billingv1alpha1.ReasonDrifted, fmt.Sprintf("Stripe coupon %s differs from the spec in: %s (Observe mode reports, never writes).",
			st.CouponID, strings.Join(drift, ", ")))
		return
	}
	active := 0
	for _, pc := range st.PromotionCodes {
		if pc.Active {
			active++
		}
	}
	markReady(x.obj, fmt.Sprintf("Stripe coupon %s matches the spec, with %d active promotion codes.", st.CouponID, active))
}

// Delete applies the deletion policy: Delete deactivates the promotion
// codes and deletes the coupons (discounts already applied run on, as
// Stripe documents); Orphan leaves them.
func (x *couponExternal) Delete(ctx context.Context) (bool, time.Duration, error) {
	if x.obj.Spec.DeletionPolicy == billingv1alpha1.CouponDeletionPolicyOrphan {
		return true, 0, nil
	}
	st := &x.obj.Status
	ids := append(append([]string(nil), st.PreviousCouponIDs...), st.CouponID)
	f := false
	for _, id := range ids {
		if id == "" {
			continue
		}
		codes, err := x.r.Stripe.ListPromotionCodes(ctx, id, "", true)
		if err != nil && !stripe.IsNotFound(err) {
			return false, 0, err
		}
		for _, pc := range codes {
			if _, err := x.writes.UpdatePromotionCode(ctx, x.owner, pc, stripe.PromotionCodeUpdateParams{Active: &f}); err != nil && !stripe.IsNotFound(err) {
				return false, 0, err
			}
		}
		if err := x.writes.DeleteCoupon(ctx, x.owner, id); err != nil && !stripe.IsNotFound(err) {
			return false, 0, err
		}
	}
	x.event(false, "Deleted", "Deactivated the promotion codes and deleted the Stripe coupons; discounts already applied are unaffected.")
	return true, 0, nil
}
