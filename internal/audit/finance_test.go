package audit

import (
	"math"
	"testing"
	"time"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

func TestMonthlyNormalization(t *testing.T) {
	cases := []struct {
		amount   int64
		interval string
		count    int64
		want     int64
	}{
		{1000, "month", 1, 1000},
		{30000, "month", 3, 10000},
		{500, "month", 2, 250},
		{1000, "month", 3, 333},  // 333.33
		{2000, "month", 3, 667},  // 666.67
		{12000, "year", 1, 1000}, // 1000
		{100, "year", 1, 8},      // 8.33
		{18, "year", 1, 2},       // 1.5: half away from zero
		{-18, "year", 1, -2},     // -1.5
		{1000, "week", 1, 4333},  // 4333.33
		{1000, "week", 2, 2167},  // 2166.67
		{100, "day", 1, 3042},    // 3041.67
		{100, "day", 7, 435},     // 434.52
		{3, "day", 365, 0},       // 3 a year: 0.25 a month
		{0, "month", 1, 0},
		{500, "day", 30, 507}, // 507.64
		{math.MaxInt64 / 2, "month", 1, math.MaxInt64 / 2},
	}
	for _, c := range cases {
		got, err := Monthly(c.amount, c.interval, c.count)
		if err != nil {
			t.Fatalf("Monthly(%d, %s, %d): %v", c.amount, c.interval, c.count, err)
		}
		if got != c.want {
			t.Errorf("Monthly(%d, %s, %d) = %d, want %d", c.amount, c.interval, c.count, got, c.want)
		}
	}
	for _, bad := range []struct {
		interval string
		count    int64
	}{{"fortnight", 1}, {"month", 0}, {"", 1}} {
		if _, err := Monthly(100, bad.interval, bad.count); err == nil {
			t.Errorf("Monthly(100, %q, %d): want an error", bad.interval, bad.count)
		}
	}
	if _, err := Monthly(math.MaxInt64, "day", 1); err == nil {
		t.Errorf("Monthly overflowing int64: want an error")
	}
}

func TestAllocate(t *testing.T) {
	cases := []struct {
		total   int64
		weights []int64
		want    []int64
	}{
		{100, []int64{1, 1, 1}, []int64{34, 33, 33}},
		{10, []int64{3000, 1000}, []int64{8, 2}}, // 7.5 / 2.5: tie goes to the earlier
		{7, []int64{0, 5}, []int64{0, 7}},
		{0, []int64{1, 2}, []int64{0, 0}},
		{5, []int64{0, 0}, []int64{0, 0}},
		{1000, []int64{4333, 1000, 1}, []int64{812, 188, 0}},
	}
	for _, c := range cases {
		got := Allocate(c.total, c.weights)
		var sum int64
		for i := range got {
			sum += got[i]
			if got[i] != c.want[i] {
				t.Errorf("Allocate(%d, %v) = %v, want %v", c.total, c.weights, got, c.want)
				break
			}
		}
		var wsum int64
		for _, w := range c.weights {
			wsum += w
		}
		if wsum > 0 && sum != c.total {
			t.Errorf("Allocate(%d, %v) adds up to %d", c.total, c.weights, sum)
		}
	}
}

func item(plan, cur string, unit, qty int64, interval string, count int64) MRRItem {
	return MRRItem{Plan: plan, Currency: cur, UnitAmount: unit, Quantity: qty, Interval: interval, IntervalCount: count}
}

// TestMRRExplainsTheDifference checks every term of the explanation on a
// hand-computed set of subscriptions, and that the terms add up.
func TestMRRExplainsTheDifference(t *testing.T) {
	pro := func(q int64) MRRItem { return item("ns/pro", "usd", 1000, q, "month", 1) }
	yearly := func(q int64) MRRItem { return item("ns/yearly", "usd", 10000, q, "year", 1) } // 833.33 → 833 each
	jpy := item("ns/jp", "jpy", 500, 1, "week", 1)                                           // 2166.67 → 2167
	declared := []DeclaredSubscription{
		{Resource: Identity{Name: "a"}, Status: "active", Items: []MRRItem{pro(2)}},                                         // drift: Stripe has 3
		{Resource: Identity{Name: "b"}, Status: "trialing", Items: []MRRItem{pro(1)}},                                       // trial
		{Resource: Identity{Name: "c"}, Status: "past_due", Items: []MRRItem{pro(1)}},                                       // past due, not declared
		{Resource: Identity{Name: "d"}, Status: "active", Items: []MRRItem{yearly(1), pro(1)}},                              // discount 10%
		{Resource: Identity{Name: "e"}, Status: "canceled", Items: []MRRItem{pro(5)}},                                       // nothing
		{Resource: Identity{Name: "f"}, Status: "active", Items: []MRRItem{jpy}},                                            // no difference
		{Resource: Identity{Name: "g"}, Status: "active", Items: []MRRItem{pro(1), yearly(2)}},                              // amount_off 300 / month
		{Resource: Identity{Name: "h"}, Status: "incomplete", Items: []MRRItem{item("ns/pro", "usd", 1000, 1, "month", 1)}}, // nothing
	}
	stripeSubs := []StripeSubscription{
		{ID: "sub_a", Status: "active", Declared: true, Items: []MRRItem{pro(3)}},
		{ID: "sub_b", Status: "trialing", Declared: true, Items: []MRRItem{pro(1)}},
		{ID: "sub_c", Status: "past_due", Declared: true, Items: []MRRItem{pro(1)}},
		{ID: "sub_d", Status: "active", Declared: true, Items: []MRRItem{yearly(1), pro(1)}, Discount: &Discount{PercentOffBasisPoints: 1000}},
		{ID: "sub_e", Status: "canceled", Declared: true, Items: []MRRItem{pro(5)}},
		{ID: "sub_f", Status: "active", Declared: true, Items: []MRRItem{jpy}},
		{ID: "sub_g", Status: "active", Declared: true, Items: []MRRItem{pro(1), yearly(2)}, Discount: &Discount{AmountOff: 300, Currency: "usd"}},
		{ID: "sub_h", Status: "incomplete", Declared: true, Items: []MRRItem{pro(1)}},
		{ID: "sub_o", Status: "active", Orphan: true, Items: []MRRItem{pro(4)}},
		{ID: "sub_o2", Status: "unpaid", Orphan: true, Items: []MRRItem{pro(4)}},
		{ID: "sub_x", Status: "active", Items: []MRRItem{pro(9)}}, // another instance's: left out
	}
	got, err := MRR(declared, stripeSubs)
	if err != nil {
		t.Fatal(err)
	}
	// By hand, usd / ns/pro:
	//   declared: a 2000 + b 1000 + d 1000 + g 1000                          = 5000
	//   stripe:   a 3000 + c 1000 + d (1000-100) + g (1000-s_pro) + o 4000
	//   g: gross pro 1000, yearly 2×10000/12 = 1667 (1666.67); discount 300 split 1000:1667
	//      → floor 112.49 = 112, floor 187.51 = 187, 1 left to the larger remainder (yearly .51) → 112 / 188
	//   stripe pro = 3000 + 1000 + 900 + 888 + 4000 = 9788
	//   drift = (3000-2000) + (1000-1000) + (1000-1000) = 1000; trials 1000; pastDue 1000; orphans 4000;
	//   discounts 100 + 112 = 212
	// usd / ns/yearly: d 833 (discount 83.3 → 83), g 1667 (discount 188)
	//   declared 2500, stripe 833-83 + 1667-188 = 2229, discounts 271, drift 0
	// jpy / ns/jp: 2167 each side.
	want := []billingv1alpha1.CurrencyMRR{
		{Currency: "jpy", Exponent: 0, Total: billingv1alpha1.MRRAmounts{Declared: 2167, Stripe: 2167},
			Plans: []billingv1alpha1.PlanMRR{{Plan: "ns/jp", MRRAmounts: billingv1alpha1.MRRAmounts{Declared: 2167, Stripe: 2167}}}},
		{Currency: "usd", Exponent: 2,
			Total: billingv1alpha1.MRRAmounts{Declared: 7500, Stripe: 12017, Difference: 4517, Drift: 1000, Discounts: 483, Trials: 1000, PastDue: 1000, Orphans: 4000},
			Plans: []billingv1alpha1.PlanMRR{
				{Plan: "ns/pro", MRRAmounts: billingv1alpha1.MRRAmounts{Declared: 5000, Stripe: 9788, Difference: 4788, Drift: 1000, Discounts: 212, Trials: 1000, PastDue: 1000, Orphans: 4000}},
				{Plan: "ns/yearly", MRRAmounts: billingv1alpha1.MRRAmounts{Declared: 2500, Stripe: 2229, Difference: -271, Discounts: 271}},
			}},
	}
	if len(got) != len(want) {
		t.Fatalf("MRR = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Currency != want[i].Currency || got[i].Exponent != want[i].Exponent || got[i].Total != want[i].Total || len(got[i].Plans) != len(want[i].Plans) {
			t.Errorf("currency %d = %+v\nwant %+v", i, got[i], want[i])
			continue
		}
		for j := range want[i].Plans {
			if got[i].Plans[j] != want[i].Plans[j] {
				t.Errorf("%s plan %d = %+v\nwant %+v", want[i].Currency, j, got[i].Plans[j], want[i].Plans[j])
			}
		}
	}
	for _, c := range got {
		for _, p := range append([]billingv1alpha1.PlanMRR{{Plan: "total", MRRAmounts: c.Total}}, c.Plans...) {
			a := p.MRRAmounts
			if a.Difference != a.Drift-a.Discounts-a.Trials+a.PastDue+a.Orphans {
				t.Errorf("%s %s: difference %d is not explained: %+v", c.Currency, p.Plan, a.Difference, a)
			}
		}
	}
}

func TestMonthsFollowInvoiceStatuses(t *testing.T) {
	now := time.Date(2026, 4, 10, 12, 0, 0, 0, time.UTC)
	m := NewMonths(now)
	if got := m.Since(); !got.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("Since = %s", got)
	}
	mar := time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC).Unix()
	apr := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).Unix()
	feb := time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC).Unix()
	for _, in := range []InvoiceFact{
		{Currency: "usd", Status: "paid", Created: mar, AmountDue: 1000, AmountPaid: 1000, Attempted: true},
		{Currency: "usd", Status: "open", Created: mar, AmountDue: 500, AmountRemaining: 500, Attempted: true},
		{Currency: "usd", Status: "open", Created: mar, AmountDue: 700, AmountRemaining: 700},
		{Currency: "usd", Status: "uncollectible", Created: mar, AmountDue: 300, AmountRemaining: 300, Attempted: true},
		{Currency: "usd", Status: "void", Created: mar, AmountDue: 200, AmountRemaining: 200, Attempted: true},
		{Currency: "usd", Status: "draft", Created: apr, AmountDue: 900, AmountRemaining: 900},
		{Currency: "usd", Status: "paid", Created: apr, AmountDue: 0, AmountPaid: 0},
		{Currency: "eur", Status: "paid", Created: apr, AmountDue: 4000, AmountPaid: 4000, Attempted: true},
		{Currency: "usd", Status: "paid", Created: feb, AmountDue: 99999, AmountPaid: 99999},
	} {
		m.AddInvoice(in)
	}
	for _, r := range []RefundFact{
		{Currency: "usd", Status: "succeeded", Created: apr, Amount: 250},
		{Currency: "usd", Status: "pending", Created: mar, Amount: 10},
		{Currency: "usd", Status: "failed", Created: apr, Amount: 1000},
		{Currency: "usd", Status: "canceled", Created: apr, Amount: 1000},
		{Currency: "usd", Status: "succeeded", Created: feb, Amount: 1000},
	} {
		m.AddRefund(r)
	}
	got := m.Result()
	want := []billingv1alpha1.MonthFinance{
		{Month: "2026-04", Currency: "eur", Exponent: 2, Invoiced: ac(4000, 1), Paid: ac(4000, 1)},
		{Month: "2026-04", Currency: "usd", Exponent: 2, Invoiced: ac(0, 1), Paid: ac(0, 1), Draft: ac(900, 1), Refunded: ac(250, 1)},
		{Month: "2026-03", Currency: "usd", Exponent: 2, Invoiced: ac(2500, 4), Paid: ac(1000, 1), Open: ac(1200, 2),
			Failed: ac(800, 2), Uncollectible: ac(300, 1), Void: ac(200, 1), Refunded: ac(10, 1)},
	}
	if len(got) != len(want) {
		t.Fatalf("Result = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("month %d = %+v\nwant %+v", i, got[i], want[i])
		}
		g := got[i]
		if g.Invoiced.Amount != g.Paid.Amount+g.Open.Amount+g.Uncollectible.Amount || g.Invoiced.Count != g.Paid.Count+g.Open.Count+g.Uncollectible.Count {
			t.Errorf("%s %s: invoiced is not paid + open + uncollectible: %+v", g.Month, g.Currency, g)
		}
	}
}

func ac(amount, count int64) billingv1alpha1.AmountCount {
	return billingv1alpha1.AmountCount{Amount: amount, Count: count}
}
