package controllers

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/audit"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// The financial part of the billing audit (docs/financial-reporting.md):
// MRR declared and in Stripe per currency and plan, and the invoices and
// refunds of the current and the previous calendar month (UTC). It reuses
// the audit's customer, price and subscription lists and adds two paged
// lists: invoices and refunds created since the start of the previous
// month, 100 a page.

// financeSeen is what the audit's lists hand to the financial report.
type financeSeen struct {
	customers []*stripe.Customer
	prices    []*stripe.Price
	subs      []*stripe.Subscription
}

// recording wraps the audit's lister so that the customers, prices and
// subscriptions it lists are kept for the financial report.
func (seen *financeSeen) recording(l stripe.Lister) stripe.Lister {
	return recordingLister{Lister: l, seen: seen}
}

type recordingLister struct {
	stripe.Lister
	seen *financeSeen
}

func (l recordingLister) ListAllCustomers(ctx context.Context, fn func(*stripe.Customer) error) error {
	return l.Lister.ListAllCustomers(ctx, func(c *stripe.Customer) error {
		l.seen.customers = append(l.seen.customers, c)
		return fn(c)
	})
}

func (l recordingLister) ListAllPrices(ctx context.Context, fn func(*stripe.Price) error) error {
	return l.Lister.ListAllPrices(ctx, func(p *stripe.Price) error {
		l.seen.prices = append(l.seen.prices, p)
		return fn(p)
	})
}

func (l recordingLister) ListAllSubscriptions(ctx context.Context, fn func(*stripe.Subscription) error) error {
	return l.Lister.ListAllSubscriptions(ctx, func(s *stripe.Subscription) error {
		l.seen.subs = append(l.seen.subs, s)
		return fn(s)
	})
}

// now is the audit's clock: the reconciler's Now, or the wall clock.
func (r *BillingAuditReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// finance computes the report's finance part. It returns nil (and no
// error) when the Stripe client cannot list invoices and refunds.
func (r *BillingAuditReconciler) finance(ctx context.Context, seen financeSeen) (*billingv1alpha1.BillingFinance, error) {
	fl, ok := r.Stripe.(stripe.FinanceLister)
	if !ok {
		return nil, nil
	}
	instance := r.instance()
	var plans billingv1alpha1.StripePlanList
	if err := r.List(ctx, &plans, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing StripePlans: %w", err)
	}
	var subs billingv1alpha1.StripeSubscriptionList
	if err := r.List(ctx, &subs, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing StripeSubscriptions: %w", err)
	}
	var customers billingv1alpha1.StripeCustomerList
	if err := r.List(ctx, &customers, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing StripeCustomers: %w", err)
	}

	// The plan of a price: the StripePlan that records it (current or
	// previous), else the one its metadata names, else the price itself.
	planOf := map[string]string{}
	planByName := map[string]*billingv1alpha1.StripePlan{}
	for i := range plans.Items {
		p := &plans.Items[i]
		name := p.Namespace + "/" + p.Name
		planByName[name] = p
		for _, id := range append([]string{p.Status.PriceID}, p.Status.PreviousPriceIDs...) {
			if id != "" {
				planOf[id] = name
			}
		}
	}
	prices := map[string]*stripe.Price{}
	for _, p := range seen.prices {
		prices[p.ID] = p
		if _, ok := planOf[p.ID]; ok {
			continue
		}
		if id, ok := audit.IdentityOf(instance, audit.KindPrice, p.Metadata); ok && id.Kind == audit.ResourceStripePlan {
			planOf[p.ID] = id.Namespace + "/" + id.Name
		}
	}
	plan := func(priceID string) string {
		if p, ok := planOf[priceID]; ok {
			return p
		}
		return "price/" + priceID
	}

	// Stripe's side, and whose subscriptions and customers are this
	// instance's.
	listed := map[string]*stripe.Subscription{}
	for _, s := range seen.subs {
		listed[s.ID] = s
	}
	recorded := map[string]bool{}
	ours := map[string]bool{}
	for i := range customers.Items {
		if id := customers.Items[i].Status.CustomerID; id != "" {
			ours[id] = true
		}
	}
	for _, c := range seen.customers {
		if _, ok := audit.IdentityOf(instance, audit.KindCustomer, c.Metadata); ok {
			ours[c.ID] = true
		}
	}

	var declared []audit.DeclaredSubscription
	for i := range subs.Items {
		s := &subs.Items[i]
		if s.Status.SubscriptionID == "" {
			continue
		}
		recorded[s.Status.SubscriptionID] = true
		if s.Status.CustomerID != "" {
			ours[s.Status.CustomerID] = true
		}
		st := listed[s.Status.SubscriptionID]
		if st == nil {
			continue // not in Stripe's list: nothing active to declare
		}
		d := audit.DeclaredSubscription{Resource: audit.Identity{Kind: audit.ResourceStripeSubscription, Namespace: s.Namespace, Name: s.Name}, Status: st.Status}
		for _, it := range s.Spec.Items {
			qty := max(it.Quantity, 1)
			switch {
			case it.PlanRef != nil:
				p := planByName[s.Namespace+"/"+it.PlanRef.Name]
				if p == nil {
					continue // no such plan: the subscription itself reports it
				}
				count := max(p.Spec.Price.IntervalCount, 1)
				d.Items = append(d.Items, audit.MRRItem{Plan: p.Namespace + "/" + p.Name, Currency: p.Spec.Price.Currency,
					UnitAmount: p.Spec.Price.UnitAmount, Quantity: qty, Interval: string(p.Spec.Price.Interval), IntervalCount: count})
			case it.PriceID != "":
				pr := prices[it.PriceID]
				if pr == nil {
					continue
				}
				d.Items = append(d.Items, audit.MRRItem{Plan: plan(pr.ID), Currency: pr.Currency, UnitAmount: pr.UnitAmount,
					Quantity: qty, Interval: pr.Interval, IntervalCount: max(pr.IntervalCount, 1)})
			}
		}
		declared = append(declared, d)
	}
	var inStripe []audit.StripeSubscription
	for _, s := range seen.subs {
		ss := audit.StripeSubscription{ID: s.ID, Status: s.Status, Declared: recorded[s.ID]}
		if !ss.Declared {
			id, ok := audit.IdentityOf(instance, audit.KindSubscription, s.Metadata)
			ss.Orphan = ok && id.Kind == audit.ResourceStripeSubscription
		}
		if !ss.Declared && !ss.Orphan {
			continue
		}
		for _, it := range s.Items {
			ss.Items = append(ss.Items, audit.MRRItem{Plan: plan(it.PriceID), Currency: it.Currency, UnitAmount: it.UnitAmount,
				Quantity: it.Quantity, Interval: it.Interval, IntervalCount: max(it.IntervalCount, 1)})
		}
		ss.Discount = foreverDiscount(s.Discount)
		inStripe = append(inStripe, ss)
	}
	mrr, err := audit.MRR(declared, inStripe)
	if err != nil {
		return nil, fmt.Errorf("computing MRR: %w", err)
	}

	// The months: invoices and refunds of this instance's customers.
	fctx, counter := stripe.WithCallCounter(ctx)
	now := r.now()
	months := audit.NewMonths(now)
	asOf := metav1.NewTime(now.UTC().Truncate(time.Second))
	out := &billingv1alpha1.BillingFinance{MRR: mrr, AsOf: &asOf}
	err = fl.ListInvoicesSince(fctx, months.Since(), func(in *stripe.ListedInvoice) error {
		if !ours[in.CustomerID] {
			return nil
		}
		out.InvoicesRead++
		months.AddInvoice(audit.InvoiceFact{Currency: in.Currency, Status: in.Status, Created: in.Created, AmountDue: in.AmountDue,
			AmountPaid: in.AmountPaid, AmountRemaining: in.AmountRemaining, Attempted: in.Attempted})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing invoices: %w", err)
	}
	err = fl.ListRefundsSince(fctx, months.Since(), func(rf *stripe.Refund) error {
		if !ours[rf.CustomerID] {
			return nil
		}
		out.RefundsRead++
		months.AddRefund(audit.RefundFact{Currency: rf.Currency, Status: rf.Status, Created: rf.Created, Amount: rf.Amount})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing refunds: %w", err)
	}
	out.Months = months.Result()
	out.Calls = int64(counter.Calls())
	return out, nil
}

var (
	stripeMRR = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stripe_mrr",
		Help: "Monthly recurring revenue in the currency's minor unit, per currency and plan, as of the last completed billing audit: source=declared (the specs of resources whose subscription is active or trialing) or source=stripe (Stripe's active and past_due subscriptions of this instance, after forever discounts). Never add across currencies.",
	}, []string{"currency", "plan", "source"})
	stripeInvoiced = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stripe_invoiced_amount",
		Help: "Invoice amounts in the currency's minor unit per currency, status (invoiced, paid, open, failed, uncollectible, void, draft, refunded) and calendar month (YYYY-MM, UTC) of creation, for the current and the previous month, as of the last completed billing audit.",
	}, []string{"currency", "status", "month"})
	stripeInvoicedCount = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stripe_invoices",
		Help: "Number of invoices (refunds for status=refunded) per currency, status and month, as stripe_invoiced_amount sums them.",
	}, []string{"currency", "status", "month"})
	financeMetricsRegistered = false
	financeMetricsMu         sync.Mutex
)

// registerFinanceMetrics registers the collectors once (a registry that
// already holds them, as the monitoring checks' does, is fine).
func registerFinanceMetrics() {
	if financeMetricsRegistered {
		return
	}
	financeMetricsRegistered = true
	for _, c := range FinanceCollectors() {
		if err := metrics.Registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err)
			}
		}
	}
}

// observeFinance replaces the finance series with the last audit's: series
// of months, plans and currencies no longer reported disappear.
func observeFinance(f *billingv1alpha1.BillingFinance) {
	financeMetricsMu.Lock()
	defer financeMetricsMu.Unlock()
	registerFinanceMetrics()
	stripeMRR.Reset()
	stripeInvoiced.Reset()
	stripeInvoicedCount.Reset()
	if f == nil {
		return
	}
	for _, c := range f.MRR {
		for _, p := range c.Plans {
			stripeMRR.WithLabelValues(c.Currency, p.Plan, "declared").Set(float64(p.Declared))
			stripeMRR.WithLabelValues(c.Currency, p.Plan, "stripe").Set(float64(p.Stripe))
		}
	}
	for _, m := range f.Months {
		for status, ac := range map[string]billingv1alpha1.AmountCount{
			"invoiced": m.Invoiced, "paid": m.Paid, "open": m.Open, "failed": m.Failed, "uncollectible": m.Uncollectible,
			"void": m.Void, "draft": m.Draft, "refunded": m.Refunded,
		} {
			stripeInvoiced.WithLabelValues(m.Currency, status, m.Month).Set(float64(ac.Amount))
			stripeInvoicedCount.WithLabelValues(m.Currency, status, m.Month).Set(float64(ac.Count))
		}
	}
}

// foreverDiscount is a subscription's discount as it counts towards MRR:
// only a coupon of duration forever (see audit.Discount), nil otherwise.
// percent_off is exact to two decimal places in Stripe, so it is read as
// basis points without a float.
func foreverDiscount(d *stripe.Discount) *audit.Discount {
	if d == nil || d.Coupon == nil || d.Coupon.Duration != "forever" {
		return nil
	}
	c := d.Coupon
	if c.PercentOff == "" {
		return &audit.Discount{AmountOff: c.AmountOff, Currency: c.Currency}
	}
	r, ok := new(big.Rat).SetString(c.PercentOff)
	if !ok {
		return nil
	}
	bp := new(big.Rat).Mul(r, big.NewRat(100, 1))
	if !bp.IsInt() {
		return nil
	}
	return &audit.Discount{PercentOffBasisPoints: bp.Num().Int64()}
}
