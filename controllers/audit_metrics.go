package controllers

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/audit"
)

var (
	billingObjects = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stripe_operator_billing_objects",
		Help: "Stripe objects by kind (customer, product, price, subscription) and billing audit class (Managed, OrphanedExpected, OrphanedUnexplained, Missing, Duplicate, Drifted, CanceledForNonPayment, CanceledByOperator), as of the last completed audit.",
	}, []string{"kind", "class"})
	billingAuditCalls = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "stripe_operator_billing_audit_calls",
		Help: "Stripe API requests the last completed billing audit made.",
	})
	billingAuditLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "stripe_operator_billing_audit_last_success_timestamp_seconds",
		Help: "Unix time at which the last completed billing audit started.",
	})
	auditMetricsOnce sync.Once
)

func registerAuditMetrics() {
	auditMetricsOnce.Do(func() {
		metrics.Registry.MustRegister(billingObjects, billingAuditCalls, billingAuditLastSuccess)
	})
}

// observeAudit publishes a completed audit's counts, every kind and class
// included, so a class that empties goes to 0 instead of keeping its last
// value.
func observeAudit(run auditRun, calls int64, startedUnix int64) {
	registerAuditMetrics()
	for _, kind := range audit.Kinds {
		for _, class := range billingv1alpha1.BillingClasses {
			billingObjects.WithLabelValues(kind, string(class)).Set(float64(run.result.Counts[kind][class]))
		}
	}
	billingAuditCalls.Set(float64(calls))
	billingAuditLastSuccess.Set(float64(startedUnix))
}
