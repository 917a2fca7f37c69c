package webhookserver

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	received     = prometheus.NewCounter(prometheus.CounterOpts{Name: "stripe_webhook_events_received_total", Help: "Webhook requests received on the Stripe endpoint."})
	verified     = prometheus.NewCounter(prometheus.CounterOpts{Name: "stripe_webhook_events_verified_total", Help: "Events whose signature verified."})
	rejected     = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stripe_webhook_events_rejected_total", Help: "Requests rejected, by reason."}, []string{"reason"})
	duplicates   = prometheus.NewCounter(prometheus.CounterOpts{Name: "stripe_webhook_events_duplicates_total", Help: "Events already applied, acknowledged without a write."})
	outOfOrder   = prometheus.NewCounter(prometheus.CounterOpts{Name: "stripe_webhook_events_out_of_order_total", Help: "Events older than the state they would overwrite, skipped."})
	ignored      = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stripe_webhook_events_ignored_total", Help: "Events acknowledged without effect, by reason."}, []string{"reason"})
	applied      = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stripe_webhook_events_applied_total", Help: "Events applied to a StripeSubscription, by type."}, []string{"type"})
	failed       = prometheus.NewCounter(prometheus.CounterOpts{Name: "stripe_webhook_events_failed_total", Help: "Events answered 503 because they could not be persisted."})
	processing   = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "stripe_webhook_processing_seconds", Help: "Time from request to response.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(Collectors()...)
	})
}

// Collectors returns the package's Prometheus collectors (registered when a
// Server is built), for tests that check the alert rules, the dashboard and
// the README against what the operator registers.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{received, verified, rejected, duplicates, outOfOrder, ignored, applied, failed, processing}
}
