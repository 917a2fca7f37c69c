package billing

import (
	"math"
	"testing"
)

func TestFormatAmount(t *testing.T) {
	for _, tc := range []struct {
		amount   int64
		currency string
		want     string
	}{
		{4000, "usd", "40.00 USD"},
		{5, "eur", "0.05 EUR"},
		{0, "gbp", "0.00 GBP"},
		{-150, "usd", "-1.50 USD"},
		{500, "jpy", "500 JPY"},
		{500, "JPY", "500 JPY"},
		{12000, "krw", "12000 KRW"},
		{1500, "kwd", "1.500 KWD"},
		{7, "bhd", "0.007 BHD"},
		{10000, "isk", "100.00 ISK"},
		{math.MinInt64, "usd", "-92233720368547758.08 USD"},
		{100, "", "1.00 (no currency)"},
	} {
		if got := FormatAmount(tc.amount, tc.currency); got != tc.want {
			t.Errorf("FormatAmount(%d, %q) = %q, want %q", tc.amount, tc.currency, got, tc.want)
		}
	}
}
