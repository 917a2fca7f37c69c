package billing

import "testing"

func TestLineTax(t *testing.T) {
	cases := []struct {
		name   string
		amount int64
		rates  []TaxRate
		want   Tax
	}{
		{"exclusive 19%", 2500, []TaxRate{{ID: "txr_de", Percentage: "19"}}, Tax{Exclusive: 475}},
		{"exclusive rounds half away", 250, []TaxRate{{ID: "txr_x", Percentage: "5"}}, Tax{Exclusive: 13}},   // 12.5
		{"exclusive decimal rate", 1000, []TaxRate{{ID: "txr_ny", Percentage: "8.875"}}, Tax{Exclusive: 89}}, // 88.75
		{"inclusive 20%", 1200, []TaxRate{{ID: "txr_fr", Percentage: "20", Inclusive: true}}, Tax{Inclusive: 200}},
		{"inclusive 19% rounds", 2500, []TaxRate{{ID: "txr_de", Percentage: "19", Inclusive: true}}, Tax{Inclusive: 399}}, // 399.16
		{"negative line (credit)", -250, []TaxRate{{ID: "txr_x", Percentage: "5"}}, Tax{Exclusive: -13}},
		{"two rates", 1000, []TaxRate{{ID: "a", Percentage: "10"}, {ID: "b", Percentage: "5", Inclusive: true}}, Tax{Exclusive: 100, Inclusive: 48}}, // 47.6
		{"no rates", 1000, nil, Tax{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LineTax(tc.amount, tc.rates)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("LineTax(%d) = %+v, want %+v", tc.amount, got, tc.want)
			}
		})
	}
	if _, err := LineTax(100, []TaxRate{{ID: "txr_bad", Percentage: "abc"}}); err == nil {
		t.Error("a percentage that is not a decimal must fail")
	}
}

func TestPeriodTaxRoundsPerLine(t *testing.T) {
	// Two lines of 250 at 5 %: 12.5 + 12.5 rounded per line is 26, not 25.
	got, err := PeriodTax([]int64{250, 250}, []TaxRate{{ID: "txr_x", Percentage: "5"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Exclusive != 26 {
		t.Errorf("PeriodTax = %+v, want exclusive 26 (rounded per line)", got)
	}
}
