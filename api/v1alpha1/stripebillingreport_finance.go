package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// The financial part of the billing report (docs/financial-reporting.md).
// Every amount is an integer in the currency's minor unit (the unit of
// Stripe's API amounts: cents for USD, yen for JPY, thousandths for KWD);
// exponent says how many decimal places that unit has. Amounts of different
// currencies are never added together.

// Reasons of the Clean condition for a report with nothing in it.
const (
	// ReasonNothingAudited: the audit found no Stripe object of this
	// instance and no declared resource; it says so instead of calling an
	// empty report clean.
	ReasonNothingAudited = "NothingAudited"
)

// BillingFinance is what the declared and the billed subscriptions are
// worth, and what Stripe invoiced, collected and refunded.
type BillingFinance struct {
	// asOf is the audit's time on the clock that decides the calendar
	// months (the wall clock, or the test clock of a test-mode Stripe).
	// +optional
	AsOf *metav1.Time `json:"asOf,omitempty"`
	// mrr is the monthly recurring revenue per currency, in total and per
	// plan.
	// +optional
	// +listType=map
	// +listMapKey=currency
	MRR []CurrencyMRR `json:"mrr,omitempty"`
	// months are the invoice and refund totals per calendar month (UTC) and
	// currency, for the month of the audit and the one before it.
	// +optional
	// +listType=atomic
	Months []MonthFinance `json:"months,omitempty"`
	// invoicesRead is the number of invoices the audit read (created since
	// the start of the previous month), refundsRead the number of refunds.
	// +optional
	InvoicesRead int64 `json:"invoicesRead,omitempty"`
	// +optional
	RefundsRead int64 `json:"refundsRead,omitempty"`
	// calls is the number of Stripe API requests the financial part of the
	// last audit made (included in lastAuditCalls): one per page of 100
	// invoices and one per page of 100 refunds.
	// +optional
	Calls int64 `json:"calls,omitempty"`
}

// MRRAmounts are monthly amounts in minor units. difference = stripe -
// declared = drift - discounts - trials + pastDue + orphans, exactly.
type MRRAmounts struct {
	// declared is the monthly value of the specs of the resources whose
	// Stripe subscription is active or trialing.
	// +optional
	Declared int64 `json:"declared"`
	// stripe is the monthly value of the Stripe subscriptions of this
	// instance that are active or past_due, after discounts (Stripe's own
	// MRR definition: trials and unpaid subscriptions are excluded).
	// +optional
	Stripe int64 `json:"stripe"`
	// difference is stripe - declared.
	// +optional
	Difference int64 `json:"difference"`
	// drift is what active subscriptions bill in Stripe minus what their
	// resources declare (a quantity or price changed outside the operator,
	// or a subscription kept on a previous price).
	// +optional
	Drift int64 `json:"drift"`
	// discounts is what forever discounts take off Stripe's amount.
	// +optional
	Discounts int64 `json:"discounts"`
	// trials is the declared value of trialing subscriptions, which bill
	// nothing yet.
	// +optional
	Trials int64 `json:"trials"`
	// pastDue is the value of past_due subscriptions that resources
	// declare: Stripe counts them, the declaration does not.
	// +optional
	PastDue int64 `json:"pastDue"`
	// orphans is the value of active or past_due subscriptions with this
	// instance's identity and no resource.
	// +optional
	Orphans int64 `json:"orphans"`
}

// PlanMRR is one plan's part of a currency's MRR.
type PlanMRR struct {
	// plan is the StripePlan (namespace/name) whose price the subscription
	// items use, or price/ID for a price no StripePlan records.
	// +required
	Plan string `json:"plan"`

	MRRAmounts `json:",inline"`
}

// CurrencyMRR is the MRR of one currency.
type CurrencyMRR struct {
	// currency is the lower-case ISO code.
	// +required
	Currency string `json:"currency"`
	// exponent is the number of decimal places of the currency's minor
	// unit (2 for usd, 0 for jpy, 3 for kwd).
	// +optional
	Exponent int32 `json:"exponent"`
	// total is the sum over the currency's plans.
	// +optional
	Total MRRAmounts `json:"total"`
	// plans are ordered by name.
	// +optional
	// +listType=map
	// +listMapKey=plan
	Plans []PlanMRR `json:"plans,omitempty"`
}

// AmountCount is a sum of amounts in minor units and the number of objects
// summed.
type AmountCount struct {
	// +optional
	Amount int64 `json:"amount"`
	// +optional
	Count int64 `json:"count"`
}

// MonthFinance is one currency's invoices created in one calendar month
// (UTC) and its refunds created in that month, as Stripe reports them at
// the audit.
type MonthFinance struct {
	// month is YYYY-MM (UTC).
	// +required
	Month string `json:"month"`
	// currency is the lower-case ISO code.
	// +required
	Currency string `json:"currency"`
	// exponent is the number of decimal places of the minor unit.
	// +optional
	Exponent int32 `json:"exponent"`
	// invoiced: finalized invoices that are not void (status open, paid or
	// uncollectible), amount_due. invoiced = paid + open + uncollectible.
	// +optional
	Invoiced AmountCount `json:"invoiced"`
	// paid: status paid, amount_paid.
	// +optional
	Paid AmountCount `json:"paid"`
	// open: status open (finalized, awaiting payment), amount_remaining.
	// +optional
	Open AmountCount `json:"open"`
	// failed: invoices whose payment was attempted and that are not paid
	// (open and being retried, or uncollectible), amount_remaining. It
	// overlaps open and uncollectible.
	// +optional
	Failed AmountCount `json:"failed"`
	// uncollectible: status uncollectible (written off), amount_remaining.
	// +optional
	Uncollectible AmountCount `json:"uncollectible"`
	// void: status void (canceled after finalization), amount_due; not part
	// of invoiced.
	// +optional
	Void AmountCount `json:"void"`
	// draft: status draft (not finalized yet), amount_due; not part of
	// invoiced.
	// +optional
	Draft AmountCount `json:"draft"`
	// refunded: refunds created in the month with status succeeded or
	// pending, of charges to this instance's customers, amount.
	// +optional
	Refunded AmountCount `json:"refunded"`
}
