package billing

import (
	"strconv"
	"strings"
)

// Stripe's currencies whose API amounts are not in hundredths.
// https://docs.stripe.com/currencies#zero-decimal and #three-decimal.
// ISK, HUF and TWD are zero-decimal in practice but Stripe's API amounts
// for them stay two-decimal (a multiple of 100), so they use exponent 2
// here, as the API does.
var (
	zeroDecimal = map[string]bool{
		"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true, "kmf": true, "krw": true, "mga": true,
		"pyg": true, "rwf": true, "ugx": true, "vnd": true, "vuv": true, "xaf": true, "xof": true, "xpf": true,
	}
	threeDecimal = map[string]bool{"bhd": true, "jod": true, "kwd": true, "omr": true, "tnd": true}
)

// Exponent is the number of decimal places of a currency's API minor unit:
// 0 for zero-decimal currencies (500 JPY is 500), 3 for three-decimal ones
// (1500 KWD minor units are 1.500 KWD), 2 otherwise.
func Exponent(currency string) int {
	c := strings.ToLower(currency)
	switch {
	case zeroDecimal[c]:
		return 0
	case threeDecimal[c]:
		return 3
	}
	return 2
}

// FormatAmount renders an API amount (in the currency's minor unit) with the
// currency's exponent and its upper-case ISO code: "40.00 USD", "500 JPY",
// "1.500 KWD", "-0.05 EUR".
func FormatAmount(amount int64, currency string) string {
	code := strings.ToUpper(currency)
	if code == "" {
		code = "(no currency)"
	}
	exp := Exponent(currency)
	neg := amount < 0
	// Work in uint64 so the smallest int64 has a magnitude too.
	mag := uint64(amount)
	if neg {
		mag = -mag
	}
	digits := strconv.FormatUint(mag, 10)
	if exp > 0 {
		if len(digits) <= exp {
			digits = strings.Repeat("0", exp-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-exp] + "." + digits[len(digits)-exp:]
	}
	if neg {
		digits = "-" + digits
	}
	return digits + " " + code
}
