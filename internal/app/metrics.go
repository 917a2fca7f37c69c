package app

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/stripe-operator/stripe-operator/controllers"
)

// registerResourceMetrics registers the resource and condition gauges
// (computed from the manager's cache at scrape time). A second manager in
// one process (tests, cmd/dev) keeps the first registration.
func registerResourceMetrics(mgr ctrl.Manager) error {
	for _, c := range controllers.MetricCollectors(mgr.GetCache()) {
		if err := metrics.Registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return fmt.Errorf("registering resource metrics: %w", err)
		}
	}
	return nil
}
