package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
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
type ResourceCollector struct {
	Reader client.Reader
}

// Describe implements prometheus.Collector.
func (c *ResourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- resourcesDesc
	ch <- conditionTrueDesc
}

// Collect implements prometheus.Collector.
func (c *ResourceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lists := []struct {
		kind string
		list client.ObjectList
		each func(client.ObjectList, func(conditioned))
	}{
		{"StripeCustomer", &billingv1alpha1.StripeCustomerList{}, func(l client.ObjectList, f func(conditioned)) {
			for i := range l.(*billingv1alpha1.StripeCustomerList).Items {
				f(&l.(*billingv1alpha1.StripeCustomerList).Items[i])
			}
		}},
		{"StripePlan", &billingv1alpha1.StripePlanList{}, func(l client.ObjectList, f func(conditioned)) {
			for i := range l.(*billingv1alpha1.StripePlanList).Items {
				f(&l.(*billingv1alpha1.StripePlanList).Items[i])
			}
		}},
		{"StripeSubscription", &billingv1alpha1.StripeSubscriptionList{}, func(l client.ObjectList, f func(conditioned)) {
			for i := range l.(*billingv1alpha1.StripeSubscriptionList).Items {
				f(&l.(*billingv1alpha1.StripeSubscriptionList).Items[i])
			}
		}},
	}
	for _, k := range lists {
		if err := c.Reader.List(ctx, k.list); err != nil {
			log.FromContext(ctx).Error(err, "Listing resources for metrics", "kind", k.kind)
			continue
		}
		total := 0
		counts := map[string]int{}
		k.each(k.list, func(o conditioned) {
			total++
			for _, cond := range o.GetConditions() {
				if cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == o.GetGeneration() {
					counts[cond.Type]++
				}
			}
		})
		ch <- prometheus.MustNewConstMetric(resourcesDesc, prometheus.GaugeValue, float64(total), k.kind)
		for _, t := range collectedConditions {
			ch <- prometheus.MustNewConstMetric(conditionTrueDesc, prometheus.GaugeValue, float64(counts[t]), k.kind, t)
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
// dashboard and the README against what the operator registers.
func AuditCollectors() []prometheus.Collector {
	return []prometheus.Collector{billingObjects, billingAuditCalls, billingAuditLastSuccess}
}
