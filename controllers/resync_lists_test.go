package controllers

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// countingLister serves one fixed list and counts the lists fetched.
type countingLister struct {
	stripe.ResyncLister
	subs  []*stripe.Subscription
	calls atomic.Int32
	fail  bool
}

func (l *countingLister) ListAllSubscriptions(_ context.Context, fn func(*stripe.Subscription) error) error {
	l.calls.Add(1)
	time.Sleep(20 * time.Millisecond) // long enough for concurrent callers to meet
	if l.fail {
		return errors.New("stripe is down")
	}
	for _, s := range l.subs {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

func listedSub(qty int64) *stripe.Subscription {
	return &stripe.Subscription{ID: "sub_1", CustomerID: "cus_1", Status: "active",
		Items: []stripe.SubscriptionItem{{ID: "si_1", PriceID: "price_1", Quantity: qty}}, CurrentPeriodStart: 1000, CurrentPeriodEnd: 2000}
}

// resyncScope is a StripeSubscription whose last pass observed listedSub(1)
// for its current generation.
func resyncScope() *subscriptionScope {
	obj := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", UID: "uid-1", Generation: 2}}
	setObservedStatus(&obj.Status, listedSub(1))
	obj.Status.ObservedGeneration = 2
	return &subscriptionScope{pass: &pass[*billingv1alpha1.StripeSubscription]{obj: obj}}
}

func TestListedSubscriptionRules(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		mutate func(s *subscriptionScope, r *StripeSubscriptionReconciler, listedAt time.Time)
		listed *stripe.Subscription
		use    bool
	}{
		{name: "unchanged resync uses the list", listed: listedSub(1), use: true},
		{name: "the list shows a change: read on its own", listed: listedSub(4)},
		{name: "a webhook event newer than the list wins", listed: listedSub(1), mutate: func(s *subscriptionScope, _ *StripeSubscriptionReconciler, at time.Time) {
			// The event, applied after the list was taken, moved status on:
			// the older listed copy differs from it and is not used.
			setObservedStatus(&s.obj.Status, listedSub(4))
			s.obj.Status.LastEvent = &billingv1alpha1.EventRef{ID: "evt_1", Created: at.Add(time.Minute).Unix()}
		}},
		{name: "a webhook event that changed nothing status shows: the list is used", listed: listedSub(1), use: true, mutate: func(s *subscriptionScope, _ *StripeSubscriptionReconciler, at time.Time) {
			s.obj.Status.LastEvent = &billingv1alpha1.EventRef{ID: "evt_1", Created: at.Add(time.Minute).Unix()}
		}},
		{name: "observed after the list: read on its own", listed: listedSub(1), mutate: func(s *subscriptionScope, r *StripeSubscriptionReconciler, at time.Time) {
			r.Lists.note(s.obj.UID, at.Add(time.Second))
		}},
		{name: "a spec change is not a resync", listed: listedSub(1), mutate: func(s *subscriptionScope, _ *StripeSubscriptionReconciler, _ time.Time) {
			s.obj.Generation = 3
		}},
		{name: "a recreate request is not a resync", listed: listedSub(1), mutate: func(s *subscriptionScope, _ *StripeSubscriptionReconciler, _ time.Time) {
			s.obj.Annotations = map[string]string{billingv1alpha1.AnnotationRecreate: "true"}
		}},
		{name: "not in the list: read on its own", listed: &stripe.Subscription{ID: "sub_other"}},
		{name: "a deferred webhook event is settled by a read of its own", listed: listedSub(1), mutate: func(s *subscriptionScope, _ *StripeSubscriptionReconciler, at time.Time) {
			s.obj.Status.DeferredEvent = &billingv1alpha1.EventRef{ID: "evt_1", Created: at.Add(-time.Minute).Unix()}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &StripeSubscriptionReconciler{Lists: &ResyncLists{}}
			r.Lists.startOnce.Do(func() { r.Lists.observed.start.Store(time.Now().Add(-time.Hour).UnixNano()) })
			s := resyncScope()
			at := time.Now().Add(-time.Minute)
			r.Lists.Publish(at, []*stripe.Subscription{tc.listed})
			if tc.mutate != nil {
				tc.mutate(s, r, at)
			}
			got := r.listedSubscription(ctx, s)
			if (got != nil) != tc.use {
				t.Fatalf("used the list: %v, want %v", got != nil, tc.use)
			}
			if got == nil && !r.Lists.last(s.obj.UID).After(at) {
				t.Errorf("a pass that reads on its own notes the observation")
			}
		})
	}
}

func TestSubscriptionListsRefresh(t *testing.T) {
	ctx := context.Background()
	lister := &countingLister{subs: []*stripe.Subscription{listedSub(1)}}
	l := &ResyncLists{Lister: lister, MinRefresh: time.Hour}
	before := time.Now()

	// Concurrent resyncs share one list.
	results := make(chan bool, 8)
	for i := 0; i < 8; i++ {
		go func() { _, _, ok := l.Lookup(ctx, "sub_1", before); results <- ok }()
	}
	for i := 0; i < 8; i++ {
		if !<-results {
			t.Fatal("a concurrent lookup found nothing")
		}
	}
	if n := lister.calls.Load(); n != 1 {
		t.Fatalf("%d lists for 8 concurrent lookups, want 1", n)
	}
	// A resource observed after the list, within MinRefresh: no new list.
	if _, _, ok := l.Lookup(ctx, "sub_1", time.Now().Add(time.Second)); ok || lister.calls.Load() != 1 {
		t.Fatalf("lookup newer than the list: ok=%v, lists=%d", ok, lister.calls.Load())
	}
	// Once the list is MinRefresh old, the next such lookup fetches a new one.
	l.MinRefresh = time.Millisecond
	time.Sleep(5 * time.Millisecond)
	if _, _, ok := l.Lookup(ctx, "sub_1", time.Now().Add(-time.Millisecond)); !ok || lister.calls.Load() != 2 {
		t.Fatalf("refresh after MinRefresh: ok=%v, lists=%d", ok, lister.calls.Load())
	}
	// An older list never replaces a newer one.
	l.Publish(before.Add(-time.Hour), nil)
	if _, _, ok := l.Lookup(ctx, "sub_1", before); !ok {
		t.Fatal("an older list replaced a newer one")
	}
	// A failing list falls back to reading on its own.
	failing := &ResyncLists{Lister: &countingLister{fail: true}}
	if _, _, ok := failing.Lookup(ctx, "sub_1", before); ok {
		t.Fatal("a failed list was used")
	}
}

// TestReadSettlesADeferredEvent: a read of Stripe clears deferredEvent and
// moves readAt, even when it changes nothing else status shows.
func TestReadSettlesADeferredEvent(t *testing.T) {
	st := &billingv1alpha1.StripeSubscriptionStatus{}
	sub := listedSub(1)
	sub.ReadAt = 1000
	setObservedStatus(st, sub)
	st.DeferredEvent = &billingv1alpha1.EventRef{ID: "evt_1", Created: 1500}
	if !readOwed(st) {
		t.Fatal("a deferred event owes a read")
	}
	sub.ReadAt = 2000
	setObservedStatus(st, sub)
	if st.DeferredEvent != nil || readOwed(st) {
		t.Errorf("the read did not settle the deferred event: %+v", st.DeferredEvent)
	}
	if st.ReadAt == nil || st.ReadAt.Unix() != 2000 {
		t.Errorf("readAt %v, want the read's time 2000", st.ReadAt)
	}
	// A read that changes nothing and settles nothing keeps readAt.
	sub.ReadAt = 3000
	setObservedStatus(st, sub)
	if st.ReadAt.Unix() != 2000 {
		t.Errorf("readAt %v moved on a read that changed nothing", st.ReadAt)
	}
}
