package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
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

// EachCached visits the objects in the informer's own store, so that a
// scrape allocates one slice of pointers rather than an array of every
// object (controllers.CachedObjects). A cache whose informer has no single
// store (one restricted to some namespaces) is listed instead.
func (r readOnlyLists) EachCached(ctx context.Context, obj client.Object, f func(client.Object)) error {
	c, ok := r.Reader.(cache.Cache)
	if !ok {
		return controllers.ErrNoCachedStore
	}
	inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	st, ok := inf.(interface{ GetStore() toolscache.Store })
	if !ok {
		return controllers.ErrNoCachedStore
	}
	if !inf.HasSynced() {
		return fmt.Errorf("the %T informer has not synced yet", obj)
	}
	for _, o := range st.GetStore().List() {
		if co, ok := o.(client.Object); ok {
			f(co)
		}
	}
	return nil
}
