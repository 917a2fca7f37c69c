package controllers

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Resync by listing, for every kind.
//
// The periodic resync of an unchanged resource reads its Stripe objects from
// the newest whole list of their type (100 per call) instead of one GET
// each: N unchanged objects of all kinds cost about N/100 calls per resync
// period, plus one call for each type whose list is short
// (BenchmarkResyncByListing holds it to N/100 + 5). A list is fetched by the
// first resync that needs a newer one (at most one per MinRefresh); the
// billing audit also publishes its subscription pages.
//
// Listing is a capability of the core (resync_listing.go): a kind reads
// each Stripe object it observes through readListed with the listing of
// its type (customerListing, productListing, ...). A new kind that lists
// adds its whole-list read to stripe.ResyncLister and one listing below.
//
// A listed copy is used only when all of these hold, else the object is
// read on its own as before:
//   - the pass is a resync: the last pass succeeded for the current
//     generation (observedGeneration) and no create is pending;
//   - the list was started after this process last observed the resource
//     (its own reads, writes and earlier lists);
//   - the object is in the list: absence from a list is never taken for a
//     deletion (Stripe leaves deleted customers out of its list), the
//     object is read on its own;
//   - what the pass observes from the listed copies changes nothing: the
//     object is bound, nothing differs from the spec and nothing changes in
//     the resource. Otherwise the core drops the copies and observes again
//     from reads of its own, so every Stripe write and every status change
//     still follows a read of its own. The subscription kind checks the same
//     rule before it observes (listedMatchesStatus), because its observe
//     acts on what it reads (schedules, the recreate request): a listed copy
//     that shows anything status does not hold is read on its own. This, not
//     a comparison of clocks, is why a list older than a webhook event never
//     overwrites the fresher status that event wrote: the webhook server's
//     ordering rule (webhookserver/apply.go, place) is the only freshness
//     rule.

// listing is the resync hook of one Stripe object type: its whole-list
// read and its objects' IDs. A kind registers one per type it observes.
type listing[T any] struct {
	name string
	list func(stripe.ResyncLister, context.Context, func(T) error) error
	id   func(T) string
}

// The listings of every kind's Stripe objects.
var (
	customerListing = &listing[*stripe.Customer]{"customers", stripe.ResyncLister.ListAllCustomers,
		func(x *stripe.Customer) string { return x.ID }}
	productListing = &listing[*stripe.Product]{"products", stripe.ResyncLister.ListAllProducts,
		func(x *stripe.Product) string { return x.ID }}
	priceListing = &listing[*stripe.Price]{"active prices", stripe.ResyncLister.ListActivePrices,
		func(x *stripe.Price) string { return x.ID }}
	subscriptionListing = &listing[*stripe.Subscription]{"subscriptions", stripe.ResyncLister.ListAllSubscriptions,
		func(x *stripe.Subscription) string { return x.ID }}
	webhookEndpointListing = &listing[*stripe.WebhookEndpoint]{"webhook endpoints", stripe.ResyncLister.ListAllWebhookEndpoints,
		func(x *stripe.WebhookEndpoint) string { return x.ID }}
)

// ResyncLists holds the newest whole list of each Stripe object type, shared
// by the reconcilers of every kind and the billing audit, and when this
// process last observed each resource.
type ResyncLists struct {
	// Lister fetches a new list when a resync needs one; nil means only the
	// lists published (the billing audit's subscriptions) are used.
	Lister stripe.ResyncLister
	// MinRefresh is the least age of a list before a resync may fetch a
	// new one (default 5 minutes, half the default resync period): a
	// resource observed after the last list and resynced before this is
	// read on its own. It bounds the lists fetched to one per MinRefresh
	// and type.
	MinRefresh time.Duration

	mu    sync.Mutex
	lists map[string]any // listing name -> *objectList[T]

	startOnce sync.Once
	observed  observations
}

func (l *ResyncLists) minRefresh() time.Duration {
	if l.MinRefresh > 0 {
		return l.MinRefresh
	}
	return 5 * time.Minute
}

// objectList is the newest whole list of one type.
type objectList[T any] struct {
	mu sync.Mutex
	// at is when the list was started: every object in it is at least as
	// new as at.
	at       time.Time
	byID     map[string]T
	inflight chan struct{}
}

func listOf[T any](rl *ResyncLists, l *listing[T]) *objectList[T] {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.lists == nil {
		rl.lists = map[string]any{}
	}
	ol, _ := rl.lists[l.name].(*objectList[T])
	if ol == nil {
		ol = &objectList[T]{}
		rl.lists[l.name] = ol
	}
	return ol
}

// publish replaces l's list with one started at at (an older list never
// replaces a newer one).
func publish[T any](rl *ResyncLists, l *listing[T], at time.Time, items []T) {
	byID := make(map[string]T, len(items))
	for _, x := range items {
		byID[l.id(x)] = x
	}
	ol := listOf(rl, l)
	ol.mu.Lock()
	defer ol.mu.Unlock()
	if at.Before(ol.at) {
		return
	}
	ol.at, ol.byID = at, byID
}

// lookup returns object id from a list of l started after after, fetching
// a new list when the current one is older than after and at least
// MinRefresh old (one fetch at a time; concurrent callers wait for it). It
// reports false when there is no such list or id is not in it.
func lookup[T any](ctx context.Context, rl *ResyncLists, l *listing[T], id string, after time.Time) (T, time.Time, bool) {
	ol := listOf(rl, l)
	var zero T
	for attempt := 0; ; attempt++ {
		ol.mu.Lock()
		if ol.byID != nil && ol.at.After(after) {
			x, ok := ol.byID[id]
			at := ol.at
			ol.mu.Unlock()
			return x, at, ok
		}
		if attempt > 0 || rl.Lister == nil || (!ol.at.IsZero() && time.Since(ol.at) < rl.minRefresh()) {
			ol.mu.Unlock()
			return zero, time.Time{}, false
		}
		if ch := ol.inflight; ch != nil {
			ol.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return zero, time.Time{}, false
			}
			continue
		}
		ch := make(chan struct{})
		ol.inflight = ch
		ol.mu.Unlock()
		refresh(ctx, rl, l)
		ol.mu.Lock()
		ol.inflight = nil
		close(ch)
		ol.mu.Unlock()
	}
}

func refresh[T any](ctx context.Context, rl *ResyncLists, l *listing[T]) {
	at := time.Now()
	var items []T
	if err := l.list(rl.Lister, ctx, func(x T) error {
		items = append(items, x)
		return nil
	}); err != nil {
		log.FromContext(ctx).Info("Listing for the resync failed; reading one by one", "list", l.name, "error", err.Error())
		return
	}
	publish(rl, l, at, items)
}

// Forget drops every list and makes the next lookups need lists started
// from now on: after a credentials change, the key may be another Stripe
// account's, whose objects the old lists do not show.
func (l *ResyncLists) Forget() {
	l.mu.Lock()
	l.lists = nil
	l.mu.Unlock()
	now := time.Now()
	l.startOnce.Do(func() {})
	l.observed.start.Store(now.UnixNano())
	l.observed.m.Range(func(uid, _ any) bool {
		l.observed.m.Store(uid, now)
		return true
	})
}

// Publish replaces the subscription list with one started at at (the
// billing audit's pages; an older list never replaces a newer one).
func (l *ResyncLists) Publish(at time.Time, subs []*stripe.Subscription) {
	publish(l, subscriptionListing, at, subs)
}

// Lookup returns subscription id from a list started after after (see
// lookup).
func (l *ResyncLists) Lookup(ctx context.Context, id string, after time.Time) (*stripe.Subscription, time.Time, bool) {
	return lookup(ctx, l, subscriptionListing, id, after)
}

// observations remembers when this process last observed each resource.
type observations struct {
	start atomic.Int64 // Unix nanoseconds
	m     sync.Map     // types.UID -> time.Time
}

// note records an observation of uid at at (a later one is kept).
func (l *ResyncLists) note(uid types.UID, at time.Time) {
	l.startOnce.Do(func() { l.observed.start.Store(time.Now().UnixNano()) })
	if prev, ok := l.observed.m.Load(uid); ok && prev.(time.Time).After(at) {
		return
	}
	l.observed.m.Store(uid, at)
}

// last is the last observation, or when this process started to observe:
// what a previous process observed is not known, so a list must be newer
// than this one.
func (l *ResyncLists) last(uid types.UID) time.Time {
	l.startOnce.Do(func() { l.observed.start.Store(time.Now().UnixNano()) })
	if v, ok := l.observed.m.Load(uid); ok {
		return v.(time.Time)
	}
	return time.Unix(0, l.observed.start.Load())
}

// listedSubscription returns the listed copy of s's subscription when the
// rules above allow this pass to use it. Otherwise it returns nil and notes
// an observation now (the caller reads the subscription on its own).
func (r *StripeSubscriptionReconciler) listedSubscription(ctx context.Context, s *subscriptionScope) *stripe.Subscription {
	if r.Lists == nil {
		return nil
	}
	obj := s.obj
	st := &obj.Status
	_, recreate := obj.GetAnnotations()[billingv1alpha1.AnnotationRecreate]
	if st.SubscriptionID == "" || !resyncPass(obj) || recreate || readOwed(st) {
		r.Lists.note(obj.UID, time.Now())
		return nil
	}
	sub, at, ok := r.Lists.Lookup(ctx, st.SubscriptionID, r.Lists.last(obj.UID))
	if !ok || !listedMatchesStatus(sub, st) {
		r.Lists.note(obj.UID, time.Now())
		return nil
	}
	r.Lists.note(obj.UID, at)
	return sub
}

// noteObserved records that this pass observed s's subscription now (a
// create, adoption or update returned it).
func (r *StripeSubscriptionReconciler) noteObserved(s *subscriptionScope) {
	if r.Lists != nil {
		r.Lists.note(s.obj.UID, time.Now())
	}
}

// listedMatchesStatus tells whether status already holds everything the
// listed copy says.
func listedMatchesStatus(sub *stripe.Subscription, st *billingv1alpha1.StripeSubscriptionStatus) bool {
	probe := st.DeepCopy()
	setObservedStatus(probe, sub)
	return equality.Semantic.DeepEqual(probe, st)
}
