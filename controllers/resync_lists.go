package controllers

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Resync by listing.
//
// The periodic resync of an unchanged StripeSubscription reads its Stripe
// subscription from the newest whole list of subscriptions (100 per call)
// instead of on its own: N unchanged subscriptions cost about N/100 calls per
// resync period instead of N. The list comes from the billing audit, or is
// fetched by the first resync that needs a newer one.
//
// A listed copy is used only when all of these hold, else the pass reads the
// subscription on its own as before:
//   - the pass is a resync: the last pass succeeded for the current
//     generation and no recreate is asked for;
//   - no deferred webhook event waits for a read (readOwed);
//   - the list was started after this process last observed the
//     subscription (its own reads, writes and earlier lists);
//   - the listed copy shows nothing status does not already hold: an object
//     the list shows as changed is read on its own. This, not a comparison
//     of clocks, is why a list older than a webhook event never overwrites
//     the fresher status that event wrote: the webhook server's ordering
//     rule (webhookserver/apply.go, place) is the only freshness rule.

// SubscriptionLists holds the newest whole list of Stripe subscriptions,
// shared by the billing audit and the subscription reconciler.
type SubscriptionLists struct {
	// Lister fetches a new list when a resync needs one; nil means only the
	// billing audit's lists are used.
	Lister stripe.Lister
	// MinRefresh is the least age of the list before a resync may fetch a
	// new one (default 5 minutes, half the default resync period): a
	// resource observed after the last list and resynced before this is
	// read on its own. It bounds the lists fetched to one per MinRefresh.
	MinRefresh time.Duration

	mu sync.Mutex
	// at is when the list was started: every object in it is at least as
	// new as at.
	at       time.Time
	byID     map[string]*stripe.Subscription
	inflight chan struct{}
}

func (l *SubscriptionLists) minRefresh() time.Duration {
	if l.MinRefresh > 0 {
		return l.MinRefresh
	}
	return 5 * time.Minute
}

// Publish replaces the list with one started at at (an older list never
// replaces a newer one).
func (l *SubscriptionLists) Publish(at time.Time, subs []*stripe.Subscription) {
	byID := make(map[string]*stripe.Subscription, len(subs))
	for _, s := range subs {
		byID[s.ID] = s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if at.Before(l.at) {
		return
	}
	l.at, l.byID = at, byID
}

// Lookup returns subscription id from a list started after after, fetching
// a new list when the current one is older than after and at least
// MinRefresh old (one fetch at a time; concurrent callers wait for it). It
// reports false when there is no such list or id is not in it.
func (l *SubscriptionLists) Lookup(ctx context.Context, id string, after time.Time) (*stripe.Subscription, time.Time, bool) {
	for attempt := 0; ; attempt++ {
		l.mu.Lock()
		if l.byID != nil && l.at.After(after) {
			s, ok := l.byID[id]
			at := l.at
			l.mu.Unlock()
			return s, at, ok
		}
		if attempt > 0 || l.Lister == nil || (!l.at.IsZero() && time.Since(l.at) < l.minRefresh()) {
			l.mu.Unlock()
			return nil, time.Time{}, false
		}
		if ch := l.inflight; ch != nil {
			l.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, time.Time{}, false
			}
			continue
		}
		ch := make(chan struct{})
		l.inflight = ch
		l.mu.Unlock()
		l.refresh(ctx)
		l.mu.Lock()
		l.inflight = nil
		close(ch)
		l.mu.Unlock()
	}
}

func (l *SubscriptionLists) refresh(ctx context.Context) {
	at := time.Now()
	var subs []*stripe.Subscription
	if err := l.Lister.ListAllSubscriptions(ctx, func(s *stripe.Subscription) error {
		subs = append(subs, s)
		return nil
	}); err != nil {
		log.FromContext(ctx).Info("Listing subscriptions for the resync failed; reading them one by one", "error", err.Error())
		return
	}
	l.Publish(at, subs)
}

// observations remembers when this process last observed each
// subscription.
type observations struct {
	start time.Time
	m     sync.Map // types.UID -> time.Time
}

func (o *observations) note(uid types.UID, at time.Time) {
	if prev, ok := o.m.Load(uid); ok && prev.(time.Time).After(at) {
		return
	}
	o.m.Store(uid, at)
}

// last is the last observation, or the process start: what a previous
// process observed is not known, so a list must be newer than this one.
func (o *observations) last(uid types.UID) time.Time {
	if v, ok := o.m.Load(uid); ok {
		return v.(time.Time)
	}
	return o.start
}

// listedSubscription returns the listed copy of s's subscription when the
// rules above allow this pass to use it. Otherwise it returns nil and notes
// an observation now (the caller reads the subscription on its own).
func (r *StripeSubscriptionReconciler) listedSubscription(ctx context.Context, s *subscriptionScope) *stripe.Subscription {
	if r.Lists == nil {
		return nil
	}
	r.observedOnce.Do(func() { r.observed.start = time.Now() })
	obj := s.obj
	st := &obj.Status
	_, recreate := obj.GetAnnotations()[billingv1alpha1.AnnotationRecreate]
	if st.SubscriptionID == "" || st.ObservedGeneration != obj.Generation || recreate || readOwed(st) {
		r.observed.note(obj.UID, time.Now())
		return nil
	}
	sub, at, ok := r.Lists.Lookup(ctx, st.SubscriptionID, r.observed.last(obj.UID))
	if !ok || !listedMatchesStatus(sub, st) {
		r.observed.note(obj.UID, time.Now())
		return nil
	}
	r.observed.note(obj.UID, at)
	return sub
}

// noteObserved records that this pass observed s's subscription now (a
// create, adoption or update returned it).
func (r *StripeSubscriptionReconciler) noteObserved(s *subscriptionScope) {
	if r.Lists == nil {
		return
	}
	r.observedOnce.Do(func() { r.observed.start = time.Now() })
	r.observed.note(s.obj.UID, time.Now())
}

// listedMatchesStatus tells whether status already holds everything the
// listed copy says.
func listedMatchesStatus(sub *stripe.Subscription, st *billingv1alpha1.StripeSubscriptionStatus) bool {
	probe := st.DeepCopy()
	setObservedStatus(probe, sub)
	return equality.Semantic.DeepEqual(probe, st)
}
