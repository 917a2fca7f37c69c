package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Discounts on subscriptions (spec.discount).
//
// Declared means applied: a subscription is created with the declared
// coupon or promotion code, and an update applies it when Stripe holds
// another discount or none. Removed means removed: a discount Stripe holds
// while none is declared is deleted
// (https://docs.stripe.com/api/discounts/subscription_delete). Each is a
// difference like any other: BillingDrift naming the coupon, corrected in
// Manage mode, reported in Observe mode.
//
// A discount whose coupon's duration is over is not drift and is not
// applied again: Stripe removes a repeating discount after
// duration_in_months and a once discount after its invoice
// (https://docs.stripe.com/billing/subscriptions/coupons). status.discount
// keeps the last discount Stripe reported, with ended set.
//
// Tenancy: couponRef names a StripeCoupon of the same namespace; a couponID
// or a promotion code's coupon that carries the identity of a StripeCoupon
// of another namespace is refused (OwnedElsewhere), as a customerID of
// another tenant is. A coupon made outside the operator (no identity) may
// be used: applying it writes only to this resource's subscription.

// ReasonWaitingForCoupon: the referenced StripeCoupon has no coupon yet.
const ReasonWaitingForCoupon = "WaitingForCoupon"

// discountPass is the declared discount resolved for one pass.
type discountPass struct {
	// declared is false when spec.discount is unset.
	declared bool
	// what names the declaration in messages.
	what string
	// couponID is the coupon to apply ("" for a promotion code);
	// acceptable are the coupon IDs that count as the declared discount
	// (a StripeCoupon's current and earlier coupons).
	couponID   string
	acceptable []string
	// code is the declared promotion code, promoID its active Stripe
	// promotion code ("" when none is active or it was not looked up).
	code, promoID string
	looked        bool
}

// resolveDiscount resolves spec.discount. A missing StripeCoupon stalls; one
// without its coupon yet waits.
func (s *subscriptionScope) resolveDiscount(ctx context.Context) error {
	d := s.obj.Spec.Discount
	s.discount = discountPass{}
	if d == nil {
		return nil
	}
	s.discount.declared = true
	switch {
	case d.CouponRef != nil:
		var c billingv1alpha1.StripeCoupon
		if err := s.r.Get(ctx, types.NamespacedName{Namespace: s.obj.Namespace, Name: d.CouponRef.Name}, &c); err != nil {
			if apierrors.IsNotFound(err) {
				return newSpecError(billingv1alpha1.ReasonReferenceNotFound, "StripeCoupon %q named by spec.discount.couponRef does not exist.", d.CouponRef.Name)
			}
			return fmt.Errorf("reading StripeCoupon %s: %w", d.CouponRef.Name, err)
		}
		if c.Status.CouponID == "" {
			return newWaitError(ReasonWaitingForCoupon, waitRecheck, "Waiting for StripeCoupon %q to get its Stripe coupon.", d.CouponRef.Name)
		}
		s.discount.couponID = c.Status.CouponID
		s.discount.acceptable = append([]string{c.Status.CouponID}, c.Status.PreviousCouponIDs...)
		s.discount.what = fmt.Sprintf("coupon %s (StripeCoupon %s)", c.Status.CouponID, c.Name)
	case d.CouponID != "":
		if err := s.couponTenant(ctx, d.CouponID, "spec.discount.couponID"); err != nil {
			return err
		}
		s.discount.couponID, s.discount.acceptable = d.CouponID, []string{d.CouponID}
		s.discount.what = "coupon " + d.CouponID
	case d.PromotionCode != "":
		// Looked up only when it is to be redeemed (lookupPromotionCode):
		// a subscription that holds it costs no call.
		s.discount.code = d.PromotionCode
		s.discount.what = "promotion code " + d.PromotionCode
	}
	return nil
}

// lookupPromotionCode finds the active Stripe promotion code of the
// declared code, before it is redeemed, and checks its coupon's tenant.
func (s *subscriptionScope) lookupPromotionCode(ctx context.Context) error {
	d := &s.discount
	if d.code == "" || d.looked {
		return nil
	}
	d.looked = true
	codes, err := s.r.Stripe.ListPromotionCodes(ctx, "", d.code, true)
	if err != nil {
		return fmt.Errorf("looking up promotion code %s: %w", d.code, err)
	}
	for _, pc := range codes {
		if strings.EqualFold(pc.Code, d.code) {
			if err := s.couponTenant(ctx, pc.CouponID, "spec.discount.promotionCode"); err != nil {
				return err
			}
			d.promoID = pc.ID
			d.acceptable = []string{pc.CouponID}
			return nil
		}
	}
	return nil
}

// couponTenant refuses a coupon that belongs to a StripeCoupon of another
// namespace (the answer is cached per coupon ID: a coupon's identity does
// not move).
func (s *subscriptionScope) couponTenant(ctx context.Context, id, field string) error {
	owner, ok := s.r.couponTenants.Load(id)
	if !ok {
		c, err := s.r.Stripe.GetCoupon(ctx, id)
		if stripe.IsNotFound(err) {
			return newSpecError(billingv1alpha1.ReasonNotFound, "Stripe coupon %s named by %s does not exist.", id, field)
		}
		if err != nil {
			return fmt.Errorf("reading coupon %s: %w", id, err)
		}
		tenant := ""
		if c.Metadata[billingv1alpha1.StripeMetadataName] != "" {
			tenant = c.Metadata[billingv1alpha1.StripeMetadataNamespace] + "/" + c.Metadata[billingv1alpha1.StripeMetadataName]
		}
		owner, _ = s.r.couponTenants.LoadOrStore(id, tenant)
	}
	if o := owner.(string); o != "" && !strings.HasPrefix(o, s.obj.Namespace+"/") {
		return newSpecError(ReasonOwnedElsewhere, "Stripe coupon %s (%s) belongs to %s, another namespace; a subscription here cannot use it.", id, field, o)
	}
	return nil
}

// discountCreateParams sets the create call's coupon or promotion code.
func (s *subscriptionScope) discountCreateParams(p *stripe.SubscriptionCreateParams) {
	switch {
	case s.discount.couponID != "":
		p.Coupon = s.discount.couponID
	case s.discount.promoID != "":
		p.PromotionCode = s.discount.promoID
	}
}

// matchesDeclared reports whether Stripe's discount is the declared one.
func (s *subscriptionScope) matchesDeclared(ctx context.Context, have *stripe.Discount) (bool, error) {
	d := &s.discount
	if d.code == "" {
		return slices.Contains(d.acceptable, have.CouponID), nil
	}
	if have.PromotionCodeID == "" {
		return false, nil
	}
	if have.PromotionCodeID == d.promoID {
		return true, nil
	}
	// The code may have moved to a new coupon since it was redeemed (a
	// StripeCoupon's new terms): the redeemed code's string is what counts.
	code, err := s.r.promotionCodeString(ctx, have.PromotionCodeID)
	if err != nil {
		return false, err
	}
	return strings.EqualFold(code, d.code), nil
}

// promotionCodeString returns a promotion code's code (immutable; cached).
func (r *StripeSubscriptionReconciler) promotionCodeString(ctx context.Context, id string) (string, error) {
	if v, ok := r.promotionCodes.Load(id); ok {
		return v.(string), nil
	}
	pc, err := r.Stripe.GetPromotionCode(ctx, id)
	if err != nil {
		return "", fmt.Errorf("reading promotion code %s: %w", id, err)
	}
	r.promotionCodes.Store(id, pc.Code)
	return pc.Code, nil
}

// discountEnded reports whether the declared discount, as status last
// recorded it, is gone from Stripe because its duration is over: a
// repeating one after its end, a once one after a later invoice.
func (s *subscriptionScope) discountEnded(ctx context.Context) (bool, error) {
	prev := s.obj.Status.Discount
	if prev == nil || prev.CouponID == "" {
		return false, nil
	}
	if prev.Ended {
		return s.matchesDeclared(ctx, &stripe.Discount{CouponID: prev.CouponID, PromotionCodeID: prev.PromotionCodeID})
	}
	if ok, err := s.matchesDeclared(ctx, &stripe.Discount{CouponID: prev.CouponID, PromotionCodeID: prev.PromotionCodeID}); err != nil || !ok {
		return false, err
	}
	now := s.sub.ReadAt
	if now == 0 {
		now = time.Now().Unix()
	}
	if prev.End != nil {
		return prev.End.Unix() <= now, nil
	}
	c, err := s.r.Stripe.GetCoupon(ctx, prev.CouponID)
	if stripe.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading coupon %s: %w", prev.CouponID, err)
	}
	inv := s.sub.LatestInvoice
	return c.Duration == string(billingv1alpha1.CouponDurationOnce) && prev.Start != nil && inv != nil && inv.Created > prev.Start.Unix(), nil
}

// diffDiscount adds the discount's difference to s.diff.
func (s *subscriptionScope) diffDiscount(ctx context.Context) error {
	have, d := s.sub.Discount, &s.discount
	describe := func(x *stripe.Discount) string {
		if x.PromotionCodeID != "" {
			return fmt.Sprintf("coupon %s (promotion code %s)", x.CouponID, x.PromotionCodeID)
		}
		return "coupon " + x.CouponID
	}
	switch {
	case !d.declared && have == nil:
		return nil
	case !d.declared:
		s.diff.add(false, "%s is applied in Stripe, no discount declared", describe(have))
		s.diff.removeDiscount = true
		return nil
	case have != nil:
		ok, err := s.matchesDeclared(ctx, have)
		if err != nil || ok {
			return err
		}
		s.diff.add(false, "%s is applied in Stripe, %s declared", describe(have), d.what)
	default:
		ended, err := s.discountEnded(ctx)
		if err != nil || ended {
			return err
		}
		s.diff.add(false, "%s is declared but no discount is applied in Stripe", d.what)
	}
	if err := s.lookupPromotionCode(ctx); err != nil {
		return err
	}
	switch {
	case d.couponID != "":
		id := d.couponID
		s.diff.params.Coupon = &id
	case d.promoID != "":
		id := d.promoID
		s.diff.params.PromotionCode = &id
	case !s.observeMode():
		return newSpecError(billingv1alpha1.ReasonNotFound, "Promotion code %s (spec.discount.promotionCode) is not active in Stripe; it cannot be applied.", d.code)
	}
	return nil
}

// removeDiscount deletes the discount when the diff asks for it.
func (s *subscriptionScope) removeDiscount(ctx context.Context) error {
	if !s.diff.removeDiscount || s.sub == nil {
		return nil
	}
	if err := s.writes.DeleteSubscriptionDiscount(ctx, s.owner, s.sub.ID); err != nil && !stripe.IsNotFound(err) {
		return fmt.Errorf("removing the discount of subscription %s: %w", s.sub.ID, err)
	}
	s.sub.Discount = nil // Stripe answered the delete: it holds none
	return nil
}

// reportDiscount records Stripe's discount in status.discount; a declared
// discount whose duration is over stays, marked ended.
func (s *subscriptionScope) reportDiscount(ctx context.Context) {
	st := &s.obj.Status
	if s.fromStatus || s.sub == nil || s.ended {
		return
	}
	if have := s.sub.Discount; have != nil {
		ds := &billingv1alpha1.DiscountStatus{CouponID: have.CouponID, PromotionCodeID: have.PromotionCodeID}
		if have.Start != 0 {
			t := metav1.NewTime(time.Unix(have.Start, 0).UTC())
			ds.Start = &t
		}
		if have.End != 0 {
			t := metav1.NewTime(time.Unix(have.End, 0).UTC())
			ds.End = &t
		}
		st.Discount = ds
		return
	}
	if s.discount.declared {
		if ended, err := s.discountEnded(ctx); err == nil && ended {
			st.Discount.Ended = true
			return
		}
	}
	st.Discount = nil
}

// invoiceDiscountDrift compares what the latest full-period invoice took
// off with what the declared discount takes off its declared items
// (billing.DiscountOff), when Stripe holds the declared discount and it
// was in effect when the invoice was made. It returns a drift text or "".
func (s *subscriptionScope) invoiceDiscountDrift(ctx context.Context) string {
	inv, have := s.sub.LatestInvoice, s.sub.Discount
	if inv == nil || have == nil || have.Coupon == nil || !s.discount.declared || s.expected == nil {
		return ""
	}
	if ok, err := s.matchesDeclared(ctx, have); err != nil || !ok {
		return ""
	}
	if inv.Created < have.Start || (have.End != 0 && inv.Created >= have.End) ||
		(inv.BillingReason != billingReasonCycle && inv.BillingReason != billingReasonCreate) {
		return ""
	}
	if sub := s.sub; sub.TrialEnd != 0 && inv.Created < sub.TrialEnd {
		return ""
	}
	for _, l := range inv.Lines {
		if l.Proration {
			return ""
		}
	}
	c := have.Coupon
	var lines []billing.DiscountLine
	for _, d := range s.desired {
		line := billing.DiscountLine{Amount: d.UnitAmount * d.Quantity}
		if len(c.AppliesToProducts) > 0 {
			prod, err := s.r.productOf(ctx, d.PriceID)
			if err != nil {
				return ""
			}
			line.Product = prod
		}
		lines = append(lines, line)
	}
	want, err := billing.DiscountOff(lines, s.expected.Currency, billing.Coupon{PercentOff: c.PercentOff, AmountOff: c.AmountOff,
		Currency: c.Currency, CurrencyOptions: c.CurrencyOptions, Products: c.AppliesToProducts})
	if err != nil || want == inv.DiscountAmount {
		return ""
	}
	return fmt.Sprintf("the latest full-period invoice %s takes %s off, the declared %s takes %s off", inv.ID,
		formatAmount(inv.DiscountAmount, inv.Currency), s.discount.what, formatAmount(want, s.expected.Currency))
}

// productOf is a price's product (immutable; cached).
func (r *StripeSubscriptionReconciler) productOf(ctx context.Context, priceID string) (string, error) {
	if v, ok := r.priceProducts.Load(priceID); ok {
		return v.(string), nil
	}
	p, err := r.Stripe.GetPrice(ctx, priceID)
	if err != nil {
		return "", err
	}
	r.priceProducts.Store(priceID, p.ProductID)
	return p.ProductID, nil
}
