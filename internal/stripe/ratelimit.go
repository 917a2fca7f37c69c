package stripe

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Stripe's limits, as Stripe applies them (https://docs.stripe.com/rate-limits):
//
//   - a global rate per account (100 requests/s live, 25 in a sandbox);
//   - a rate per endpoint, "each named API operation" (method and path:
//     "requests to GET /v1/payment_intents/{id} for different IDs count
//     toward the same endpoint limit"), 25 requests/s unless noted;
//   - Search: 20 read requests/s;
//   - limits on one object, such as one subscription's 200 quantity changes
//     an hour and 20 new invoices a day.
//
// Every 429 carries Stripe-Rate-Limited-Reason: global-rate,
// global-concurrency, endpoint-rate, endpoint-concurrency or
// resource-specific. A 429 with code lock_timeout is a lock on one object,
// not a limit; stripe-go retries it.
//
// The limiter paces every request by the global bucket and by its
// endpoint's bucket (Search endpoints share one bucket). On a 429 it reacts
// to the reason: a global reason (or none) pauses every caller for
// Retry-After (or one second); an endpoint reason pauses only that
// endpoint, since Stripe counts the limit per endpoint; resource-specific
// backs off only that object (its ID in the path, or the endpoint for a
// create) for a growing interval, and a call for it is answered at once,
// without a request, by a 429 like Stripe's (a RateLimited *Error for the
// caller) instead of waiting, so it never holds a worker or a token that
// other callers need.

// RateLimitedReasonHeader is the header naming the limit a 429 hit.
const RateLimitedReasonHeader = "Stripe-Rate-Limited-Reason"

// Stripe-Rate-Limited-Reason values (https://docs.stripe.com/rate-limits).
const (
	ReasonGlobalRate          = "global-rate"
	ReasonGlobalConcurrency   = "global-concurrency"
	ReasonEndpointRate        = "endpoint-rate"
	ReasonEndpointConcurrency = "endpoint-concurrency"
	ReasonResourceSpecific    = "resource-specific"
)

// Resource backoff: the first resource-specific 429 backs the object off
// for resourceBackoffMin (or Retry-After when longer); each further one in
// a row doubles it, up to resourceBackoffMax. A write (POST, DELETE) that
// succeeds for the object ends the backoff; a read does not, since Stripe's
// per-object limits count changes (quantity updates, new invoices).
const (
	resourceBackoffMin = 2 * time.Second
	resourceBackoffMax = 15 * time.Minute
)

// searchFamily is the endpoint bucket shared by all Search endpoints.
const searchFamily = "search"

// limiter is the client-side pacing shared by every caller of one Client:
// a global token bucket, a bucket per endpoint, the pauses 429s impose and
// the backoff of single objects.
type limiter struct {
	rl *rate.Limiter
	// endpointRate and searchRate are the per-endpoint and Search rates;
	// 0 means no per-endpoint pacing.
	endpointRate, searchRate float64

	mu       sync.Mutex
	pauseEnd time.Time
	// families are the endpoint buckets, by endpoint family.
	families map[string]*family
	// resources are the objects backed off after resource-specific 429s.
	resources map[string]*resourceBackoff
	// globalPauses counts 429s that paused every caller; resourceBackoffs
	// counts resource-specific 429s (tests and metrics).
	globalPauses, resourceBackoffs int
	// now reads the clock for a reservation; tests replace it.
	now func() time.Time
}

type family struct {
	rl       *rate.Limiter
	pauseEnd time.Time
}

type resourceBackoff struct {
	until    time.Time
	interval time.Duration
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{rl: rate.NewLimiter(rate.Limit(perSecond), burst), now: time.Now,
		families: map[string]*family{}, resources: map[string]*resourceBackoff{}}
}

// withEndpointRates turns on per-endpoint pacing.
func (l *limiter) withEndpointRates(endpoint, search float64) *limiter {
	l.endpointRate, l.searchRate = endpoint, search
	return l
}

// endpointOf is the endpoint family of a request: method and path with
// object IDs as {id}; all Search endpoints are one family.
func endpointOf(method, path string) string {
	if strings.HasSuffix(path, "/search") {
		return searchFamily
	}
	return method + " " + pathTemplate(path)
}

// resourceOf is the object a request addresses: the ID after the resource
// name (/v1/subscriptions/sub_123/...), or the endpoint for a request that
// names none (a create, a list).
func resourceOf(method, path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) >= 3 && parts[0] == "v1" && parts[1] != "test_helpers" && strings.Contains(parts[2], "_") {
		return parts[1] + "/" + parts[2]
	}
	return endpointOf(method, path)
}

// familyLocked returns the bucket of an endpoint family, nil when there is
// no per-endpoint pacing; l.mu is held.
func (l *limiter) familyLocked(name string) *family {
	r := l.endpointRate
	if name == searchFamily && l.searchRate > 0 {
		r = l.searchRate
	}
	if r <= 0 {
		return nil
	}
	f := l.families[name]
	if f == nil {
		f = &family{rl: rate.NewLimiter(rate.Limit(r), max(1, int(r/4)))}
		l.families[name] = f
	}
	return f
}

// wait blocks until the call may go, or fails fast with a RateLimited *Error
// when the wait would outlast ctx's deadline.
func (l *limiter) wait(ctx context.Context) (time.Duration, error) {
	return l.waitFor(ctx, "", "")
}

// waitFor is wait for one request: its endpoint's pause and bucket apply
// too.
func (l *limiter) waitFor(ctx context.Context, endpoint, resource string) (time.Duration, error) {
	start := time.Now()
	l.mu.Lock()
	pause := time.Until(l.pauseEnd)
	var fam *family
	if endpoint != "" {
		fam = l.familyLocked(endpoint)
		if fam != nil {
			pause = max(pause, time.Until(fam.pauseEnd))
		}
	}
	l.mu.Unlock()
	if pause > 0 {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < pause {
			return 0, &Error{Class: ClassRateLimited, RetryAfter: pause, Message: "client-side rate limit: Stripe asked to slow down"}
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Since(start), ctx.Err()
		case <-t.C:
		}
	}
	// The reservations' "now" is read under l.mu. rate.Limiter.Reserve reads
	// time.Now() before taking its own lock, so under contention a caller
	// holding an earlier instant can reserve after one holding a later
	// instant; the bucket then moves its clock back and credits the same
	// interval twice, letting slightly more than rate x t through. Both
	// buckets are reserved at the same instant, and the call waits for the
	// later of the two.
	l.mu.Lock()
	now := l.now()
	r := l.rl.ReserveN(now, 1)
	var fr *rate.Reservation
	if fam != nil {
		fr = fam.rl.ReserveN(now, 1)
	}
	l.mu.Unlock()
	cancel := func() {
		r.Cancel()
		if fr != nil {
			fr.Cancel()
		}
	}
	if !r.OK() || (fr != nil && !fr.OK()) {
		cancel()
		return 0, &Error{Class: ClassRateLimited, RetryAfter: time.Second, Message: "client-side rate limit"}
	}
	d := r.Delay()
	if fr != nil {
		d = max(d, fr.Delay())
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		cancel()
		return 0, &Error{Class: ClassRateLimited, RetryAfter: d, Message: "client-side rate limit"}
	}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			cancel()
			return time.Since(start), ctx.Err()
		case <-t.C:
		}
	}
	return time.Since(start), nil
}

// backedOff returns how long resource is still backed off, 0 when not.
func (l *limiter) backedOff(resource string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.resources[resource]; b != nil {
		return max(time.Until(b.until), 0)
	}
	return 0
}

// pauseFor stops all callers for d (a 429's Retry-After).
func (l *limiter) pauseFor(d time.Duration) {
	l.mu.Lock()
	if end := time.Now().Add(d); end.After(l.pauseEnd) {
		l.pauseEnd = end
	}
	l.globalPauses++
	l.mu.Unlock()
}

// pauseEndpoint stops the callers of one endpoint family for d. Without
// per-endpoint pacing it pauses every caller.
func (l *limiter) pauseEndpoint(endpoint string, d time.Duration) {
	l.mu.Lock()
	f := l.familyLocked(endpoint)
	if f == nil {
		l.mu.Unlock()
		l.pauseFor(d)
		return
	}
	if end := time.Now().Add(d); end.After(f.pauseEnd) {
		f.pauseEnd = end
	}
	l.mu.Unlock()
}

// backOffResource backs one object off after a resource-specific 429 and
// returns for how long: at least retryAfter, and twice as long as the last
// time while the 429s go on.
func (l *limiter) backOffResource(resource string, retryAfter time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.resourceBackoffs++
	b := l.resources[resource]
	if b == nil {
		b = &resourceBackoff{}
		l.resources[resource] = b
	}
	next := resourceBackoffMin
	if b.interval > 0 {
		next = min(2*b.interval, resourceBackoffMax)
	}
	next = max(next, retryAfter)
	b.interval = next
	b.until = time.Now().Add(next)
	return next
}

// succeeded ends an object's backoff.
func (l *limiter) succeeded(resource string) {
	l.mu.Lock()
	if len(l.resources) > 0 {
		delete(l.resources, resource)
	}
	l.mu.Unlock()
}

// counts returns the number of global pauses and of resource backoffs.
func (l *limiter) counts() (globalPauses, resourceBackoffs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.globalPauses, l.resourceBackoffs
}

// instrumentedTransport applies the limiter and records metrics around
// every HTTP request stripe-go makes (its own retries included).
type instrumentedTransport struct {
	next    http.RoundTripper
	limiter *limiter
}

func (t *instrumentedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	endpoint, resource := endpointOf(req.Method, req.URL.Path), resourceOf(req.Method, req.URL.Path)
	if left := t.limiter.backedOff(resource); left > 0 {
		return backoffResponse(req, left), nil
	}
	waited, err := t.limiter.waitFor(req.Context(), endpoint, resource)
	observeWait(waited)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	status := "error"
	if err == nil {
		if resp.StatusCode == http.StatusTooManyRequests {
			t.onTooManyRequests(resp, endpoint, resource)
		} else if resp.StatusCode < 300 && req.Method != http.MethodGet {
			t.limiter.succeeded(resource)
		}
		status = itoa(resp.StatusCode)
		if resp.Header.Get("Idempotent-Replayed") == "true" {
			observeReplay(req.Method, pathTemplate(req.URL.Path))
		}
	}
	countCall(req.Context())
	observeRequest(req.Method, pathTemplate(req.URL.Path), status, time.Since(start))
	return resp, err
}

// backoffResponse is the answer to a request for a backed-off object,
// made here without sending it: a 429 like the one Stripe gave, with the
// time left as Retry-After and Stripe-Should-Retry: false, so stripe-go
// hands it back at once instead of retrying it (as it would a transport
// error), and the caller gets a RateLimited *Error.
func backoffResponse(req *http.Request, left time.Duration) *http.Response {
	body := `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Not sent: Stripe limits requests for this object (` +
		ReasonResourceSpecific + `); the client backs it off."}}`
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", strconv.Itoa(int((left+time.Second-1)/time.Second)))
	h.Set(RateLimitedReasonHeader, ReasonResourceSpecific)
	h.Set("Stripe-Should-Retry", "false")
	return &http.Response{StatusCode: http.StatusTooManyRequests, Status: "429 Too Many Requests", Header: h,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
}

// onTooManyRequests applies a 429 by its Stripe-Rate-Limited-Reason. A 429
// without the header (lock_timeout, which stripe-go retries, or an older
// Stripe) keeps the global pause. For a resource-specific 429 the backoff
// is written into the response's Retry-After, so the *Error the caller gets
// tells the reconciler when to come back.
func (t *instrumentedTransport) onTooManyRequests(resp *http.Response, endpoint, resource string) {
	after := retryAfter(resp.Header)
	switch resp.Header.Get(RateLimitedReasonHeader) {
	case ReasonResourceSpecific:
		if resource == endpoint {
			// No object in the path (a create): backing the whole endpoint
			// off for a growing interval would stop every other object's
			// creates; only Retry-After pauses it.
			t.limiter.pauseEndpoint(endpoint, after)
			return
		}
		d := t.limiter.backOffResource(resource, after)
		resp.Header.Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	case ReasonEndpointRate, ReasonEndpointConcurrency:
		t.limiter.pauseEndpoint(endpoint, after)
	default:
		t.limiter.pauseFor(after)
	}
}
