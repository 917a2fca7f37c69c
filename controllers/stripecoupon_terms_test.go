package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// TestCouponTermsDifferences: which spec changes need a new Stripe coupon
// (pure; no API server).
func TestCouponTermsDifferences(t *testing.T) {
	redeem := metav1.NewTime(time.Unix(1893456000, 0))
	spec := func(mut func(*billingv1alpha1.StripeCouponSpec)) couponTerms {
		s := billingv1alpha1.StripeCouponSpec{PercentOff: "12.50", Duration: billingv1alpha1.CouponDurationRepeating,
			DurationInMonths: i64p(3), MaxRedemptions: i64p(10), RedeemBy: &redeem}
		if mut != nil {
			mut(&s)
		}
		return specCouponTerms(&s, []string{"prod_a"})
	}
	stripeSide := stripeCouponTerms(&stripe.Coupon{PercentOff: "12.5", Duration: "repeating", DurationInMonths: 3, MaxRedemptions: 10,
		RedeemBy: redeem.Unix(), AppliesToProducts: []string{"prod_a"}})
	tests := []struct {
		name string
		mut  func(*billingv1alpha1.StripeCouponSpec)
		want []string
	}{
		{"same terms (12.50 is 12.5)", nil, nil},
		{"name and metadata change in place", func(s *billingv1alpha1.StripeCouponSpec) {
			s.Name, s.Metadata = "x", billingv1alpha1.Metadata{"k": "v"}
		}, nil},
		{"percent", func(s *billingv1alpha1.StripeCouponSpec) { s.PercentOff = "13" }, []string{"percentOff"}},
		{"months", func(s *billingv1alpha1.StripeCouponSpec) { s.DurationInMonths = i64p(4) }, []string{"duration"}},
		{"limit", func(s *billingv1alpha1.StripeCouponSpec) { s.MaxRedemptions = nil }, []string{"maxRedemptions"}},
		{"redeem by", func(s *billingv1alpha1.StripeCouponSpec) { s.RedeemBy = nil }, []string{"redeemBy"}},
		{"amount instead", func(s *billingv1alpha1.StripeCouponSpec) {
			s.PercentOff, s.AmountOff, s.Currency = "", i64p(500), "usd"
		},
			[]string{"percentOff", "amountOff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(spec(tt.mut).differences(stripeSide)).To(Equal(tt.want))
		})
	}
	g := NewWithT(t)
	g.Expect(specCouponTerms(&billingv1alpha1.StripeCouponSpec{PercentOff: "10", Duration: "forever"}, nil).
		differences(stripeCouponTerms(&stripe.Coupon{PercentOff: "10", Duration: "forever", AppliesToProducts: []string{"prod_a"}}))).
		To(Equal([]string{"appliesTo"}))
	// Stripe lists the coupon's own currency among currency_options.
	g.Expect(specCouponTerms(&billingv1alpha1.StripeCouponSpec{AmountOff: i64p(500), Currency: "usd", Duration: "once",
		CurrencyOptions: map[string]billingv1alpha1.CouponCurrencyOption{"eur": {AmountOff: 450}}}, nil).
		differences(stripeCouponTerms(&stripe.Coupon{AmountOff: 500, Currency: "usd", Duration: "once",
			CurrencyOptions: map[string]int64{"usd": 500, "eur": 450}}))).To(BeEmpty())
}

// TestPromotionCodeTerms: the immutable terms of a promotion code.
func TestPromotionCodeTerms(t *testing.T) {
	g := NewWithT(t)
	exp := metav1.NewTime(time.Unix(1893456000, 0))
	want := billingv1alpha1.PromotionCodeSpec{Code: "WELCOME", ExpiresAt: &exp, MaxRedemptions: i64p(5),
		Restrictions: &billingv1alpha1.PromotionCodeRestrictions{FirstTimeTransaction: true, MinimumAmount: i64p(1000), MinimumAmountCurrency: "usd"}}
	have := &stripe.PromotionCode{Code: "WELCOME", ExpiresAt: exp.Unix(), MaxRedemptions: 5, FirstTimeTransaction: true, MinimumAmount: 1000, MinimumAmountCurrency: "usd"}
	g.Expect(codeTermsDiffer(have, want)).To(BeEmpty())
	have.MaxRedemptions = 6
	g.Expect(codeTermsDiffer(have, want)).To(Equal("maxRedemptions"))
	have.MaxRedemptions, have.FirstTimeTransaction = 5, false
	g.Expect(codeTermsDiffer(have, want)).To(Equal("restrictions"))
	have.FirstTimeTransaction, have.Code = true, "welcome"
	g.Expect(codeTermsDiffer(have, want)).To(Equal("code case"))
}
