package stripefake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
)

// Options configure a Server.
type Options struct {
	// RateLimit is requests per second; 0 means 25 (Stripe test mode), a
	// negative value means unlimited.
	RateLimit float64
	// Start is the initial test-clock time; zero means time.Now().
	Start time.Time
	// Logger is optional.
	Logger logr.Logger
	// SearchIndexDelay is how long after a write an object stays invisible
	// to the Search API (on the fake's clock); Stripe says "under a minute"
	// and promises nothing. 0 means one minute; negative means at once.
	SearchIndexDelay time.Duration
	// EndpointRateLimit is requests per second to one endpoint (method and
	// path); 0 means 25 (Stripe's) when RateLimit is not negative, else
	// unlimited; negative means unlimited. See limits.go.
	EndpointRateLimit float64
	// SearchRateLimit is requests per second to all Search endpoints; 0
	// means 20 (Stripe's) when RateLimit is not negative, else unlimited;
	// negative means unlimited.
	SearchRateLimit float64
	// SubscriptionQuantityChangesPerHour limits quantity updates of one
	// subscription per wall-clock hour; 0 means 200 (Stripe's).
	SubscriptionQuantityChangesPerHour int
	// SubscriptionInvoicesPerDay limits the invoices updates create for one
	// subscription per wall-clock day; 0 means 20 (Stripe's).
	SubscriptionInvoicesPerDay int
	// SearchUnavailable starts the server with Search switched off (see
	// SetSearchUnavailable).
	SearchUnavailable bool
	// WallClock is the real time (idempotency window, rate limit windows),
	// as opposed to the test clock; nil means time.Now. Tests replace it.
	WallClock func() time.Time
}

// Fault makes matching requests fail or slow down.
type Fault struct {
	// Method matches the HTTP method, "" any.
	Method string
	// Path is a path prefix such as "/v1/customers", "" any.
	Path string
	// Status is the error status to answer (500, 503, 429); 0 answers
	// normally after Latency.
	Status int
	// RetryAfter is sent with a 429.
	RetryAfter time.Duration
	// Rate is the share of matching requests affected, 0 or 1 meaning all.
	Rate float64
	// Count limits the fault to the first Count matching requests; 0 means
	// unlimited.
	Count int
	// Latency is added before answering.
	Latency time.Duration
	// Timeout holds the request until the client gives up.
	Timeout bool
	// RateLimitedReason is the Stripe-Rate-Limited-Reason of a 429; ""
	// means global-rate.
	RateLimitedReason string
	// AfterExecute makes a write execute first and then answer Status (a
	// 500 after Stripe did the work). Stripe saves that answer under the
	// request's idempotency key like any other response of an endpoint that
	// started executing.
	AfterExecute bool
}

type faultEntry struct {
	Fault
	used int
}

// Stats counts what the server saw.
type Stats struct {
	// Requests by "METHOD /v1/route/{id}".
	Requests map[string]int
	// Writes is the number of POST and DELETE requests that reached a
	// handler (faults and rate limits excluded).
	Writes int
	// Creates by kind: customer, product, price, subscription, invoice.
	Creates map[string]int
	// Objects by kind (deleted customers and canceled subscriptions count).
	Objects map[string]int
	// Replays is the number of idempotent replays served.
	Replays int
	// RateLimited is the number of 429s the rate limits answered.
	RateLimited int
	// RateLimitedByReason counts those 429s by Stripe-Rate-Limited-Reason.
	RateLimitedByReason map[string]int
}

// idemEntry is a saved response to an idempotency key. Stripe keeps it for
// 24 hours (https://docs.stripe.com/api/idempotent_requests): "Idempotency
// keys ... are eligible to be removed from the system automatically after
// they're at least 24 hours old".
type idemEntry struct {
	fingerprint string
	status      int
	body        []byte
	saved       time.Time
}

// idempotencyTTL is how long Stripe keeps a saved response.
const idempotencyTTL = 24 * time.Hour

// Server is the fake Stripe.
type Server struct {
	mu      sync.Mutex
	opts    Options
	log     logr.Logger
	now     time.Time
	seq     int
	limiter *rate.Limiter
	// limits are the per-endpoint and per-subscription limits (limits.go).
	limits limits
	// searchOff makes Search answer as for an account without it.
	searchOff bool
	// wall is the real time, for what Stripe runs on wall time.
	wall func() time.Time

	customers map[string]*customer
	products  map[string]*product
	prices    map[string]*price
	subs      map[string]*subscription
	invoices  map[string]*invoice
	// paymentMethods are the PaymentMethods made by attaching test tokens.
	paymentMethods map[string]*paymentMethod
	testClocks     map[string]*testClock
	order          map[string][]string // kind -> IDs in creation order

	idem     map[string]idemEntry
	inFlight map[string]bool // idempotency keys of requests being served
	faults   []*faultEntry
	stats    Stats
	// charges are the payment attempts made (dunning.go); dunningEnd is
	// the account's setting for exhausted retries.
	charges    []Charge
	dunningEnd string

	events    []Event
	endpoints []*endpoint
	// webhookEndpoints are the endpoints created through the API.
	webhookEndpoints *webhookEndpointStore
	delivery         atomic.Pointer[Delivery]

	// schedules are the subscription schedules (schedules.go).
	schedules map[string]*subSchedule
	// rates are the tax rates (tax.go).
	rates map[string]*taxRate
	// couponsState holds coupons and promotion codes (coupons.go).
	couponsState *couponState
	// refunds and the amount refunded per charge (finance.go).
	refunds  map[string]*refund
	refunded map[string]int64

	httpSrv  *http.Server
	testSrv  *httptest.Server
	url      string
	reqCount int
}

// New returns a Server; serve it with Handler, Serve or NewTestServer.
func New(opts Options) *Server {
	s := &Server{
		opts: opts, log: opts.Logger,
		customers: map[string]*customer{}, products: map[string]*product{}, prices: map[string]*price{},
		subs: map[string]*subscription{}, invoices: map[string]*invoice{}, order: map[string][]string{},
		paymentMethods: map[string]*paymentMethod{}, testClocks: map[string]*testClock{},
		idem: map[string]idemEntry{}, inFlight: map[string]bool{},
		stats:  Stats{Requests: map[string]int{}, Creates: map[string]int{}, Objects: map[string]int{}, RateLimitedByReason: map[string]int{}},
		limits: newLimits(opts), searchOff: opts.SearchUnavailable, wall: opts.WallClock,
	}
	if s.wall == nil {
		s.wall = time.Now
	}
	s.delivery.Store(&Delivery{MaxAttempts: 8, RetryBackoff: 50 * time.Millisecond})
	if s.log.GetSink() == nil {
		s.log = logr.Discard()
	}
	switch {
	case opts.SearchIndexDelay == 0:
		s.opts.SearchIndexDelay = time.Minute
	case opts.SearchIndexDelay < 0:
		s.opts.SearchIndexDelay = 0
	}
	s.now = opts.Start
	if s.now.IsZero() {
		s.now = time.Now()
	}
	s.now = s.now.Truncate(time.Second)
	switch {
	case opts.RateLimit == 0:
		s.limiter = rate.NewLimiter(25, 25)
	case opts.RateLimit > 0:
		s.limiter = rate.NewLimiter(rate.Limit(opts.RateLimit), max(1, int(opts.RateLimit)))
	}
	return s
}

// NewTestServer starts a Server on an httptest listener, closed at cleanup.
func NewTestServer(t testing.TB, opts Options) *Server {
	s := New(opts)
	s.testSrv = httptest.NewServer(s.Handler())
	s.url = s.testSrv.URL
	t.Cleanup(s.Close)
	return s
}

// Serve serves on l until Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + l.Addr().String()
	srv := s.httpSrv
	s.mu.Unlock()
	err := srv.Serve(l)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// URL is the base URL to give stripe-go.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Close stops serving and delivering.
func (s *Server) Close() {
	s.mu.Lock()
	for _, e := range s.endpoints {
		e.stop()
	}
	s.endpoints = nil
	srv, ts := s.httpSrv, s.testSrv
	s.mu.Unlock()
	if ts != nil {
		ts.CloseClientConnections()
		ts.Close()
	}
	if srv != nil {
		_ = srv.Close()
	}
}

// Now is the test clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// InjectFault adds a fault; the returned func removes it.
func (s *Server) InjectFault(f Fault) (remove func()) {
	fe := &faultEntry{Fault: f}
	s.mu.Lock()
	s.faults = append(s.faults, fe)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, x := range s.faults {
			if x == fe {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
				return
			}
		}
	}
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stats{Requests: map[string]int{}, Creates: map[string]int{}, Objects: map[string]int{},
		Writes: s.stats.Writes, Replays: s.stats.Replays, RateLimited: s.stats.RateLimited, RateLimitedByReason: map[string]int{}}
	for k, v := range s.stats.RateLimitedByReason {
		out.RateLimitedByReason[k] = v
	}
	for k, v := range s.stats.Requests {
		out.Requests[k] = v
	}
	for k, v := range s.stats.Creates {
		out.Creates[k] = v
	}
	for k, v := range s.order {
		out.Objects[k] = len(v)
	}
	return out
}

// TotalRequests is the number of requests that reached a handler.
func (st Stats) TotalRequests() int {
	n := 0
	for _, v := range st.Requests {
		n += v
	}
	return n
}

func (s *Server) newID(prefix string) string {
	s.seq++
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 14)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return fmt.Sprintf("%s_%s%04d", prefix, b, s.seq%10000)
}

func (s *Server) track(kind, id string) {
	s.order[kind] = append(s.order[kind], id)
	s.stats.Creates[kind]++
}

// untrack forgets an object that a failed request rolled back.
func (s *Server) untrack(kind, id string) {
	ids := s.order[kind]
	for i, x := range ids {
		if x == id {
			s.order[kind] = append(ids[:i:i], ids[i+1:]...)
			s.stats.Creates[kind]--
			return
		}
	}
}

// apiError is Stripe's error shape.
type apiError struct {
	status      int
	Type        string `json:"type"`
	Code        string `json:"code,omitempty"`
	DeclineCode string `json:"decline_code,omitempty"`
	Message     string `json:"message"`
	Param       string `json:"param,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func invalid(param, format string, args ...any) *apiError {
	return &apiError{status: 400, Type: "invalid_request_error", Param: param, Message: fmt.Sprintf(format, args...)}
}

func missing(kind, id string) *apiError {
	return &apiError{status: 404, Type: "invalid_request_error", Code: "resource_missing", Param: "id",
		Message: fmt.Sprintf("No such %s: '%s'", kind, id)}
}

// request is one parsed API call.
type request struct {
	method string
	path   []string // after /v1
	form   url.Values
	expand map[string]bool
	idem   string
	reqID  string
}

func (r *request) str(k string) (string, bool) {
	v, ok := r.form[k]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// limit is a list's page size: 10 by default, 1 to 100
// (https://docs.stripe.com/api/pagination).
func (r *request) limit() (int64, *apiError) {
	l, ok, err := r.int("limit")
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 10, nil
	case l < 1 || l > 100:
		return 0, invalid("limit", "This value must be between 1 and 100.")
	}
	return l, nil
}

func (r *request) int(k string) (int64, bool, *apiError) {
	v, ok := r.str(k)
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, invalid(k, "Invalid integer: %s", v)
	}
	return n, true, nil
}

func (r *request) bool(k string) (bool, bool) {
	v, ok := r.str(k)
	return v == "true", ok
}

// metadata returns metadata[k]=v pairs; present reports whether any
// metadata key was sent (an empty value deletes the key).
func (r *request) metadata(prefix string) (map[string]string, bool) {
	out := map[string]string{}
	present := false
	for k, v := range r.form {
		if strings.HasPrefix(k, prefix+"metadata[") && strings.HasSuffix(k, "]") {
			present = true
			out[k[len(prefix+"metadata["):len(k)-1]] = v[0]
		}
	}
	return out, present
}

// indexed returns the distinct indexes of name[i][...] parameters in order.
func (r *request) indexed(name string) []string {
	seen := map[string]bool{}
	var idx []string
	for k := range r.form {
		if strings.HasPrefix(k, name+"[") {
			rest := k[len(name)+1:]
			if j := strings.Index(rest, "]"); j > 0 {
				i := rest[:j]
				if _, err := strconv.Atoi(i); err == nil && !seen[i] {
					seen[i] = true
					idx = append(idx, i)
				}
			}
		}
	}
	sort.Slice(idx, func(a, b int) bool { x, _ := strconv.Atoi(idx[a]); y, _ := strconv.Atoi(idx[b]); return x < y })
	return idx
}

// Handler serves the API.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, hr *http.Request) {
	if !strings.HasPrefix(hr.URL.Path, "/v1/") {
		http.NotFound(w, hr)
		return
	}
	if err := hr.ParseForm(); err != nil {
		writeErr(w, "", invalid("", "Invalid request body"))
		return
	}
	path := strings.Split(strings.Trim(strings.TrimPrefix(hr.URL.Path, "/v1/"), "/"), "/")
	route := hr.Method + " " + routeTemplate(path)
	write := hr.Method == http.MethodPost || hr.Method == http.MethodDelete
	idemKey := hr.Header.Get("Idempotency-Key")
	if hr.Method == http.MethodDelete {
		// "All POST requests accept idempotency keys. Don't send idempotency
		// keys in GET and DELETE requests because it has no effect. These
		// requests are idempotent by definition."
		// (https://docs.stripe.com/api/idempotent_requests): a DELETE runs
		// every time, and nothing is saved or replayed under its key.
		idemKey = ""
	}
	if write && idemKey != "" {
		// A request whose key is in use by one still being served gets a
		// 409 and nothing is saved: "if the request conflicted with another
		// that was executing concurrently, no idempotent result is saved".
		s.mu.Lock()
		busy := s.inFlight[idemKey]
		if !busy {
			s.inFlight[idemKey] = true
		}
		s.mu.Unlock()
		if busy {
			writeErr(w, "", &apiError{status: http.StatusConflict, Type: "idempotency_error", Code: "idempotency_key_in_use",
				Message: "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): " + idemKey + ". Please try again later."})
			return
		}
		defer func() {
			s.mu.Lock()
			delete(s.inFlight, idemKey)
			s.mu.Unlock()
		}()
	}
	var afterExecute int
	if f := s.matchFault(hr.Method, hr.URL.Path); f != nil && f.AfterExecute && write {
		afterExecute = f.Status
	} else if f != nil {
		if f.Latency > 0 {
			select {
			case <-time.After(f.Latency):
			case <-hr.Context().Done():
				return
			}
		}
		if f.Timeout {
			<-hr.Context().Done()
			return
		}
		if f.Status != 0 {
			if f.Status == http.StatusTooManyRequests {
				if f.RetryAfter > 0 {
					w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Round(time.Second)/time.Second)))
				}
				reason := f.RateLimitedReason
				if reason == "" {
					reason = ReasonGlobalRate
				}
				w.Header().Set(RateLimitedReasonHeader, reason)
				writeErr(w, "", &apiError{status: 429, Type: "invalid_request_error", Code: "rate_limit", Message: "Too many requests hit the API too quickly."})
				return
			}
			if f.Status == http.StatusConflict {
				writeErr(w, "", &apiError{status: http.StatusConflict, Type: "idempotency_error", Code: "idempotency_key_in_use",
					Message: "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through). Please try again later."})
				return
			}
			writeErr(w, "", &apiError{status: f.Status, Type: "api_error", Message: "An error occurred with our connection to Stripe."})
			return
		}
	}
	if s.limiter != nil && !s.limiter.Allow() {
		s.rateLimited(w, ReasonGlobalRate, nil)
		return
	}
	s.mu.Lock()
	endpointOK := s.endpointAllows(route, len(path) == 2 && path[1] == "search")
	s.mu.Unlock()
	if !endpointOK {
		s.rateLimited(w, ReasonEndpointRate, nil)
		return
	}
	if hr.Header.Get("Authorization") == "" {
		writeErr(w, "", &apiError{status: 401, Type: "invalid_request_error", Message: "You did not provide an API key."})
		return
	}
	req := &request{method: hr.Method, path: path, form: hr.Form, expand: map[string]bool{}, idem: idemKey}
	for k, v := range hr.Form {
		if k == "expand[]" || strings.HasPrefix(k, "expand[") {
			for _, e := range v {
				req.expand[e] = true
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests[route]++
	s.reqCount++
	req.reqID = fmt.Sprintf("req_fake%08d", s.reqCount)
	w.Header().Set("Request-Id", req.reqID)
	// Every answer carries the HTTP Date header (RFC 9110 section 6.6.1),
	// on the clock that also stamps events' created
	// (https://docs.stripe.com/api/events/object#event_object-created).
	w.Header().Set("Date", s.now.UTC().Format(http.TimeFormat))
	var fingerprint string
	if write {
		s.stats.Writes++
		if req.idem != "" {
			sum := sha256.Sum256([]byte(hr.Method + " " + hr.URL.Path + "?" + canonicalForm(hr.Form)))
			fingerprint = hex.EncodeToString(sum[:])
			// The 24 hours are wall time: advancing a test clock moves the
			// simulated date of billing, not Stripe's idempotency store.
			if e, ok := s.idem[req.idem]; ok && s.wall().Sub(e.saved) >= idempotencyTTL {
				delete(s.idem, req.idem) // pruned after 24 hours
			}
			if e, ok := s.idem[req.idem]; ok {
				if e.fingerprint != fingerprint {
					writeErr(w, req.reqID, &apiError{status: 400, Type: "idempotency_error",
						Message: fmt.Sprintf("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", req.idem)})
					return
				}
				s.stats.Replays++
				w.Header().Set("Idempotent-Replayed", "true")
				w.Header().Set("Idempotency-Key", req.idem)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(e.status)
				_, _ = w.Write(e.body)
				return
			}
		}
	}
	if aerr := s.checkMetadata(req); aerr != nil {
		writeErr(w, req.reqID, aerr)
		return
	}
	if aerr := s.resourceLimited(req); aerr != nil {
		s.rateLimitedLocked(w, ReasonResourceSpecific, aerr)
		return
	}
	var quantityChange bool
	var invoicesBefore int
	subUpdate := updatedSubscription(req)
	if subUpdate != "" {
		quantityChange = s.quantityChanged(req, s.subs[subUpdate])
		invoicesBefore = s.invoicesOf(subUpdate)
	}
	obj, aerr := s.dispatch(req)
	if aerr == nil && subUpdate != "" {
		s.countResourceUse(subUpdate, quantityChange, invoicesBefore)
	}
	if aerr == nil && afterExecute != 0 {
		aerr = &apiError{status: afterExecute, Type: "api_error", Message: "An error occurred with our connection to Stripe."}
	}
	var status int
	var body []byte
	if aerr != nil {
		status = aerr.status
		body, _ = json.Marshal(map[string]any{"error": aerr})
	} else {
		status = http.StatusOK
		body, _ = json.Marshal(obj)
	}
	// Stripe saves the result of every request whose endpoint started
	// executing, errors included (a 402 decline, a 500): "Results are only
	// saved if an API endpoint started executing. If incoming parameters
	// failed validation ... no idempotent result is saved". Parameter
	// validation errors (400) are not saved.
	if write && req.idem != "" && (aerr == nil || aerr.status != http.StatusBadRequest) {
		s.idem[req.idem] = idemEntry{fingerprint: fingerprint, status: status, body: body, saved: s.wall()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// updatedSubscription is the ID of the existing subscription a POST updates, "" for any
// other request.
func updatedSubscription(r *request) string {
	if r.method == http.MethodPost && len(r.path) == 2 && r.path[0] == "subscriptions" {
		return r.path[1]
	}
	return ""
}

// rateLimited answers a 429 for reason.
func (s *Server) rateLimited(w http.ResponseWriter, reason string, e *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimitedLocked(w, reason, e)
}

func (s *Server) rateLimitedLocked(w http.ResponseWriter, reason string, e *apiError) {
	s.stats.RateLimited++
	s.stats.RateLimitedByReason[reason]++
	if e == nil {
		e = &apiError{status: http.StatusTooManyRequests, Type: "invalid_request_error", Code: "rate_limit", Message: "Too many requests hit the API too quickly."}
	}
	w.Header().Set(RateLimitedReasonHeader, reason)
	writeErr(w, "", e)
}

func writeErr(w http.ResponseWriter, reqID string, e *apiError) {
	if reqID != "" {
		w.Header().Set("Request-Id", reqID)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}

func canonicalForm(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		vals := append([]string(nil), v[k]...)
		sort.Strings(vals)
		b.WriteString(k + "=" + strings.Join(vals, ",") + "&")
	}
	return b.String()
}

func routeTemplate(path []string) string {
	out := make([]string, len(path))
	for i, p := range path {
		if i%2 == 1 && p != "search" && p != "upcoming" {
			out[i] = "{id}"
		} else {
			out[i] = p
		}
	}
	return "/v1/" + strings.Join(out, "/")
}

func (s *Server) matchFault(method, path string) *faultEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.Method != "" && f.Method != method {
			continue
		}
		if f.Path != "" && !strings.HasPrefix(path, f.Path) {
			continue
		}
		if f.Count > 0 && f.used >= f.Count {
			continue
		}
		if f.Rate > 0 && f.Rate < 1 && rand.Float64() >= f.Rate {
			continue
		}
		f.used++
		return f
	}
	return nil
}

// dispatch routes a request; s.mu is held.
func (s *Server) dispatch(r *request) (any, *apiError) {
	p := r.path
	n := len(p)
	if p[0] == "subscription_schedules" {
		return s.dispatchSchedules(r)
	}
	if p[0] == "coupons" || p[0] == "promotion_codes" || (p[0] == "subscriptions" && n == 3 && p[2] == "discount") {
		return s.dispatchCoupons(r)
	}
	if out, err, ok := s.dispatchFinance(r); ok {
		return out, err
	}
	if p[0] == "webhook_endpoints" {
		if out, err, ok := s.dispatchWebhookEndpoints(r); ok {
			return out, err
		}
	}
	switch {
	case p[0] == "customers" && n == 1 && r.method == "POST":
		return s.createCustomer(r)
	case p[0] == "customers" && n == 1 && r.method == "GET":
		return s.listCustomers(r)
	case p[0] == "customers" && n == 2 && p[1] == "search" && r.method == "GET":
		return s.searchCustomers(r)
	case p[0] == "products" && n == 2 && p[1] == "search" && r.method == "GET":
		return s.searchProducts(r)
	case p[0] == "customers" && n == 2 && r.method == "GET":
		if c, ok := s.customers[p[1]]; ok {
			return s.customerView(c, r), nil
		}
		return s.getCustomer(p[1])
	case p[0] == "customers" && n == 3 && p[2] == "tax_ids" && r.method == "POST":
		return s.createTaxID(r, p[1])
	case p[0] == "customers" && n == 3 && p[2] == "tax_ids" && r.method == "GET":
		return s.listTaxIDs(p[1])
	case p[0] == "customers" && n == 4 && p[2] == "tax_ids" && r.method == "DELETE":
		return s.deleteTaxID(r, p[1], p[3])
	case p[0] == "tax_rates" && n == 1 && r.method == "POST":
		return s.createTaxRate(r)
	case p[0] == "tax_rates" && n == 2 && r.method == "GET":
		return s.getTaxRate(p[1])
	case p[0] == "customers" && n == 2 && r.method == "POST":
		return s.updateCustomer(r, p[1])
	case p[0] == "customers" && n == 2 && r.method == "DELETE":
		return s.deleteCustomer(r, p[1])
	case p[0] == "payment_methods" && n == 3 && p[2] == "attach" && r.method == "POST":
		return s.attachPM(r, p[1])
	case p[0] == "payment_methods" && n == 2 && r.method == "GET":
		return s.getPM(p[1])
	case p[0] == "test_helpers" && n == 2 && p[1] == "test_clocks" && r.method == "POST":
		return s.createTestClock(r)
	case p[0] == "test_helpers" && n == 3 && p[1] == "test_clocks" && r.method == "GET":
		return s.getTestClock(p[2])
	case p[0] == "test_helpers" && n == 3 && p[1] == "test_clocks" && r.method == "DELETE":
		return s.deleteTestClock(r, p[2])
	case p[0] == "test_helpers" && n == 4 && p[1] == "test_clocks" && p[3] == "advance" && r.method == "POST":
		return s.advanceTestClock(r, p[2])
	case p[0] == "invoices" && n == 2 && p[1] == "upcoming" && r.method == "GET":
		return s.upcomingInvoice(r)
	case p[0] == "subscription_items" && n == 3 && p[2] == "usage_records" && r.method == "POST":
		return s.createUsageRecord(r, p[1])
	case p[0] == "invoices" && n == 3 && p[2] == "lines" && r.method == "GET":
		return s.listInvoiceLines(r, p[1])
	case p[0] == "products" && n == 1 && r.method == "POST":
		return s.createProduct(r)
	case p[0] == "products" && n == 1 && r.method == "GET":
		return s.listProducts(r)
	case p[0] == "products" && n == 2 && r.method == "GET":
		return s.getProduct(p[1])
	case p[0] == "products" && n == 2 && r.method == "POST":
		return s.updateProduct(r, p[1])
	case p[0] == "prices" && n == 1 && r.method == "POST":
		return s.createPrice(r)
	case p[0] == "prices" && n == 1 && r.method == "GET":
		return s.listPrices(r)
	case p[0] == "prices" && n == 2 && r.method == "GET":
		return s.getPrice(r, p[1])
	case p[0] == "prices" && n == 2 && r.method == "POST":
		return s.updatePrice(r, p[1])
	case p[0] == "subscriptions" && n == 1 && r.method == "POST":
		return s.createSubscription(r)
	case p[0] == "subscriptions" && n == 1 && r.method == "GET":
		return s.listSubscriptions(r)
	case p[0] == "subscriptions" && n == 2 && r.method == "GET":
		return s.getSubscription(r, p[1])
	case p[0] == "subscriptions" && n == 2 && r.method == "POST":
		return s.updateSubscription(r, p[1])
	case p[0] == "subscriptions" && n == 2 && r.method == "DELETE":
		return s.cancelSubscription(r, p[1])
	case p[0] == "invoices" && n == 1 && r.method == "GET":
		return s.listInvoices(r)
	case p[0] == "invoices" && n == 2 && r.method == "GET":
		return s.getInvoice(r, p[1])
	}
	return nil, &apiError{status: 404, Type: "invalid_request_error", Message: fmt.Sprintf("Unrecognized request URL (%s: /v1/%s).", r.method, strings.Join(p, "/"))}
}

// list builds a Stripe list object from IDs newest first, honouring limit
// and starting_after.
func (s *Server) list(r *request, urlPath string, ids []string, render func(id string) (map[string]any, bool)) (any, *apiError) {
	if err := r.listExpand(); err != nil {
		return nil, err
	}
	if err := checkCursor(r, kindOfList(urlPath), ids); err != nil {
		return nil, err
	}
	limit, err := r.limit()
	if err != nil {
		return nil, err
	}
	after, _ := r.str("starting_after")
	data := []map[string]any{}
	started := after == ""
	hasMore := false
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		if !started {
			if id == after {
				started = true
			}
			continue
		}
		obj, ok := render(id)
		if !ok {
			continue
		}
		if int64(len(data)) == limit {
			hasMore = true
			break
		}
		data = append(data, obj)
	}
	return map[string]any{"object": "list", "url": urlPath, "has_more": hasMore, "data": data}, nil
}

func (r *request) createdFilter() (gte int64, ok bool, err *apiError) {
	return r.int("created[gte]")
}
