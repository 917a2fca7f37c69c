package stripe

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/identity"
)

// The adoption lookup (SearchCustomersByIdentity, SearchProductsByIdentity)
// asks the Search API first. Search is not offered everywhere: "Search
// isn't available to merchants in India" (https://docs.stripe.com/search,
// supported countries); such an account gets a 400 ("The search feature is
// temporarily unavailable in your region."). Search can also fail like any
// endpoint (a 5xx, its own 20 requests/s limit). In every such case the
// lookup falls back to a paged list of all objects of the kind, filtered by
// the same identity clauses as the Search query. The list is shared by the
// lookups of the next minute (fallbackMaxAge), so a burst of first creates
// costs one list, not one each: a minute is the staleness Stripe states for
// Search itself ("data is generally searchable in under a minute"), and the
// adoption lookup, like Search, is for objects made long ago (a rebuilt
// cluster's). Crash safety never depends on it: a create that may have gone
// through is found by FindCustomerByOwner / FindProductByOwner, strongly
// consistent lists.
//
// A 400 from Search (unavailable for the account) turns Search off for this
// client for searchOffFor, so an account without Search does not pay a
// failed Search per lookup; it is asked again after that.

const (
	fallbackMaxAge = time.Minute
	searchOffFor   = time.Hour
)

// listCache holds the objects of one kind that carry an identity, from one
// whole list.
type listCache[T any] struct {
	mu    sync.Mutex
	at    time.Time
	items []T
}

// get returns the cached list when it is younger than maxAge, else lists
// again; concurrent callers wait for one list.
func (lc *listCache[T]) get(ctx context.Context, maxAge time.Duration, list func(ctx context.Context, fn func(T) error) error, keep func(T) bool) ([]T, error) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if !lc.at.IsZero() && time.Since(lc.at) < maxAge {
		return lc.items, nil
	}
	start := time.Now()
	var items []T
	if err := list(ctx, func(x T) error {
		if keep(x) {
			items = append(items, x)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	lc.items, lc.at = items, start
	return items, nil
}

// identityLookups is the state of the adoption lookup of one Client.
type identityLookups struct {
	// searchOffUntil (Unix nanoseconds) skips Search until then.
	searchOffUntil atomic.Int64
	// fallbacks counts lookups answered from a list (tests).
	fallbacks atomic.Int64
	customers listCache[*Customer]
	products  listCache[*Product]
}

// useSearch reports whether to ask Search first.
func (l *identityLookups) useSearch() bool {
	return time.Now().UnixNano() >= l.searchOffUntil.Load()
}

// searchFailed decides whether a Search error falls back to a list, and
// turns Search off for a while when the account does not have it.
func (l *identityLookups) searchFailed(err error) bool {
	var se *Error
	if errors.Is(err, context.Canceled) || (errors.As(err, &se) && (se.Class == ClassAuth || se.Class == ClassRateLimited)) {
		// A rate-limited Search is retried by the caller later: falling
		// back would turn one call into a list of every object.
		return false
	}
	if errors.As(err, &se) && se.HTTPStatus == 400 {
		l.searchOffUntil.Store(time.Now().Add(searchOffFor).UnixNano())
	}
	l.fallbacks.Add(1)
	return true
}

// hasIdentity reports whether md carries owner's identity, by the
// identity rule (internal/identity). It finds what identityQuery finds, and
// also objects written before the instance and kind keys existed, which
// Search cannot ask for (a clause cannot match an absent key); the caller
// checks every match by the same rule.
func hasIdentity(owner Owner, md map[string]string) bool {
	own, _ := identity.OwnershipOf(owner, md)
	return own == identity.OwnedHere
}

func carriesIdentity(md map[string]string) bool {
	_, ok := identity.Read(md, "", "")
	return ok
}

// SearchFallbacks is the number of adoption lookups answered from a list
// because Search was unavailable or failed.
func (c *Client) SearchFallbacks() int64 { return c.lookups.fallbacks.Load() }

// identityLookup is the adoption lookup of one object type.
type identityLookup[T any] struct {
	// what names the type in logs, e.g. "customer".
	what   string
	search func(ctx context.Context, owner Owner) ([]T, error)
	// cache, list, live and metadata make the fallback: the objects that
	// are live and carry an identity, from a whole list.
	cache    *listCache[T]
	list     func(ctx context.Context, fn func(T) error) error
	live     func(T) bool
	metadata func(T) map[string]string
}

// lookupByIdentity asks Search for the objects that carry owner's identity,
// or, where Search is unavailable or fails, filters a whole list (shared for
// fallbackMaxAge) by the identity rule.
func lookupByIdentity[T any](ctx context.Context, c *Client, owner Owner, l identityLookup[T]) ([]T, error) {
	if c.lookups.useSearch() {
		out, err := l.search(ctx, owner)
		if err == nil || !c.lookups.searchFailed(err) {
			return out, err
		}
		c.log.V(1).Info("Search failed; looking the "+l.what+" up in a list", "error", err.Error())
	}
	found, err := l.cache.get(ctx, fallbackMaxAge, l.list, func(x T) bool { return l.live(x) && carriesIdentity(l.metadata(x)) })
	if err != nil {
		return nil, err
	}
	var out []T
	for _, x := range found {
		if hasIdentity(owner, l.metadata(x)) {
			out = append(out, x)
		}
	}
	return out, nil
}
