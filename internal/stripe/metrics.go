package stripe

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stripe_requests_total",
		Help: "Stripe API requests by method, path template and HTTP status.",
	}, []string{"method", "path", "status"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stripe_request_duration_seconds",
		Help:    "Stripe API request latency.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	}, []string{"method", "path"})
	limiterWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "stripe_ratelimiter_wait_seconds",
		Help:    "Time calls waited in the client-side Stripe rate limiter.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	idempotentReplays = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stripe_idempotent_replays_total",
		Help: "Stripe responses replayed from the idempotency cache (Idempotent-Replayed: true), by route. The operator never takes a replayed body as the current state.",
	}, []string{"route"})
	registerOnce sync.Once
)

func register() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(Collectors()...)
	})
}

func observeRequest(method, path, status string, d time.Duration) {
	register()
	requestsTotal.WithLabelValues(method, path, status).Inc()
	requestDuration.WithLabelValues(method, path).Observe(d.Seconds())
}

func observeReplay(method, path string) {
	register()
	idempotentReplays.WithLabelValues(method + " " + path).Inc()
}

func observeWait(d time.Duration) {
	register()
	limiterWait.Observe(d.Seconds())
}

// pathTemplate replaces object IDs in a Stripe path with {id}:
// /v1/customers/cus_123 -> /v1/customers/{id}.
func pathTemplate(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if i >= 3 && strings.Contains(s, "_") {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

func itoa(i int) string { return strconv.Itoa(i) }

// Collectors returns the package's Prometheus collectors (registered on
// first use; the one list register uses), for tests that check the alert rules, the dashboard and the
// docs/operations.md against what the operator registers.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{requestsTotal, requestDuration, limiterWait, idempotentReplays}
}
