package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/stripe-operator/stripe-operator/controllers"
)

// registerResourceMetrics registers the resource and condition gauges
// (computed from the manager's cache at scrape time). A second manager in
// one process (tests, cmd/dev) keeps the first registration.
func registerResourceMetrics(mgr ctrl.Manager) error {
	for _, c := range controllers.MetricCollectors(readOnlyLists{mgr.GetCache()}) {
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

// readOnlyLists lists from the cache without deep-copying every object.
// The resource collector only counts objects and reads their conditions at
// scrape time; with deep copies each scrape would allocate a second copy of
// the whole cache (tens of MiB at 10,000 subscriptions) every scrape
// interval.
type readOnlyLists struct{ client.Reader }

func (r readOnlyLists) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return r.Reader.List(ctx, list, append(opts, client.UnsafeDisableDeepCopy)...)
}
