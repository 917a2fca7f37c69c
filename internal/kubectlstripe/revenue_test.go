package kubectlstripe

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// TestRevenue prints a report's financial status as a table, JSON and CSV,
// limits the months with --month, and refuses a month the report does not
// hold; a report without an audit says so; an empty report is not called
// all Managed.
func TestRevenue(t *testing.T) {
	ctx := context.Background()
	name := "rev-" + rand.String(6)
	r := &billingv1alpha1.StripeBillingReport{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), r) })

	out, err := run(t, "revenue", "--instance", name)
	if err == nil || !strings.Contains(out, "no financial report yet") {
		t.Errorf("revenue before any audit: want an error saying so, got %v:\n%s", err, out)
	}

	asOf := metav1.NewTime(time.Date(2026, 4, 10, 14, 0, 0, 0, time.UTC))
	r.Status = billingv1alpha1.StripeBillingReportStatus{
		LastAuditTime: &asOf,
		Finance: &billingv1alpha1.BillingFinance{AsOf: &asOf, Calls: 2,
			MRR: []billingv1alpha1.CurrencyMRR{
				{Currency: "jpy", Exponent: 0, Total: billingv1alpha1.MRRAmounts{Declared: 3000, Stripe: 3000},
					Plans: []billingv1alpha1.PlanMRR{{Plan: "shop/yen", MRRAmounts: billingv1alpha1.MRRAmounts{Declared: 3000, Stripe: 3000}}}},
				{Currency: "usd", Exponent: 2, Total: billingv1alpha1.MRRAmounts{Declared: 7000, Stripe: 11000, Difference: 4000, Drift: 3000, Trials: 1000, PastDue: 1000, Orphans: 1000},
					Plans: []billingv1alpha1.PlanMRR{{Plan: "shop/pro", MRRAmounts: billingv1alpha1.MRRAmounts{Declared: 7000, Stripe: 11000, Difference: 4000, Drift: 3000, Trials: 1000, PastDue: 1000, Orphans: 1000}}}},
			},
			Months: []billingv1alpha1.MonthFinance{
				{Month: "2026-04", Currency: "usd", Exponent: 2, Invoiced: billingv1alpha1.AmountCount{Amount: 11500, Count: 6},
					Paid: billingv1alpha1.AmountCount{Amount: 7500, Count: 4}, Open: billingv1alpha1.AmountCount{Amount: 1000, Count: 1},
					Failed: billingv1alpha1.AmountCount{Amount: 4000, Count: 2}, Uncollectible: billingv1alpha1.AmountCount{Amount: 3000, Count: 1},
					Refunded: billingv1alpha1.AmountCount{Amount: 500, Count: 1}},
				{Month: "2026-03", Currency: "jpy", Exponent: 0, Invoiced: billingv1alpha1.AmountCount{Amount: 3000, Count: 1},
					Paid: billingv1alpha1.AmountCount{Amount: 3000, Count: 1}},
			}},
	}
	if err := env.Client.Status().Update(ctx, r); err != nil {
		t.Fatal(err)
	}

	out, err = run(t, "revenue", "--instance", name)
	if err != nil {
		t.Fatalf("revenue: %v\n%s", err, out)
	}
	for _, want := range []string{"2026-04-10T14:00:00Z", "shop/pro", "70.00", "110.00", "40.00", "-10.00",
		"shop/yen", "3000", "115.00 (6)", "40.00 (2)", "30.00 (1)", "5.00 (1)", "2026-03"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	out, err = run(t, "revenue", "--instance", name, "--month", "2026-03", "-o", "json")
	if err != nil {
		t.Fatalf("revenue -o json: %v\n%s", err, out)
	}
	var doc struct {
		MRR    []billingv1alpha1.CurrencyMRR  `json:"mrr"`
		Months []billingv1alpha1.MonthFinance `json:"months"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("revenue -o json is not JSON: %v\n%s", err, out)
	}
	if len(doc.Months) != 1 || doc.Months[0].Month != "2026-03" || doc.Months[0].Currency != "jpy" || len(doc.MRR) != 2 {
		t.Errorf("--month 2026-03 -o json: %+v", doc)
	}

	out, err = run(t, "revenue", "--instance", name, "-o", "csv")
	if err != nil {
		t.Fatalf("revenue -o csv: %v\n%s", err, out)
	}
	for _, want := range []string{"section,month,currency,exponent,plan,measure,amount,count",
		"mrr,,usd,2,shop/pro,drift,3000,", "invoices,2026-04,usd,2,,failed,4000,2", "invoices,2026-04,usd,2,,refunded,500,1"} {
		if !strings.Contains(out, want) {
			t.Errorf("csv lacks %q:\n%s", want, out)
		}
	}

	for _, bad := range [][]string{{"--month", "2026-01"}, {"--month", "April"}, {"-o", "yaml"}} {
		if out, err := run(t, append([]string{"revenue", "--instance", name}, bad...)...); err == nil {
			t.Errorf("revenue %v: want an error, got:\n%s", bad, out)
		}
	}

	// An audit of 0 objects is not "Every audited Stripe object is Managed".
	out, err = run(t, "report", "--instance", name)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if !strings.Contains(out, "audited 0 objects") || strings.Contains(out, "Every audited Stripe object is Managed") {
		t.Errorf("report of an empty audit:\n%s", out)
	}
}
