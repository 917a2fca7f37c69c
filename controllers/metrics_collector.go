package controllers

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/kinds"
)

// Metric names of the resource collector.
const (
	metricResources              = "stripe_operator_resources"
	metricResourcesConditionTrue = "stripe_operator_resources_condition_true"
)

var (
	resourcesDesc = prometheus.NewDesc(metricResources,
		"Billing resources known to the operator, by kind.", []string{"kind"}, nil)
	conditionTrueDesc = prometheus.NewDesc(metricResourcesConditionTrue,
		"Billing resources whose condition is True for their current generation, by kind and condition (Ready, Stalled, Reconciling, BillingDrift, PaymentFailed).",
		[]string{"kind", "condition"}, nil)
	collectedConditions = []string{
		billingv1alpha1.ConditionReady, billingv1alpha1.ConditionStalled, billingv1alpha1.ConditionReconciling,
		billingv1alpha1.ConditionBillingDrift, billingv1alpha1.ConditionPaymentFailed,
	}
)

// ResourceCollector counts the billing resources and their True conditions
// at scrape time from the manager's cache (no API server or Stripe call),
// so a dashboard shows how many subscriptions drift or fail to pay and an
// alert can fire on it.
//
// When Reader also implements CachedObjects, the objects are visited in the
// cache's own store: a List, even without deep copies, copies every object
// into a new Items array (about 130 MiB per scrape at 100,000
// subscriptions).
type ResourceCollector struct {
	Reader client.Reader
}

// CachedObjects visits the cached objects of obj's kind, shared with the
// cache: f must not change them or keep them. It returns ErrNoCachedStore,
// having visited nothing, when the cache has no single store to visit.
type CachedObjects interface {
	EachCached(ctx context.Context, obj client.Object, f func(client.Object)) error
}

// ErrNoCachedStore: the objects must be listed instead.
var ErrNoCachedStore = errors.New("no single cached store to visit")

// Describe implements prometheus.Collector.
func (c *ResourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- resourcesDesc
	ch <- conditionTrueDesc
}

// Collect implements prometheus.Collector.
func (c *ResourceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, k := range kinds.BillingKinds() {
		total := 0
		counts := map[string]int{}
		count := func(o kinds.Object) {
			total++
			for _, cond := range o.GetConditions() {
				if cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == o.GetGeneration() {
					counts[cond.Type]++
				}
			}
		}
		err := ErrNoCachedStore
		if cached, ok := c.Reader.(CachedObjects); ok {
			err = cached.EachCached(ctx, k.New(), func(o client.Object) {
				if co, ok := o.(kinds.Object); ok {
					count(co)
				}
			})
		}
		if errors.Is(err, ErrNoCachedStore) {
			list := k.NewList()
			if err = c.Reader.List(ctx, list); err == nil {
				for _, o := range k.Items(list) {
					count(o)
				}
			}
		}
		if err != nil {
			log.FromContext(ctx).Error(err, "Listing resources for metrics", "kind", k.Name)
			continue
		}
		ch <- prometheus.MustNewConstMetric(resourcesDesc, prometheus.GaugeValue, float64(total), k.Name)
		for _, t := range collectedConditions {
			ch <- prometheus.MustNewConstMetric(conditionTrueDesc, prometheus.GaugeValue, float64(counts[t]), k.Name, t)
		}
	}
}

// MetricCollectors returns the package's Prometheus collectors over reader,
// for registration in the manager's registry.
func MetricCollectors(reader client.Reader) []prometheus.Collector {
	return []prometheus.Collector{&ResourceCollector{Reader: reader}}
}

// AuditCollectors returns the billing audit's collectors (registered when
// the first audit completes), for tests that check the alert rules, the
// dashboard and docs/operations.md against what the operator registers.
func AuditCollectors() []prometheus.Collector {
	return []prometheus.Collector{billingObjects, billingAuditCalls, billingAuditLastSuccess}
}

// FinanceCollectors returns the financial report's collectors
// (audit_finance.go), registered when the first audit completes.
func FinanceCollectors() []prometheus.Collector {
	return []prometheus.Collector{stripeMRR, stripeInvoiced, stripeInvoicedCount}
}
