package stripefake

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Stripe's limits (https://docs.stripe.com/rate-limits), as the fake
// applies them:
//
//   - the global rate (Options.RateLimit, 25 requests/s as in a sandbox);
//   - a rate per endpoint, "each named API operation" (method and path with
//     the object ID as {id}): 25 requests/s unless noted
//     (Options.EndpointRateLimit);
//   - Search: 20 read requests/s, all Search endpoints together
//     (Options.SearchRateLimit);
//   - per subscription: 200 quantity updates an hour, 10 new invoices a
//     minute and 20 a day (Options.SubscriptionQuantityChangesPerHour,
//     Options.SubscriptionInvoicesPerDay). These windows run on wall time,
//     not a test clock: they protect Stripe's servers, whatever the
//     simulated date.
//
// Every 429 carries Stripe-Rate-Limited-Reason (global-rate, endpoint-rate,
// resource-specific) and nothing of the request is applied or saved under
// its idempotency key.

// RateLimitedReasonHeader is the header naming the limit a 429 hit.
const RateLimitedReasonHeader = "Stripe-Rate-Limited-Reason"

// Stripe-Rate-Limited-Reason values the fake sends.
const (
	ReasonGlobalRate       = "global-rate"
	ReasonEndpointRate     = "endpoint-rate"
	ReasonResourceSpecific = "resource-specific"
)

const (
	defaultEndpointRate           = 25
	defaultSearchRate             = 20
	defaultQuantityChangesPerHour = 200
	defaultInvoicesPerDay         = 20
	invoicesPerMinute             = 10
)

// limits is the per-endpoint and per-object state; guarded by Server.mu
// except the token buckets, which lock themselves.
type limits struct {
	endpointRate, searchRate float64
	endpoints                map[string]*rate.Limiter
	search                   *rate.Limiter
	quantityPerHour          int
	invoicesPerDay           int
	// quantityChanges and invoiceTimes are wall times by subscription ID.
	quantityChanges map[string][]time.Time
	invoiceTimes    map[string][]time.Time
}

func newLimits(o Options) limits {
	l := limits{endpoints: map[string]*rate.Limiter{}, quantityChanges: map[string][]time.Time{}, invoiceTimes: map[string][]time.Time{}}
	// Endpoint and Search limits default on when the global limit is on: a
	// test that turns the global limit off (negative RateLimit) wants no
	// limits at all.
	defaultOn := o.RateLimit >= 0
	switch {
	case o.EndpointRateLimit > 0:
		l.endpointRate = o.EndpointRateLimit
	case o.EndpointRateLimit == 0 && defaultOn:
		l.endpointRate = defaultEndpointRate
	}
	switch {
	case o.SearchRateLimit > 0:
		l.searchRate = o.SearchRateLimit
	case o.SearchRateLimit == 0 && defaultOn:
		l.searchRate = defaultSearchRate
	}
	if l.searchRate > 0 {
		l.search = rate.NewLimiter(rate.Limit(l.searchRate), max(1, int(l.searchRate)))
	}
	l.quantityPerHour = o.SubscriptionQuantityChangesPerHour
	if l.quantityPerHour == 0 {
		l.quantityPerHour = defaultQuantityChangesPerHour
	}
	l.invoicesPerDay = o.SubscriptionInvoicesPerDay
	if l.invoicesPerDay == 0 {
		l.invoicesPerDay = defaultInvoicesPerDay
	}
	return l
}

// endpointAllows takes a token from the route's bucket; s.mu is held.
func (s *Server) endpointAllows(route string, search bool) bool {
	if search && s.limits.search != nil {
		return s.limits.search.Allow()
	}
	if s.limits.endpointRate <= 0 {
		return true
	}
	b := s.limits.endpoints[route]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(s.limits.endpointRate), max(1, int(s.limits.endpointRate)))
		s.limits.endpoints[route] = b
	}
	return b.Allow()
}

// recent drops the times older than window and returns the rest.
func recent(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	kept := ts[:0]
	for _, t := range ts {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	return kept
}

// quantityChanged reports whether an update of sub changes the quantity
// of one of its items.
func (s *Server) quantityChanged(r *request, sub *subscription) bool {
	for _, i := range r.indexed("items") {
		key := "items[" + i + "]"
		id, hasID := r.str(key + "[id]")
		qty, hasQty, _ := r.int(key + "[quantity]")
		if !hasID || !hasQty {
			continue
		}
		for _, it := range sub.items {
			if it.id == id && it.quantity != qty {
				return true
			}
		}
	}
	return false
}

// mayInvoice reports whether an update of a subscription can create an
// invoice now: an item change invoiced at once, or a billing cycle reset.
func mayInvoice(r *request) bool {
	p, _ := r.str("proration_behavior")
	anchor, _ := r.str("billing_cycle_anchor")
	return (len(r.indexed("items")) > 0 && p == "always_invoice") || anchor == "now"
}

// resourceLimited checks the per-subscription limits of an update before
// it runs; s.mu is held. It returns a 429 to send, or nil.
func (s *Server) resourceLimited(r *request) *apiError {
	if r.method != http.MethodPost || len(r.path) != 2 || r.path[0] != "subscriptions" {
		return nil
	}
	sub, ok := s.subs[r.path[1]]
	if !ok {
		return nil
	}
	now := s.wall()
	if s.quantityChanged(r, sub) {
		ts := recent(s.limits.quantityChanges[sub.id], now, time.Hour)
		s.limits.quantityChanges[sub.id] = ts
		if len(ts) >= s.limits.quantityPerHour {
			return &apiError{status: http.StatusTooManyRequests, Type: "invalid_request_error", Code: "rate_limit",
				Message: "This subscription has had too many quantity updates in the last hour. Try again later."}
		}
	}
	if mayInvoice(r) {
		ts := recent(s.limits.invoiceTimes[sub.id], now, 24*time.Hour)
		s.limits.invoiceTimes[sub.id] = ts
		lastMinute := len(recent(append([]time.Time(nil), ts...), now, time.Minute))
		if len(ts) >= s.limits.invoicesPerDay || lastMinute >= invoicesPerMinute {
			return &apiError{status: http.StatusTooManyRequests, Type: "invalid_request_error", Code: "rate_limit",
				Message: "Too many invoices have been created for this subscription recently. Try again later."}
		}
	}
	return nil
}

// countResourceUse records what an executed update of a subscription used
// of its limits: a quantity change, and the invoices it created. quantity
// is quantityChanged's answer from before the update; invoicesBefore the
// subscription's invoice count then.
func (s *Server) countResourceUse(subID string, quantity bool, invoicesBefore int) {
	now := s.wall()
	if quantity {
		s.limits.quantityChanges[subID] = append(s.limits.quantityChanges[subID], now)
	}
	for range s.invoicesOf(subID) - invoicesBefore {
		s.limits.invoiceTimes[subID] = append(s.limits.invoiceTimes[subID], now)
	}
}

func (s *Server) invoicesOf(subID string) int {
	n := 0
	for _, in := range s.invoices {
		if in.subscription == subID {
			n++
		}
	}
	return n
}

// Metadata (https://docs.stripe.com/metadata): "You can specify up to 50
// keys, with key names up to 40 characters long and values up to 500
// characters long. Keys and values are stored as strings and can contain
// any character with one exception: you can't use square brackets ([ and
// ]) in keys." An update merges into the object's metadata and a key set to
// "" is removed, so the 50 are counted after the merge. Stripe refuses with
// a 400 invalid_request_error naming the parameter; the messages are the
// fake's own wording.
const (
	maxMetadataKeys     = 50
	maxMetadataKeyLen   = 40
	maxMetadataValueLen = 500
)

// checkMetadata validates the metadata a write sends; s.mu is held.
func (s *Server) checkMetadata(r *request) *apiError {
	if r.method != http.MethodPost {
		return nil
	}
	for k, v := range r.form {
		i := strings.Index(k, "metadata[")
		if i < 0 || !strings.HasSuffix(k, "]") {
			continue
		}
		name := k[i+len("metadata[") : len(k)-1]
		param := k
		if utf8.RuneCountInString(name) > maxMetadataKeyLen {
			return invalid(param, "Metadata keys can have up to %d characters; %q has %d.", maxMetadataKeyLen, name, utf8.RuneCountInString(name))
		}
		if len(v) > 0 && utf8.RuneCountInString(v[0]) > maxMetadataValueLen {
			return invalid(param, "Metadata values can have up to %d characters; the value of %q has %d.", maxMetadataValueLen, name, utf8.RuneCountInString(v[0]))
		}
	}
	upd, present := r.metadata("")
	if !present {
		return nil
	}
	var existing map[string]string
	if len(r.path) == 2 {
		existing = s.metadataOf(r.path[0], r.path[1])
	}
	merged := applyMeta(copyMeta(existing), upd)
	if len(merged) > maxMetadataKeys {
		return invalid("metadata", "Metadata can have up to %d keys; this request would leave %d.", maxMetadataKeys, len(merged))
	}
	return nil
}

// metadataOf is the metadata of an existing object, nil when unknown.
func (s *Server) metadataOf(kind, id string) map[string]string {
	switch kind {
	case "customers":
		if c, ok := s.customers[id]; ok {
			return c.metadata
		}
	case "products":
		if p, ok := s.products[id]; ok {
			return p.metadata
		}
	case "prices":
		if p, ok := s.prices[id]; ok {
			return p.metadata
		}
	case "subscriptions":
		if sub, ok := s.subs[id]; ok {
			return sub.metadata
		}
	}
	return nil
}

// SetSearchUnavailable switches the Search API off (or on again), as for an
// account in a country where Stripe does not offer it: "Search isn't
// available to merchants in India" (https://docs.stripe.com/search). Such an
// account gets a 400 invalid_request_error "The search feature is
// temporarily unavailable in your region." (as reported in
// github.com/SAP-archive/btp-create-api-integrations issue 7).
func (s *Server) SetSearchUnavailable(off bool) {
	s.mu.Lock()
	s.searchOff = off
	s.mu.Unlock()
}

func searchUnavailable() *apiError {
	return &apiError{status: http.StatusBadRequest, Type: "invalid_request_error",
		Message: "The search feature is temporarily unavailable in your region."}
}
