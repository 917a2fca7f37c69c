package stripe

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is the client-side token bucket shared by every caller of one
// Client, plus a pause that a 429 with Retry-After imposes on all callers.
type limiter struct {
	rl       *rate.Limiter
	mu       sync.Mutex
	pauseEnd time.Time
	// now reads the clock for a reservation; tests replace it.
	now func() time.Time
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{rl: rate.NewLimiter(rate.Limit(perSecond), burst), now: time.Now}
}

// wait blocks until the call may go, or fails fast with a RateLimited *Error
// when the wait would outlast ctx's deadline.
func (l *limiter) wait(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	l.mu.Lock()
	pause := time.Until(l.pauseEnd)
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
	// The reservation's "now" is read under l.mu. rate.Limiter.Reserve reads
	// time.Now() before taking its own lock, so under contention a caller
	// holding an earlier instant can reserve after one holding a later
	// instant; the bucket then moves its clock back and credits the same
	// interval twice, letting slightly more than rate x t through.
	l.mu.Lock()
	r := l.rl.ReserveN(l.now(), 1)
	l.mu.Unlock()
	if !r.OK() {
		return 0, &Error{Class: ClassRateLimited, RetryAfter: time.Second, Message: "client-side rate limit"}
	}
	d := r.Delay()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		r.Cancel()
		return 0, &Error{Class: ClassRateLimited, RetryAfter: d, Message: "client-side rate limit"}
	}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			r.Cancel()
			return time.Since(start), ctx.Err()
		case <-t.C:
		}
	}
	return time.Since(start), nil
}

// pauseFor stops all callers for d (a 429's Retry-After).
func (l *limiter) pauseFor(d time.Duration) {
	l.mu.Lock()
	if end := time.Now().Add(d); end.After(l.pauseEnd) {
		l.pauseEnd = end
	}
	l.mu.Unlock()
}

// instrumentedTransport applies the limiter and records metrics around
// every HTTP request stripe-go makes (its own retries included).
type instrumentedTransport struct {
	next    http.RoundTripper
	limiter *limiter
}

func (t *instrumentedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	waited, err := t.limiter.wait(req.Context())
	observeWait(waited)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	status := "error"
	if err == nil {
		if resp.StatusCode == http.StatusTooManyRequests {
			t.limiter.pauseFor(retryAfter(resp.Header))
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
