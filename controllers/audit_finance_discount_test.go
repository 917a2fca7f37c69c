package controllers

import (
	"testing"

	"github.com/stripe-operator/stripe-operator/internal/audit"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// TestForeverDiscount: only a forever coupon counts towards MRR, and
// percent_off is read exactly as basis points.
func TestForeverDiscount(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *stripe.Discount
		want *audit.Discount
	}{
		{"none", nil, nil},
		{"once", &stripe.Discount{Coupon: &stripe.Coupon{Duration: "once", PercentOff: "50"}}, nil},
		{"repeating", &stripe.Discount{Coupon: &stripe.Coupon{Duration: "repeating", DurationInMonths: 3, AmountOff: 500, Currency: "usd"}}, nil},
		{"forever percent", &stripe.Discount{Coupon: &stripe.Coupon{Duration: "forever", PercentOff: "12.5"}}, &audit.Discount{PercentOffBasisPoints: 1250}},
		{"forever amount", &stripe.Discount{Coupon: &stripe.Coupon{Duration: "forever", AmountOff: 300, Currency: "eur"}}, &audit.Discount{AmountOff: 300, Currency: "eur"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := foreverDiscount(tc.in)
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("foreverDiscount = %+v, want %+v", got, tc.want)
			}
		})
	}
}
