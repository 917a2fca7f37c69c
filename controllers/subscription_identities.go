package controllers

import (
	"context"
	"sync"
	"time"
	"unique"

	"github.com/stripe-operator/stripe-operator/internal/identity"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// identitySnapshotTTL bounds how long a customer's listed subscriptions are
// trusted before they are listed again.
const identitySnapshotTTL = 10 * time.Minute

// subscriptionIdentities remembers, per Stripe customer, the subscriptions
// this process has seen carry an operator identity, so that the identity
// lookup before each create does not list the customer's subscriptions
// again (1,000 subscriptions on one customer would otherwise cost 10 list
// pages per create).
//
// Why a snapshot is enough: the lookup exists to find subscriptions made
// before this process started working (a cluster rebuilt from Git, a
// restored backup). The first lookup for a customer lists them all
// (status=all, strongly consistent). After that, a subscription with this
// instance's identity can only be made by this process (leader election
// keeps one manager per instance active, and one that loses its lease
// exits), and it adds each one it creates or finds. The snapshot can only
// be late about a subscription that ended since, so a match is read again
// before it is adopted, and the snapshot is listed again after
// identitySnapshotTTL. The create-pending lookup (crash safety) does not
// use it.
type subscriptionIdentities struct {
	mu         sync.Mutex
	byCustomer map[string]*customerSubscriptions
	now        func() time.Time
}

type customerSubscriptions struct {
	mu       sync.Mutex // held while listing, so concurrent creates list once
	listedAt time.Time
	subs     map[string]*stripe.Subscription // ID -> identity-bearing subscription (metadata, created)
}

func (x *subscriptionIdentities) customer(id string) *customerSubscriptions {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byCustomer == nil {
		x.byCustomer = map[string]*customerSubscriptions{}
	}
	c := x.byCustomer[id]
	if c == nil {
		c = &customerSubscriptions{}
		x.byCustomer[id] = c
	}
	return c
}

func (x *subscriptionIdentities) clock() time.Time {
	if x.now != nil {
		return x.now()
	}
	return time.Now()
}

// candidates returns the customer's known live subscriptions, listing them
// with list first when this process has no fresh snapshot.
func (x *subscriptionIdentities) candidates(ctx context.Context, customerID string, list func(context.Context) ([]*stripe.Subscription, error)) ([]*stripe.Subscription, error) {
	c := x.customer(customerID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs == nil || x.clock().Sub(c.listedAt) > identitySnapshotTTL {
		found, err := list(ctx)
		if err != nil {
			return nil, err
		}
		c.subs, c.listedAt = map[string]*stripe.Subscription{}, x.clock()
		for _, s := range found {
			if !subscriptionEnded(s.Status) && len(s.Metadata) > 0 {
				c.subs[s.ID] = identityOf(s)
			}
		}
	}
	out := make([]*stripe.Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		out = append(out, s)
	}
	return out, nil
}

// add records a subscription this process created or found.
func (x *subscriptionIdentities) add(customerID string, s *stripe.Subscription) {
	if s == nil || customerID == "" {
		return
	}
	c := x.customer(customerID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs != nil {
		c.subs[s.ID] = identityOf(s)
	}
}

// identityOf is what the snapshot keeps of a subscription: its ID, status,
// creation time and the identity metadata ownershipOf reads (not the UID,
// which it does not compare), in a map of its own (constant keys; instance,
// kind and namespace shared through unique), so that it
// does not hold the decoded answer's metadata map alive (about 0.5 KiB per
// subscription, for every subscription the process creates).
func identityOf(s *stripe.Subscription) *stripe.Subscription {
	md := make(map[string]string, len(identity.Keys))
	for _, k := range identity.Keys {
		v, ok := s.Metadata[k]
		if !ok || k == identity.KeyUID {
			continue
		}
		switch k {
		case identity.KeyInstance, identity.KeyKind, identity.KeyNamespace:
			v = unique.Make(v).Value()
		}
		md[k] = v
	}
	return &stripe.Subscription{ID: s.ID, Status: s.Status, Created: s.Created, Metadata: md}
}

// drop forgets a subscription that turned out to have ended.
func (x *subscriptionIdentities) drop(customerID, id string) {
	c := x.customer(customerID)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.subs, id)
}
