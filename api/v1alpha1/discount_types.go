package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SubscriptionDiscount is the discount declared on a subscription: exactly
// one of couponRef, couponID or promotionCode. Declared means applied (on
// create and on update); removed means removed. A discount that ended
// after its coupon's duration is not applied again.
// +kubebuilder:validation:XValidation:rule="[has(self.couponRef), has(self.couponID), has(self.promotionCode)].filter(x, x).size() == 1",message="discount needs exactly one of couponRef, couponID or promotionCode"
type SubscriptionDiscount struct {
	// couponRef names a StripeCoupon in the same namespace; the discount
	// is made from its current coupon. A subscription on one of its
	// earlier coupons keeps that discount.
	// +optional
	CouponRef *LocalObjectReference `json:"couponRef,omitempty"`
	// couponID is a Stripe coupon not managed here. A coupon that belongs
	// to a StripeCoupon of another namespace is refused.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	CouponID string `json:"couponID,omitempty"`
	// promotionCode is a customer-facing code (such as LAUNCH50), redeemed
	// as Stripe's restrictions allow; its coupon must not belong to a
	// StripeCoupon of another namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]+$`
	PromotionCode string `json:"promotionCode,omitempty"`
}

// DiscountStatus is a subscription's discount as Stripe last reported it.
type DiscountStatus struct {
	// couponID is the discount's coupon.
	// +optional
	CouponID string `json:"couponID,omitempty"`
	// promotionCodeID is the promotion code redeemed (promo_...), if any.
	// +optional
	PromotionCodeID string `json:"promotionCodeID,omitempty"`
	// start is when the discount was applied.
	// +optional
	Start *metav1.Time `json:"start,omitempty"`
	// end is when the discount ends (a repeating coupon); unset for once
	// and forever.
	// +optional
	End *metav1.Time `json:"end,omitempty"`
	// ended is true when Stripe no longer holds the discount because its
	// duration is over (once after its invoice, repeating after end); the
	// fields above are its last observation. An ended discount is not
	// drift and is not applied again.
	// +optional
	Ended bool `json:"ended,omitempty"`
}
