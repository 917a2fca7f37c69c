package billing

import (
	"errors"
	"math/big"
	"strconv"
	"testing"
)

func TestBillingExpectedItemAmount(t *testing.T) {
	graduated := PriceTerms{Currency: "usd", BillingScheme: SchemeTiered, TiersMode: TiersGraduated, Tiers: []Tier{
		{UpTo: 5, UnitAmount: "500"},
		{UpTo: 10, UnitAmount: "400", FlatAmount: "100"},
		{UnitAmount: "300", FlatAmount: "200"},
	}}
	volume := graduated
	volume.TiersMode = TiersVolume
	tests := []struct {
		name     string
		p        PriceTerms
		qty      int64
		currency string
		want     int64
		exact    string
		billed   int64
		metered  bool
		err      error
	}{
		{name: "per unit", p: PriceTerms{Currency: "usd", UnitAmount: "2000"}, qty: 3, want: 6000, exact: "6000", billed: 3},
		{name: "free", p: PriceTerms{Currency: "usd", UnitAmount: ""}, qty: 3, want: 0, exact: "0", billed: 3},
		// Stripe's own example: 0.05 * 30 = 1.5, rounded up to 2 cents.
		{name: "decimal, Stripe's example", p: PriceTerms{Currency: "usd", UnitAmount: "0.05"}, qty: 30, want: 2, exact: "1.5", billed: 30},
		{name: "decimal rounds down below a half", p: PriceTerms{Currency: "usd", UnitAmount: "0.049"}, qty: 30, want: 1, exact: "1.47", billed: 30},
		{name: "decimal 12 places exact", p: PriceTerms{Currency: "usd", UnitAmount: "0.000000000001"}, qty: 500000000000, want: 1, exact: "0.5", billed: 500000000000},
		{name: "decimal 105.5 cents", p: PriceTerms{Currency: "usd", UnitAmount: "105.5"}, qty: 1, want: 106, exact: "105.5", billed: 1},
		{name: "graduated within tier 1", p: graduated, qty: 4, want: 2000, exact: "2000", billed: 4},
		{name: "graduated at the tier 1 bound", p: graduated, qty: 5, want: 2500, exact: "2500", billed: 5},
		{name: "graduated into tier 2", p: graduated, qty: 7, want: 2500 + 100 + 800, exact: "3400", billed: 7},
		{name: "graduated into the last tier", p: graduated, qty: 12, want: 2500 + 100 + 2000 + 200 + 600, exact: "5400", billed: 12},
		{name: "volume tier 1", p: volume, qty: 5, want: 2500, exact: "2500", billed: 5},
		{name: "volume tier 2 prices every unit", p: volume, qty: 7, want: 100 + 7*400, exact: "2900", billed: 7},
		{name: "volume last tier", p: volume, qty: 12, want: 200 + 12*300, exact: "3800", billed: 12},
		{name: "transform up", p: PriceTerms{Currency: "usd", UnitAmount: "1000", TransformDivideBy: 10, TransformRound: TransformRoundUp}, qty: 21, want: 3000, exact: "3000", billed: 3},
		{name: "transform down", p: PriceTerms{Currency: "usd", UnitAmount: "1000", TransformDivideBy: 10, TransformRound: TransformRoundDown}, qty: 21, want: 2000, exact: "2000", billed: 2},
		{name: "transform exact", p: PriceTerms{Currency: "usd", UnitAmount: "1000", TransformDivideBy: 10, TransformRound: TransformRoundUp}, qty: 20, want: 2000, exact: "2000", billed: 2},
		{name: "metered adds nothing", p: PriceTerms{Currency: "usd", UnitAmount: "5", UsageType: UsageMetered}, qty: 0, want: 0, exact: "0", metered: true},
		{name: "currency option per unit", p: PriceTerms{Currency: "usd", UnitAmount: "2000", CurrencyOptions: map[string]CurrencyOption{"eur": {UnitAmount: "1800"}}}, qty: 2, currency: "eur", want: 3600, exact: "3600", billed: 2},
		{name: "main currency ignores options", p: PriceTerms{Currency: "usd", UnitAmount: "2000", CurrencyOptions: map[string]CurrencyOption{"eur": {UnitAmount: "1800"}}}, qty: 2, currency: "usd", want: 4000, exact: "4000", billed: 2},
		{name: "currency option tiers", p: PriceTerms{Currency: "usd", BillingScheme: SchemeTiered, TiersMode: TiersVolume, Tiers: graduated.Tiers,
			CurrencyOptions: map[string]CurrencyOption{"jpy": {Tiers: []Tier{{UpTo: 5, UnitAmount: "700"}, {UnitAmount: "600"}}}}}, qty: 6, currency: "jpy", want: 3600, exact: "3600", billed: 6},
		{name: "unknown currency", p: PriceTerms{Currency: "usd", UnitAmount: "2000"}, qty: 1, currency: "gbp", err: ErrNoCurrencyOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ExpectedItemAmount(tt.p, tt.qty, tt.currency)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Amount != tt.want || got.Exact != tt.exact || got.BilledQuantity != tt.billed || got.Metered != tt.metered {
				t.Errorf("got %+v, want amount %d exact %s billed %d metered %t", got, tt.want, tt.exact, tt.billed, tt.metered)
			}
		})
	}
}

func TestBillingRoundMinor(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "0.4999": 0, "0.5": 1, "1.5": 2, "2.5": 3, "2.4999999999": 2, "99999999.5": 100000000} {
		r, _ := new(big.Rat).SetString(in)
		if got, err := RoundMinor(r); err != nil || got != want {
			t.Errorf("RoundMinor(%s) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestBillingExpectTotalWithAdjustments(t *testing.T) {
	e, err := Expect("usd", []ExpectedItem{
		{PriceID: "price_a", Price: PriceTerms{Currency: "usd", UnitAmount: "0.05"}, Quantity: 30},
		{PriceID: "price_b", Price: PriceTerms{Currency: "usd", UnitAmount: "0.05"}, Quantity: 30},
		{PriceID: "price_m", Price: PriceTerms{Currency: "usd", UnitAmount: "1", UsageType: UsageMetered}, Quantity: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each line is rounded before the sum (2 + 2), not the sum (3).
	if e.Subtotal() != 4 {
		t.Errorf("subtotal %d, want 4 (each line rounded)", e.Subtotal())
	}
	e.Adjustments = append(e.Adjustments, Adjustment{Name: "discount", Amount: -1})
	if e.Total() != 3 {
		t.Errorf("total %d, want 3", e.Total())
	}
	if m := e.Metered(); len(m) != 1 || m[0] != 3 {
		t.Errorf("metered %v, want [3]", m)
	}
}

// FuzzBillingExpectedItemAmount checks, for any per-unit decimal and quantity, that
// the exact amount is unit x quantity, that rounding moves it by at most a
// half, that graduated tiers never bill less than their cheapest unit nor
// more than their dearest plus all flats, and that a volume price with one
// tier equals the per-unit price.
func FuzzBillingExpectedItemAmount(f *testing.F) {
	f.Add(uint32(5), uint64(0), uint16(30), uint16(3))
	f.Add(uint32(105), uint64(500000000000), uint16(1), uint16(10))
	f.Add(uint32(0), uint64(1), uint16(999), uint16(1))
	f.Fuzz(func(t *testing.T, whole uint32, frac uint64, qty, bound uint16) {
		unit := strconv.FormatUint(uint64(whole), 10) + "." + leftPad(strconv.FormatUint(frac%1000000000000, 10), 12)
		q := int64(qty)
		got, err := ExpectedItemAmount(PriceTerms{Currency: "usd", UnitAmount: unit}, q, "")
		if err != nil {
			t.Fatal(err)
		}
		u, _ := new(big.Rat).SetString(unit)
		exact := new(big.Rat).Mul(u, new(big.Rat).SetInt64(q))
		if e, _ := new(big.Rat).SetString(got.Exact); e.Cmp(exact) != 0 {
			t.Fatalf("exact %s, want %s", got.Exact, exact.FloatString(12))
		}
		diff := new(big.Rat).Sub(new(big.Rat).SetInt64(got.Amount), exact)
		if diff.Abs(diff).Cmp(big.NewRat(1, 2)) > 0 {
			t.Fatalf("rounded %d is more than a half from %s", got.Amount, got.Exact)
		}
		vol, err := ExpectedItemAmount(PriceTerms{Currency: "usd", BillingScheme: SchemeTiered, TiersMode: TiersVolume, Tiers: []Tier{{UnitAmount: unit}}}, q, "")
		if err != nil || vol.Amount != got.Amount {
			t.Fatalf("one-tier volume %d (%v), per-unit %d", vol.Amount, err, got.Amount)
		}
		b := int64(bound%50) + 1
		tiers := []Tier{{UpTo: b, UnitAmount: unit, FlatAmount: "7"}, {UnitAmount: "1", FlatAmount: "3"}}
		gr, err := ExpectedItemAmount(PriceTerms{Currency: "usd", BillingScheme: SchemeTiered, TiersMode: TiersGraduated, Tiers: tiers}, q, "")
		if err != nil {
			t.Fatal(err)
		}
		lo := minRat(u, big.NewRat(1, 1))
		hi := maxRat(u, big.NewRat(1, 1))
		low := new(big.Rat).Mul(lo, new(big.Rat).SetInt64(q))
		high := new(big.Rat).Add(new(big.Rat).Mul(hi, new(big.Rat).SetInt64(q)), big.NewRat(10, 1))
		e, _ := new(big.Rat).SetString(gr.Exact)
		if q > 0 && (e.Cmp(low) < 0 || e.Cmp(high) > 0) {
			t.Fatalf("graduated %s outside [%s, %s]", gr.Exact, low.FloatString(12), high.FloatString(12))
		}
	})
}

func minRat(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) < 0 {
		return a
	}
	return b
}

func maxRat(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) > 0 {
		return a
	}
	return b
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}
