package webhookserver

import (
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// maxOwnWrites bounds how many written objects ownWrites holds at once, and
// ownWriteTTL how long one is kept: the informer cache normally catches up
// within milliseconds, and an entry dropped early costs at most a conflict.
const (
	maxOwnWrites = 1024
	ownWriteTTL  = 5 * time.Second
)

// ownWrites remembers, per StripeSubscription, the object this server's last
// status write returned, until the informer cache has caught up with it.
//
// Events for one subscription often arrive faster than the cache sees the
// write of the one before (Stripe sends several per change, and retries).
// Judged on the cache, the next event would be written with the replaced
// resourceVersion, conflict, and cost a read and a second write. The object
// the API server answered the write with is at least as new as the cache
// whenever the cache still shows the resourceVersion that write replaced, so
// it is used instead. resourceVersions are compared only for equality, as
// they are opaque: once the cache shows anything else (this write, or one
// by another writer), the cache is used again and the entry is dropped. A
// stale entry costs at most a conflict and a fresh read, as a stale cache
// would.
type ownWrites struct {
	mu        sync.Mutex
	m         map[types.UID]ownWrite
	lastSweep time.Time
}

type ownWrite struct {
	// superseded are the resourceVersions this server's chain of writes
	// replaced, oldest first: the one the first write replaced, each
	// intermediate write's (the status write an annotation write
	// followed), and, while each write replaced the previous one's answer,
	// those of earlier events. A cache showing any of them has not seen
	// the last write. At most maxSuperseded.
	superseded []string
	obj        *billingv1alpha1.StripeSubscription
	at         time.Time
}

// maxSuperseded bounds the chain one entry remembers: a cache that lags
// more writes than this costs one conflict and a retry.
const maxSuperseded = 16

// newer returns this server's own later write of cached when the cache has
// not seen it yet, else cached. The result is shared: copy it before
// changing it.
func (w *ownWrites) newer(cached *billingv1alpha1.StripeSubscription) (*billingv1alpha1.StripeSubscription, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.m[cached.UID]
	switch {
	case !ok:
		return cached, false
	case slices.Contains(e.superseded, cached.ResourceVersion):
		return e.obj, true
	default:
		delete(w.m, cached.UID)
		return cached, false
	}
}

// record notes a successful status write: written is the object the API
// server answered with, replaced the resourceVersion it was written over.
// written must not be changed afterwards.
func (w *ownWrites) record(replaced string, written *billingv1alpha1.StripeSubscription, now time.Time) {
	w.recordVia(replaced, "", written, now)
}

// recordVia notes two writes of one event, the status and then the
// annotations: replaced is the resourceVersion the first replaced, via the
// one the first wrote (and the second replaced), written the second's
// answer.
func (w *ownWrites) recordVia(replaced, via string, written *billingv1alpha1.StripeSubscription, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.UID]ownWrite{}
	}
	if now.Sub(w.lastSweep) > ownWriteTTL {
		// Entries whose object no event has touched since are dropped, so
		// that no copy of an object outlives the cache's own for long.
		for uid, e := range w.m {
			if now.Sub(e.at) > ownWriteTTL {
				delete(w.m, uid)
			}
		}
		w.lastSweep = now
	}
	if _, ok := w.m[written.UID]; !ok && len(w.m) >= maxOwnWrites {
		for uid := range w.m {
			delete(w.m, uid)
			break
		}
	}
	// Kept only to be judged and patched; managedFields (which the cache's
	// transform drops too) would only hold memory.
	written.ManagedFields = nil
	var superseded []string
	if e, ok := w.m[written.UID]; ok && (e.obj.ResourceVersion == replaced || (via != "" && e.obj.ResourceVersion == via)) {
		// This write followed the last one recorded (directly, or through
		// the event's own status write): a cache still showing a version
		// that one superseded is behind this write too.
		superseded = append(superseded, e.superseded...)
	}
	for _, rv := range []string{replaced, via} {
		if rv != "" && !slices.Contains(superseded, rv) {
			superseded = append(superseded, rv)
		}
	}
	if len(superseded) > maxSuperseded {
		superseded = superseded[len(superseded)-maxSuperseded:]
	}
	w.m[written.UID] = ownWrite{superseded: superseded, obj: written, at: now}
}
