package audit

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"time"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
)

// The financial report: pure functions, no I/O (docs/financial-reporting.md).
//
// Every amount is an integer in the currency's minor unit, and amounts of
// different currencies are never added.

// Subscription statuses that matter to MRR
// (https://docs.stripe.com/api/subscriptions/object#subscription_object-status).
const (
	StatusActive   = "active"
	StatusTrialing = "trialing"
	StatusPastDue  = "past_due"
)

// monthlyFraction is the factor num/den that turns an amount billed every
// count intervals into a monthly amount:
//
//	month: 1 / count      (a quarterly 300.00 is 100.00 a month)
//	year:  1 / (12·count)
//	week:  52 / (12·count) (52 weeks a year, 12 months a year)
//	day:   365 / (12·count)
//
// Stripe's Billing analytics define MRR as "the sum of the
// monthly-normalized value" of subscriptions without saying how weeks and
// days normalize (https://docs.stripe.com/billing/subscriptions/analytics/glossary);
// 52 weeks and 365 days a year is this report's choice (leap years
// ignored), and the only place it is made.
func monthlyFraction(interval string, count int64) (num, den int64, err error) {
	if count < 1 {
		return 0, 0, fmt.Errorf("interval_count %d: must be at least 1", count)
	}
	switch interval {
	case "month":
		return 1, count, nil
	case "year":
		return 1, 12 * count, nil
	case "week":
		return 52, 12 * count, nil
	case "day":
		return 365, 12 * count, nil
	}
	return 0, 0, fmt.Errorf("unknown interval %q: want day, week, month or year", interval)
}

// Monthly normalizes an amount billed every count intervals to a month, in
// the same minor unit, rounded to the nearest integer with halves away from
// zero: 1000 a week is 4333 (4333.33...), 1000 every 3 months is 333, 500
// every 2 months is 250, 100 a year is 8 (8.33...), 18 a year is 2 (1.5
// rounds up). The exact product is computed without overflow.
func Monthly(amount int64, interval string, count int64) (int64, error) {
	num, den, err := monthlyFraction(interval, count)
	if err != nil {
		return 0, err
	}
	return roundDiv(new(big.Int).Mul(big.NewInt(amount), big.NewInt(num)), big.NewInt(den))
}

// roundDiv is n/d rounded half away from zero; d > 0.
func roundDiv(n, d *big.Int) (int64, error) {
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	twice := new(big.Int).Abs(r)
	twice.Lsh(twice, 1)
	if twice.Cmp(d) >= 0 {
		if n.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("amount %s out of range", q)
	}
	return q.Int64(), nil
}

// MRRItem is one subscription item: what it bills per period.
type MRRItem struct {
	// Plan is the StripePlan (namespace/name) of the item's price, or
	// price/ID for a price no StripePlan records.
	Plan     string
	Currency string
	// UnitAmount times Quantity is billed every IntervalCount Intervals.
	UnitAmount    int64
	Quantity      int64
	Interval      string
	IntervalCount int64
}

func (it MRRItem) monthly() (int64, error) {
	amount := new(big.Int).Mul(big.NewInt(it.UnitAmount), big.NewInt(it.Quantity))
	num, den, err := monthlyFraction(it.Interval, it.IntervalCount)
	if err != nil {
		return 0, err
	}
	return roundDiv(amount.Mul(amount, big.NewInt(num)), big.NewInt(den))
}

// DeclaredSubscription is one StripeSubscription's spec, priced from its
// plans, with the status of the Stripe subscription it records.
type DeclaredSubscription struct {
	Resource Identity
	// Status is the recorded Stripe subscription's status in this audit's
	// list; only active and trialing ones are declared MRR.
	Status string
	Items  []MRRItem
}

// Discount is a subscription's discount as it counts towards MRR: only a
// coupon with duration forever does (Stripe: "If you apply a coupon with a
// forever duration, the discount will apply to your MRR. If you apply a
// coupon with a finite duration ... your MRR is unaffected",
// https://support.stripe.com/questions/billing-analytics).
type Discount struct {
	// PercentOffBasisPoints is percent_off in hundredths of a percent
	// (12.5% is 1250).
	PercentOffBasisPoints int64
	// AmountOff is taken off every invoice, in Currency.
	AmountOff int64
	Currency  string
}

// StripeSubscription is one Stripe subscription of this instance.
type StripeSubscription struct {
	ID     string
	Status string
	Items  []MRRItem
	// Discount is the forever discount, nil when none.
	Discount *Discount
	// Declared is true when a resource records the subscription; Orphan
	// when it carries this instance's identity and no resource records it.
	// A subscription that is neither is not this instance's and is left out.
	Declared bool
	Orphan   bool
}

type mrrKey struct{ currency, plan string }

// MRR computes declared and Stripe MRR per currency and plan, and explains
// their difference:
//
//	declared   = Σ spec items of resources whose subscription is active or trialing
//	stripe     = Σ items of this instance's active or past_due subscriptions, less forever discounts
//	difference = stripe - declared = drift - discounts - trials + pastDue + orphans
//
// where drift is Σ (Stripe − declared) over active declared subscriptions,
// trials the declared value of trialing ones, pastDue the Stripe value of
// past_due declared ones and orphans that of active or past_due ones without
// a resource. Each item is normalized to a month and rounded on its own
// (Monthly) before anything is added, so every total is an exact sum of
// item amounts and the explanation adds up to the cent.
func MRR(declared []DeclaredSubscription, stripeSubs []StripeSubscription) ([]billingv1alpha1.CurrencyMRR, error) {
	acc := map[mrrKey]*billingv1alpha1.MRRAmounts{}
	at := func(cur, plan string) *billingv1alpha1.MRRAmounts {
		k := mrrKey{cur, plan}
		if acc[k] == nil {
			acc[k] = &billingv1alpha1.MRRAmounts{}
		}
		return acc[k]
	}
	for _, d := range declared {
		if d.Status != StatusActive && d.Status != StatusTrialing {
			continue
		}
		for _, it := range d.Items {
			m, err := it.monthly()
			if err != nil {
				return nil, fmt.Errorf("%s, plan %s: %w", d.Resource, it.Plan, err)
			}
			a := at(it.Currency, it.Plan)
			a.Declared += m
			if d.Status == StatusTrialing {
				a.Trials += m
			} else {
				a.Drift -= m
			}
		}
	}
	for _, s := range stripeSubs {
		if (!s.Declared && !s.Orphan) || (s.Status != StatusActive && s.Status != StatusPastDue) {
			continue
		}
		gross := make([]int64, len(s.Items))
		for i, it := range s.Items {
			m, err := it.monthly()
			if err != nil {
				return nil, fmt.Errorf("subscription %s: %w", s.ID, err)
			}
			gross[i] = m
		}
		off, err := discountShares(s, gross)
		if err != nil {
			return nil, err
		}
		for i, it := range s.Items {
			a := at(it.Currency, it.Plan)
			a.Stripe += gross[i] - off[i]
			a.Discounts += off[i]
			switch {
			case s.Orphan && !s.Declared:
				a.Orphans += gross[i]
			case s.Status == StatusPastDue:
				a.PastDue += gross[i]
			default:
				a.Drift += gross[i]
			}
		}
	}
	byCurrency := map[string]*billingv1alpha1.CurrencyMRR{}
	for k, a := range acc {
		a.Difference = a.Stripe - a.Declared
		c := byCurrency[k.currency]
		if c == nil {
			c = &billingv1alpha1.CurrencyMRR{Currency: k.currency, Exponent: int32(billing.Exponent(k.currency))}
			byCurrency[k.currency] = c
		}
		c.Plans = append(c.Plans, billingv1alpha1.PlanMRR{Plan: k.plan, MRRAmounts: *a})
		addMRR(&c.Total, *a)
	}
	out := make([]billingv1alpha1.CurrencyMRR, 0, len(byCurrency))
	for _, c := range byCurrency {
		slices.SortFunc(c.Plans, func(a, b billingv1alpha1.PlanMRR) int { return cmp.Compare(a.Plan, b.Plan) })
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b billingv1alpha1.CurrencyMRR) int { return cmp.Compare(a.Currency, b.Currency) })
	return out, nil
}

func addMRR(t *billingv1alpha1.MRRAmounts, a billingv1alpha1.MRRAmounts) {
	t.Declared += a.Declared
	t.Stripe += a.Stripe
	t.Difference += a.Difference
	t.Drift += a.Drift
	t.Discounts += a.Discounts
	t.Trials += a.Trials
	t.PastDue += a.PastDue
	t.Orphans += a.Orphans
}

// discountShares is what a subscription's forever discount takes off each
// item's monthly amount:
//
//   - percent_off: each item's own share, round(gross × basis points /
//     10000), halves away from zero;
//   - amount_off: the amount normalized to a month like the items
//     (Monthly over the subscription's interval), at most the items' total,
//     split across the items in proportion to their amounts by largest
//     remainder (so the shares add up to exactly the discount; ties go to
//     the earlier item).
func discountShares(s StripeSubscription, gross []int64) ([]int64, error) {
	off := make([]int64, len(gross))
	d := s.Discount
	if d == nil || len(s.Items) == 0 {
		return off, nil
	}
	if d.PercentOffBasisPoints > 0 {
		for i, g := range gross {
			v, err := roundDiv(new(big.Int).Mul(big.NewInt(g), big.NewInt(d.PercentOffBasisPoints)), big.NewInt(10000))
			if err != nil {
				return nil, err
			}
			off[i] = min(v, g)
		}
		return off, nil
	}
	if d.AmountOff <= 0 || (d.Currency != "" && d.Currency != s.Items[0].Currency) {
		return off, nil
	}
	total, err := Monthly(d.AmountOff, s.Items[0].Interval, s.Items[0].IntervalCount)
	if err != nil {
		return nil, fmt.Errorf("subscription %s discount: %w", s.ID, err)
	}
	var sum int64
	for _, g := range gross {
		sum += g
	}
	return Allocate(min(total, sum), gross), nil
}

// Allocate splits total across weights in proportion, by largest
// remainder: every share is floor(total × w / Σw), and the units left over
// go one each to the largest remainders (earlier first on ties). The shares
// add up to total exactly. Weights must not be negative; all zero gives
// all zero.
func Allocate(total int64, weights []int64) []int64 {
	out := make([]int64, len(weights))
	var sum int64
	for _, w := range weights {
		sum += w
	}
	if sum <= 0 || total == 0 {
		return out
	}
	type rem struct {
		i int
		r *big.Int
	}
	rems := make([]rem, len(weights))
	given := int64(0)
	bt, bs := big.NewInt(total), big.NewInt(sum)
	for i, w := range weights {
		q, r := new(big.Int).QuoRem(new(big.Int).Mul(bt, big.NewInt(w)), bs, new(big.Int))
		out[i] = q.Int64()
		given += out[i]
		rems[i] = rem{i, r}
	}
	slices.SortStableFunc(rems, func(a, b rem) int { return b.r.Cmp(a.r) })
	for k := 0; given < total && k < len(rems); k++ {
		out[rems[k].i]++
		given++
	}
	return out
}

// Invoice statuses (https://docs.stripe.com/invoicing/overview#invoice-statuses:
// draft, open, paid, uncollectible, void).
const (
	InvoiceDraft         = "draft"
	InvoiceOpen          = "open"
	InvoicePaid          = "paid"
	InvoiceUncollectible = "uncollectible"
	InvoiceVoid          = "void"
)

// InvoiceFact is what the report reads from one invoice
// (https://docs.stripe.com/api/invoices/object).
type InvoiceFact struct {
	Currency string
	Status   string
	// Created is Unix seconds; the invoice counts in its creation month.
	Created         int64
	AmountDue       int64
	AmountPaid      int64
	AmountRemaining int64
	// Attempted is true once Stripe tried to collect its payment.
	Attempted bool
}

// RefundFact is what the report reads from one refund
// (https://docs.stripe.com/api/refunds/object).
type RefundFact struct {
	Currency string
	// Status is pending, requires_action, succeeded, failed or canceled.
	Status  string
	Created int64
	Amount  int64
}

// MonthStarts are the first instants (UTC) of now's calendar month and the
// one before it.
func MonthStarts(now time.Time) (current, previous time.Time) {
	now = now.UTC()
	current = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return current, current.AddDate(0, -1, 0)
}

// Months adds up invoices and refunds per calendar month (UTC) and
// currency for now's month and the previous one; anything created earlier
// or later is ignored. Build it with NewMonths.
type Months struct {
	prev, cur, next int64
	prevName        string
	curName         string
	acc             map[mrrKey]*billingv1alpha1.MonthFinance
}

// NewMonths starts the totals for now's month and the one before.
func NewMonths(now time.Time) *Months {
	cur, prev := MonthStarts(now)
	return &Months{prev: prev.Unix(), cur: cur.Unix(), next: cur.AddDate(0, 1, 0).Unix(),
		prevName: prev.Format("2006-01"), curName: cur.Format("2006-01"), acc: map[mrrKey]*billingv1alpha1.MonthFinance{}}
}

// Since is the start of the previous month: the created[gte] of the lists.
func (m *Months) Since() time.Time { return time.Unix(m.prev, 0).UTC() }

func (m *Months) month(created int64, currency string) *billingv1alpha1.MonthFinance {
	var name string
	switch {
	case created >= m.prev && created < m.cur:
		name = m.prevName
	case created >= m.cur && created < m.next:
		name = m.curName
	default:
		return nil
	}
	k := mrrKey{currency, name}
	if m.acc[k] == nil {
		m.acc[k] = &billingv1alpha1.MonthFinance{Month: name, Currency: currency, Exponent: int32(billing.Exponent(currency))}
	}
	return m.acc[k]
}

func add(ac *billingv1alpha1.AmountCount, amount int64) {
	ac.Amount += amount
	ac.Count++
}

// AddInvoice counts one invoice in its creation month:
//
//   - draft: Draft (amount_due); not invoiced yet;
//   - open: Invoiced (amount_due) and Open (amount_remaining);
//   - paid: Invoiced (amount_due) and Paid (amount_paid);
//   - uncollectible: Invoiced (amount_due) and Uncollectible
//     (amount_remaining);
//   - void: Void (amount_due) only;
//   - and, whatever the status but paid, void and draft, Failed
//     (amount_remaining) when a payment was attempted.
func (m *Months) AddInvoice(in InvoiceFact) {
	mf := m.month(in.Created, in.Currency)
	if mf == nil {
		return
	}
	switch in.Status {
	case InvoiceDraft:
		add(&mf.Draft, in.AmountDue)
		return
	case InvoiceVoid:
		add(&mf.Void, in.AmountDue)
		return
	case InvoiceOpen:
		add(&mf.Open, in.AmountRemaining)
	case InvoicePaid:
		add(&mf.Paid, in.AmountPaid)
	case InvoiceUncollectible:
		add(&mf.Uncollectible, in.AmountRemaining)
	default:
		return
	}
	add(&mf.Invoiced, in.AmountDue)
	if in.Attempted && in.Status != InvoicePaid {
		add(&mf.Failed, in.AmountRemaining)
	}
}

// AddRefund counts a refund in its creation month when it succeeded or is
// pending (money on its way back); failed, canceled and requires_action
// refunds returned nothing.
func (m *Months) AddRefund(r RefundFact) {
	if r.Status != "succeeded" && r.Status != "pending" {
		return
	}
	if mf := m.month(r.Created, r.Currency); mf != nil {
		add(&mf.Refunded, r.Amount)
	}
}

// Result is every month and currency with something in it, ordered by
// month (newest first) and currency.
func (m *Months) Result() []billingv1alpha1.MonthFinance {
	out := make([]billingv1alpha1.MonthFinance, 0, len(m.acc))
	for _, mf := range m.acc {
		out = append(out, *mf)
	}
	slices.SortFunc(out, func(a, b billingv1alpha1.MonthFinance) int {
		return cmp.Or(cmp.Compare(b.Month, a.Month), cmp.Compare(a.Currency, b.Currency))
	})
	return out
}
