package billing

import "testing"

func TestDiscountOff(t *testing.T) {
	cases := []struct {
		name     string
		lines    []DiscountLine
		currency string
		c        Coupon
		want     int64
		wantErr  bool
	}{
		{"percent, exact", []DiscountLine{{Amount: 2000}}, "usd", Coupon{PercentOff: "25"}, 500, false},
		{"percent, half rounds up", []DiscountLine{{Amount: 999}}, "usd", Coupon{PercentOff: "50"}, 500, false},
		{"percent, below half rounds down", []DiscountLine{{Amount: 2000}}, "usd", Coupon{PercentOff: "33.33"}, 667, false},
		{"two decimals", []DiscountLine{{Amount: 1001}}, "usd", Coupon{PercentOff: "12.5"}, 125, false},
		{"zero-decimal currency", []DiscountLine{{Amount: 999}}, "jpy", Coupon{PercentOff: "10"}, 100, false},
		{"100 percent", []DiscountLine{{Amount: 4321}}, "usd", Coupon{PercentOff: "100"}, 4321, false},
		{"amount off", []DiscountLine{{Amount: 2000}}, "usd", Coupon{AmountOff: 500, Currency: "usd"}, 500, false},
		{"amount off, never below zero", []DiscountLine{{Amount: 2000}}, "usd", Coupon{AmountOff: 5000, Currency: "usd"}, 2000, false},
		{"currency option", []DiscountLine{{Amount: 2000}}, "eur", Coupon{AmountOff: 500, Currency: "usd", CurrencyOptions: map[string]int64{"eur": 450}}, 450, false},
		{"no amount for the currency", []DiscountLine{{Amount: 2000}}, "gbp", Coupon{AmountOff: 500, Currency: "usd"}, 0, true},
		{"products", []DiscountLine{{Product: "prod_a", Amount: 2000}, {Product: "prod_b", Amount: 1000}}, "usd", Coupon{PercentOff: "50", Products: []string{"prod_b"}}, 500, false},
		{"credit invoice", []DiscountLine{{Amount: -300}}, "usd", Coupon{PercentOff: "50"}, 0, false},
		{"bad percent", []DiscountLine{{Amount: 100}}, "usd", Coupon{PercentOff: "0.001"}, 0, true},
	}
	for _, tc := range cases {
		got, err := DiscountOff(tc.lines, tc.currency, tc.c)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d (error %t)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
	if got, err := ApplyDiscount(2000, "usd", Coupon{PercentOff: "25"}); err != nil || got != 1500 {
		t.Errorf("ApplyDiscount: %d, %v", got, err)
	}
}
