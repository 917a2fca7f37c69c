package kubectlstripe

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
)

// `kubectl stripe revenue` prints the financial part of the billing report
// (status.finance): the numbers the operator computed, nothing recomputed.

var monthRE = regexp.MustCompile(`^\d{4}-(0[1-9]|1[0-2])$`)

func (o *options) revenueCommand() *cobra.Command {
	var output, month string
	cmd := &cobra.Command{
		Use:   "revenue",
		Short: "Print MRR (declared and in Stripe) and the invoiced, paid, open, failed, uncollectible and refunded amounts from the billing report",
		Long: "revenue prints status.finance of the StripeBillingReport: MRR per currency and plan, declared and in Stripe, with the difference explained, " +
			"and per currency the invoices and refunds of the current and the previous calendar month (UTC). Amounts are never added across currencies. " +
			"Tables show amounts in the currency's major unit; json and csv keep Stripe's integer minor units with the currency's exponent.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output, "table", "json", "csv"); err != nil {
				return err
			}
			if month != "" && !monthRE.MatchString(month) {
				return fmt.Errorf("--month %q: want YYYY-MM, such as 2026-04", month)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			r, err := o.getReport(cmd.Context(), c)
			if err != nil {
				return err
			}
			return WriteRevenue(o.streams.Out, r, month, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "Output format: table, json or csv.")
	cmd.Flags().StringVar(&month, "month", "", "Only this calendar month (YYYY-MM, UTC) of invoices and refunds; the report holds the current and the previous month.")
	return cmd
}

// revenueJSON is the -o json document.
type revenueJSON struct {
	Report string                         `json:"report"`
	AsOf   *metav1.Time                   `json:"asOf,omitempty"`
	MRR    []billingv1alpha1.CurrencyMRR  `json:"mrr"`
	Months []billingv1alpha1.MonthFinance `json:"months"`
	Calls  int64                          `json:"calls"`
}

// WriteRevenue prints the report's financial part in format (table, json
// or csv), the months limited to month when it is not empty.
func WriteRevenue(w io.Writer, r *billingv1alpha1.StripeBillingReport, month, format string) error {
	f := r.Status.Finance
	if f == nil {
		return fmt.Errorf("StripeBillingReport %q has no financial report yet: no audit with it has completed (see kubectl stripe report)", r.Name)
	}
	months := f.Months
	if month != "" {
		months = nil
		for _, m := range f.Months {
			if m.Month == month {
				months = append(months, m)
			}
		}
		if len(months) == 0 && !reportCovers(r, month) {
			return fmt.Errorf("the report covers the calendar month of its last audit and the one before (%s); %s is not one of them", coveredMonths(r), month)
		}
	}
	switch format {
	case "json":
		doc := revenueJSON{Report: r.Name, AsOf: asOf(r), MRR: f.MRR, Months: months, Calls: f.Calls}
		if doc.MRR == nil {
			doc.MRR = []billingv1alpha1.CurrencyMRR{}
		}
		if doc.Months == nil {
			doc.Months = []billingv1alpha1.MonthFinance{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	case "csv":
		return writeRevenueCSV(w, f.MRR, months)
	}
	return writeRevenueTable(w, r, f.MRR, months)
}

// coveredMonths names the two months of the report's last audit.
func coveredMonths(r *billingv1alpha1.StripeBillingReport) string {
	at := asOf(r)
	if at == nil {
		return "none yet"
	}
	t := at.UTC()
	return t.AddDate(0, 0, -t.Day()+1).AddDate(0, -1, 0).Format("2006-01") + " and " + t.Format("2006-01")
}

func reportCovers(r *billingv1alpha1.StripeBillingReport, month string) bool {
	return asOf(r) != nil && strings.Contains(coveredMonths(r), month)
}

// asOf is the time the financial report's months are counted from.
func asOf(r *billingv1alpha1.StripeBillingReport) *metav1.Time {
	if f := r.Status.Finance; f != nil && f.AsOf != nil {
		return f.AsOf
	}
	return r.Status.LastAuditTime
}

// major renders a minor-unit amount in the currency's major unit, without
// the code: 12345 usd is 123.45, 500 jpy is 500.
func major(amount int64, currency string) string {
	return strings.TrimSuffix(billing.FormatAmount(amount, currency), " "+strings.ToUpper(currency))
}

func withCount(ac billingv1alpha1.AmountCount, currency string) string {
	return fmt.Sprintf("%s (%d)", major(ac.Amount, currency), ac.Count)
}

func writeRevenueTable(w io.Writer, r *billingv1alpha1.StripeBillingReport, mrr []billingv1alpha1.CurrencyMRR, months []billingv1alpha1.MonthFinance) error {
	at := "never"
	if t := asOf(r); t != nil {
		at = t.UTC().Format("2006-01-02T15:04:05Z")
	}
	fmt.Fprintf(w, "MRR as of the audit at %s (declared: specs of active and trialing subscriptions; stripe: active and past_due subscriptions, after discounts)\n", at)
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Currency", Type: "string"}, {Name: "Plan", Type: "string"}, {Name: "Declared", Type: "string"}, {Name: "Stripe", Type: "string"},
		{Name: "Difference", Type: "string"}, {Name: "Drift", Type: "string"}, {Name: "Discounts", Type: "string"}, {Name: "Trials", Type: "string"},
		{Name: "Past due", Type: "string"}, {Name: "Orphans", Type: "string"},
	}}
	row := func(cur, plan string, a billingv1alpha1.MRRAmounts) metav1.TableRow {
		m := func(v int64) string { return major(v, cur) }
		return metav1.TableRow{Cells: []any{strings.ToUpper(cur), plan, m(a.Declared), m(a.Stripe), m(a.Difference), m(a.Drift),
			m(-a.Discounts), m(-a.Trials), m(a.PastDue), m(a.Orphans)}}
	}
	for _, c := range mrr {
		for _, p := range c.Plans {
			t.Rows = append(t.Rows, row(c.Currency, p.Plan, p.MRRAmounts))
		}
		t.Rows = append(t.Rows, row(c.Currency, "(all plans)", c.Total))
	}
	if len(t.Rows) == 0 {
		fmt.Fprintln(w, "No active, trialing or past_due subscription.")
	} else if err := printers.NewTablePrinter(printers.PrintOptions{}).PrintObj(t, w); err != nil {
		return err
	}
	fmt.Fprintln(w, "Difference = Drift - Discounts - Trials + Past due + Orphans (the Discounts and Trials columns are shown negative).")

	fmt.Fprintln(w, "\nInvoices by creation month (UTC) and refunds by refund month: amount (count)")
	it := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Month", Type: "string"}, {Name: "Currency", Type: "string"}, {Name: "Invoiced", Type: "string"}, {Name: "Paid", Type: "string"},
		{Name: "Open", Type: "string"}, {Name: "Failed", Type: "string"}, {Name: "Uncollectible", Type: "string"}, {Name: "Void", Type: "string"},
		{Name: "Refunded", Type: "string"},
	}}
	for _, m := range months {
		it.Rows = append(it.Rows, metav1.TableRow{Cells: []any{m.Month, strings.ToUpper(m.Currency), withCount(m.Invoiced, m.Currency),
			withCount(m.Paid, m.Currency), withCount(m.Open, m.Currency), withCount(m.Failed, m.Currency),
			withCount(m.Uncollectible, m.Currency), withCount(m.Void, m.Currency), withCount(m.Refunded, m.Currency)}})
	}
	if len(it.Rows) == 0 {
		fmt.Fprintln(w, "No invoice or refund in these months.")
		return nil
	}
	if err := printers.NewTablePrinter(printers.PrintOptions{}).PrintObj(it, w); err != nil {
		return err
	}
	fmt.Fprintln(w, "Invoiced = Paid + Open + Uncollectible; Failed (attempted, not paid) overlaps Open and Uncollectible.")
	return nil
}

// writeRevenueCSV writes one row per number, in minor units with the
// currency's exponent: section,month,currency,exponent,plan,measure,amount,count.
func writeRevenueCSV(w io.Writer, mrr []billingv1alpha1.CurrencyMRR, months []billingv1alpha1.MonthFinance) error {
	cw := csv.NewWriter(w)
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	_ = cw.Write([]string{"section", "month", "currency", "exponent", "plan", "measure", "amount", "count"})
	for _, c := range mrr {
		exp := strconv.Itoa(int(c.Exponent))
		write := func(plan string, a billingv1alpha1.MRRAmounts) {
			for _, kv := range []struct {
				k string
				v int64
			}{{"declared", a.Declared}, {"stripe", a.Stripe}, {"difference", a.Difference}, {"drift", a.Drift},
				{"discounts", a.Discounts}, {"trials", a.Trials}, {"pastDue", a.PastDue}, {"orphans", a.Orphans}} {
				_ = cw.Write([]string{"mrr", "", c.Currency, exp, plan, kv.k, i64(kv.v), ""})
			}
		}
		for _, p := range c.Plans {
			write(p.Plan, p.MRRAmounts)
		}
		write("", c.Total)
	}
	for _, m := range months {
		exp := strconv.Itoa(int(m.Exponent))
		for _, kv := range []struct {
			k string
			v billingv1alpha1.AmountCount
		}{{"invoiced", m.Invoiced}, {"paid", m.Paid}, {"open", m.Open}, {"failed", m.Failed}, {"uncollectible", m.Uncollectible},
			{"void", m.Void}, {"draft", m.Draft}, {"refunded", m.Refunded}} {
			_ = cw.Write([]string{"invoices", m.Month, m.Currency, exp, "", kv.k, i64(kv.v.Amount), i64(kv.v.Count)})
		}
	}
	cw.Flush()
	return cw.Error()
}
