package stripe

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLimiterReservesInClockOrder: a caller can be preempted between reading
// the clock and reserving. If reservations could then be made out of clock
// order, the token bucket would move its clock back and credit the same
// interval twice. Here callers start a millisecond apart and every clock
// read is followed by a random pause of up to 20 ms. 60 callers at 100/s
// with burst 1 must still take at least 59/100 s (less 1 ms for the bucket's
// float arithmetic) from the first clock read to the last grant. Timers
// never fire early, so a busy machine can only make this longer. Reading the
// clock outside the limiter's lock lets them through in about 0.42 s.
func TestLimiterReservesInClockOrder(t *testing.T) {
	l := newLimiter(100, 1)
	var once sync.Once
	var first time.Time
	l.now = func() time.Time {
		n := time.Now()
		once.Do(func() { first = n })
		time.Sleep(time.Duration(rand.IntN(20000)) * time.Microsecond)
		return n
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last time.Time
	for range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.wait(context.Background()); err != nil {
				t.Error(err)
			}
			done := time.Now()
			mu.Lock()
			if done.After(last) {
				last = done
			}
			mu.Unlock()
		}()
		time.Sleep(time.Millisecond) // spread the clock reads
	}
	wg.Wait()
	if got, want := last.Sub(first), 589*time.Millisecond; got < want {
		t.Fatalf("60 grants at 100/s (burst 1) took %v from the first clock read; want at least %v", got, want)
	}
}

// stubTransport answers each request with the status and reason its
// function returns, and records the paths that reached it.
type stubTransport struct {
	mu     sync.Mutex
	paths  []string
	answer func(r *http.Request) (int, string)
}

func (s *stubTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.paths = append(s.paths, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	status, reason := s.answer(r)
	h := http.Header{}
	if reason != "" {
		h.Set(RateLimitedReasonHeader, reason)
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
}

func (s *stubTransport) reached(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.paths {
		if p == path {
			n++
		}
	}
	return n
}

func do(t *testing.T, tr http.RoundTripper, method, path string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(method, "http://stripe.test"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr.RoundTrip(req)
}

// TestResourceSpecificBacksOffOnlyThatObject: a 429 with
// Stripe-Rate-Limited-Reason: resource-specific for one subscription backs
// that subscription off (its next call fails at once, without reaching
// Stripe, for at least the minimum backoff, and the interval doubles while
// the 429s go on), and pauses nobody else: no global or endpoint pause, and
// another subscription's update reaches Stripe.
func TestResourceSpecificBacksOffOnlyThatObject(t *testing.T) {
	stub := &stubTransport{answer: func(r *http.Request) (int, string) {
		if strings.HasSuffix(r.URL.Path, "/sub_capped") {
			return 429, ReasonResourceSpecific
		}
		return 200, ""
	}}
	l := newLimiter(1000, 1000).withEndpointRates(1000, 1000)
	tr := &instrumentedTransport{next: stub, limiter: l}

	resp, err := do(t, tr, "POST", "/v1/subscriptions/sub_capped")
	if err != nil || resp.StatusCode != 429 {
		t.Fatalf("first call: %v %v", resp, err)
	}
	if got := retryAfter(resp.Header); got < resourceBackoffMin {
		t.Fatalf("the 429's Retry-After is %v; want the backoff, at least %v", got, resourceBackoffMin)
	}
	// The capped object is answered at once, without a request, by a 429
	// stripe-go does not retry.
	resp, err = do(t, tr, "GET", "/v1/subscriptions/sub_capped")
	if err != nil || resp.StatusCode != 429 || retryAfter(resp.Header) < time.Second ||
		resp.Header.Get(RateLimitedReasonHeader) != ReasonResourceSpecific || resp.Header.Get("Stripe-Should-Retry") != "false" {
		t.Fatalf("call for the backed-off subscription: got %v %v, want a 429 with Retry-After", resp, err)
	}
	if n := stub.reached("GET /v1/subscriptions/sub_capped"); n != 0 {
		t.Fatalf("a call for the backed-off subscription reached Stripe %d times", n)
	}
	// Others are not paused: same endpoint, another object.
	resp, err = do(t, tr, "POST", "/v1/subscriptions/sub_other")
	if err != nil || resp.StatusCode != 200 || stub.reached("POST /v1/subscriptions/sub_other") != 1 {
		t.Fatalf("another subscription's update: %v %v", resp, err)
	}
	l.mu.Lock()
	globalPause, famPause := l.pauseEnd, l.families[endpointOf("POST", "/v1/subscriptions/sub_other")].pauseEnd
	l.mu.Unlock()
	if !globalPause.IsZero() || !famPause.IsZero() {
		t.Fatalf("a resource-specific 429 paused others: global until %v, endpoint until %v", globalPause, famPause)
	}
	if g, r := l.counts(); g != 0 || r != 1 {
		t.Fatalf("counts: %d global pauses, %d resource backoffs; want 0 and 1", g, r)
	}
	// The interval grows while the 429s go on, reads in between (which
	// succeed) notwithstanding.
	l.mu.Lock()
	first := l.resources["subscriptions/sub_capped"].interval
	l.resources["subscriptions/sub_capped"].until = time.Time{} // the backoff has run out
	l.mu.Unlock()
	stub.answer = func(r *http.Request) (int, string) {
		if r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/sub_capped") {
			return 429, ReasonResourceSpecific
		}
		return 200, ""
	}
	if resp, err := do(t, tr, "GET", "/v1/subscriptions/sub_capped"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("read after the backoff: %v %v", resp, err)
	}
	resp, _ = do(t, tr, "POST", "/v1/subscriptions/sub_capped")
	if got := retryAfter(resp.Header); got < 2*first {
		t.Fatalf("second backoff %v; want at least twice the first (%v)", got, first)
	}
	// A write that goes through ends the backoff.
	l.mu.Lock()
	l.resources["subscriptions/sub_capped"].until = time.Time{}
	l.mu.Unlock()
	stub.answer = func(*http.Request) (int, string) { return 200, "" }
	_, _ = do(t, tr, "POST", "/v1/subscriptions/sub_capped")
	l.mu.Lock()
	_, still := l.resources["subscriptions/sub_capped"]
	l.mu.Unlock()
	if still {
		t.Fatal("a successful write did not end the backoff")
	}
}

// TestGlobalReasonsPauseEveryCaller: a global-rate 429 (or one without a
// reason) pauses every caller for Retry-After; an endpoint-rate 429 pauses
// only that endpoint.
func TestGlobalReasonsPauseEveryCaller(t *testing.T) {
	for _, reason := range []string{ReasonGlobalRate, ReasonGlobalConcurrency, ""} {
		stub := &stubTransport{answer: func(r *http.Request) (int, string) {
			if strings.HasSuffix(r.URL.Path, "/cus_a") {
				return 429, reason
			}
			return 200, ""
		}}
		l := newLimiter(1000, 1000).withEndpointRates(1000, 1000)
		tr := &instrumentedTransport{next: stub, limiter: l}
		_, _ = do(t, tr, "GET", "/v1/customers/cus_a")
		start := time.Now()
		if _, err := do(t, tr, "POST", "/v1/subscriptions/sub_b"); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < 900*time.Millisecond {
			t.Fatalf("reason %q: another endpoint's call went after %v; want the global pause (1 s)", reason, waited)
		}
		if g, _ := l.counts(); g != 1 {
			t.Fatalf("reason %q: %d global pauses, want 1", reason, g)
		}
	}
}

func TestEndpointReasonPausesOnlyThatEndpoint(t *testing.T) {
	stub := &stubTransport{answer: func(r *http.Request) (int, string) {
		if r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/customers/") {
			return 429, ReasonEndpointRate
		}
		return 200, ""
	}}
	l := newLimiter(1000, 1000).withEndpointRates(1000, 1000)
	tr := &instrumentedTransport{next: stub, limiter: l}
	_, _ = do(t, tr, "GET", "/v1/customers/cus_a")
	l.mu.Lock()
	globalPause := l.pauseEnd
	famPause := l.families[endpointOf("GET", "/v1/customers/cus_b")].pauseEnd
	l.mu.Unlock()
	if !globalPause.IsZero() {
		t.Fatalf("an endpoint-rate 429 paused every caller")
	}
	if time.Until(famPause) <= 0 {
		t.Fatalf("an endpoint-rate 429 did not pause its endpoint")
	}
	start := time.Now()
	_, _ = do(t, tr, "GET", "/v1/customers/cus_b")
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("the same endpoint went after %v; want its pause (1 s)", waited)
	}
}

// TestEndpointPacing: 40 requests to one endpoint at 20/s (burst 5) take at
// least 35/20 s, however fast the global bucket is; Search endpoints share
// one bucket at the Search rate.
func TestEndpointPacing(t *testing.T) {
	stub := &stubTransport{answer: func(*http.Request) (int, string) { return 200, "" }}
	l := newLimiter(1e6, 1e6).withEndpointRates(20, 10)
	tr := &instrumentedTransport{next: stub, limiter: l}
	start := time.Now()
	for i := range 40 {
		if _, err := do(t, tr, "GET", "/v1/customers/cus_"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := time.Since(start), 35*time.Second/20-10*time.Millisecond; got < want {
		t.Fatalf("40 requests to one endpoint at 20/s took %v; want at least %v", got, want)
	}
	start = time.Now()
	for i := range 12 {
		path := "/v1/customers/search"
		if i%2 == 1 {
			path = "/v1/products/search"
		}
		if _, err := do(t, tr, "GET", path); err != nil {
			t.Fatal(err)
		}
	}
	// Burst max(1, 10/4) = 2: 10 more at 10/s.
	if got, want := time.Since(start), time.Second-10*time.Millisecond; got < want {
		t.Fatalf("12 Search requests at 10/s took %v; want at least %v", got, want)
	}
}
