package webhookserver

import (
	"strings"
	"sync"
	"time"

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
	deferred     = prometheus.NewCounter(prometheus.CounterOpts{Name: "stripe_webhook_events_deferred_total", Help: "Events whose order against status could not be known and that would change it: recorded for the operator to read Stripe instead of applied."})
	superseded   = prometheus.NewCounter(prometheus.CounterOpts{Name: "stripe_webhook_events_superseded_total", Help: "Events about an invoice older than the latest one, acknowledged without a write."})
	conflicts    = prometheus.NewCounter(prometheus.CounterOpts{Name: "stripe_webhook_status_conflicts_total", Help: "Status writes that conflicted and were retried on a fresh read."})
	byVersion    = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stripe_webhook_events_by_api_version_total", Help: "Verified events by the API version of their payload (unknown versions as other)."}, []string{"api_version"})
	failed       = prometheus.NewCounter(prometheus.CounterOpts{Name: "stripe_webhook_events_failed_total", Help: "Events answered 503 because they could not be persisted."})
	processing   = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "stripe_webhook_processing_seconds", Help: "Time from request to response.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(Collectors()...)
		// The series the StripeWebhookEventsUndecodable alert watches
		// exists from the start, so that increase() sees the first
		// undecodable event.
		ignored.WithLabelValues("undecodable_object")
	})
}

// Collectors returns the package's Prometheus collectors (registered when a
// Server is built), for tests that check the alert rules, the dashboard and
// docs/operations.md against what the operator registers.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{received, verified, rejected, duplicates, outOfOrder, deferred, superseded, conflicts, byVersion, ignored, applied, failed, processing}
}

// Stripe's named releases (a breaking-change version each, then monthly
// additive versions with the same name): https://docs.stripe.com/changelog.
var releases = map[string]bool{"acacia": true, "basil": true, "clover": true, "dahlia": true, "endive": true}

// legacyVersions are the dated versions before named releases that the
// operator decodes (stripe-go v76 speaks 2023-10-16).
var legacyVersions = map[string]bool{"2023-10-16": true, "2024-04-10": true, "2024-06-20": true}

// versionLabel bounds the api_version label: a known dated version, or a
// YYYY-MM-DD.<release> of a known release, is kept; anything else is
// "other" (a few label values per year).
func versionLabel(v string) string {
	if legacyVersions[v] {
		return v
	}
	date, name, ok := strings.Cut(v, ".")
	if ok && releases[name] {
		if _, err := time.Parse("2006-01-02", date); err == nil {
			return v
		}
	}
	return "other"
}
