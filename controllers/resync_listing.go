package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// The core's side of the resync by listing (the rules: resync_lists.go).

// passListing is what one pass's observe took from the lists.
type passListing struct {
	// lists is set while Observe may read listed copies (a resync).
	lists *ResyncLists
	// used counts the listed copies read; at is the start of the oldest
	// list they came from.
	used int
	at   time.Time
}

// resyncPass tells whether a pass over obj is a resync: the last pass
// succeeded for the current generation and no create is pending.
func resyncPass(obj managedObject) bool {
	_, pending := obj.GetAnnotations()[billingv1alpha1.AnnotationCreatePending]
	return obj.GetGeneration() != 0 && obj.GetObservedGeneration() == obj.GetGeneration() && !pending
}

// observe runs the kind's Observe. On a resync, the kind may read its Stripe
// objects from the lists (readListed); when what it observed from listed
// copies would change anything (an error, no bound object, a difference
// from the spec, a change to the resource), the copies are dropped, a fresh
// external client is connected and Observe runs again on reads of its own.
func (m *managedReconciler[O]) observe(ctx context.Context, p *pass[O]) (observation, error) {
	rl := m.lists
	if rl == nil {
		return p.ext.Observe(ctx)
	}
	uid := p.obj.GetUID()
	if !resyncPass(p.obj) {
		obs, err := p.ext.Observe(ctx)
		rl.note(uid, time.Now())
		return obs, err
	}
	before := p.obj.DeepCopyObject().(O)
	p.listing = passListing{lists: rl}
	obs, err := p.ext.Observe(ctx)
	used := p.listing
	p.listing = passListing{}
	if used.used == 0 {
		rl.note(uid, time.Now())
		return obs, err
	}
	if err == nil && obs.bound && obs.replaces == "" && len(obs.diff) == 0 && equality.Semantic.DeepEqual(before, p.obj) {
		rl.note(uid, used.at)
		return obs, nil
	}
	p.obj = before
	p.ext = m.kind.connect(p)
	obs, err = p.ext.Observe(ctx)
	rl.note(uid, time.Now())
	return obs, err
}

// readListed returns Stripe object id: its copy from the newest list of l
// when this pass may use one (a resync, a list newer than the last
// observation, the object in it), else get's read of its own.
func readListed[T any, O managedObject](ctx context.Context, p *pass[O], l *listing[T], id string, get func(context.Context, string) (T, error)) (T, error) {
	if rl := p.listing.lists; rl != nil {
		if x, at, ok := lookup(ctx, rl, l, id, rl.last(p.obj.GetUID())); ok {
			if p.listing.used == 0 || at.Before(p.listing.at) {
				p.listing.at = at
			}
			p.listing.used++
			return x, nil
		}
	}
	return get(ctx, id)
}
