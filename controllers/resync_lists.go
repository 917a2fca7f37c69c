package controllers

import (
	"sync"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// SubscriptionLists holds the newest whole list of Stripe subscriptions
// (from the billing audit or from a resync), for the subscription
// reconciler's list-based resync.
type SubscriptionLists struct {
	mu sync.Mutex
	// at is when the list was started: every object in it is at least as
	// new as at.
	at   time.Time
	byID map[string]*stripe.Subscription
}

// Publish replaces the list with one that started at at.
func (l *SubscriptionLists) Publish(at time.Time, subs []*stripe.Subscription) {
	byID := make(map[string]*stripe.Subscription, len(subs))
	for _, s := range subs {
		byID[s.ID] = s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if at.Before(l.at) {
		return // an older list never replaces a newer one
	}
	l.at, l.byID = at, byID
}
