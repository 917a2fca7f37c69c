package stripefake

import (
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// fakeWall is a wall clock a test moves.
type fakeWall struct {
	mu sync.Mutex
	t  time.Time
}

func (w *fakeWall) now() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.t }
func (w *fakeWall) advance(d time.Duration) {
	w.mu.Lock()
	w.t = w.t.Add(d)
	w.mu.Unlock()
}

// newSub makes a customer, a monthly price and a subscription with one
// item, and returns the subscription and item IDs.
func newSub(t *testing.T, s *Server) (sub, item string) {
	t.Helper()
	cus := str(call(t, s, "POST", "/v1/customers", "", nil).body, "id")
	call(t, s, "POST", "/v1/payment_methods/pm_card_visa/attach", "", url.Values{"customer": {cus}})
	prod := str(call(t, s, "POST", "/v1/products", "", url.Values{"name": {"Seat"}}).body, "id")
	price := str(call(t, s, "POST", "/v1/prices", "", url.Values{"product": {prod}, "currency": {"usd"}, "unit_amount": {"500"}, "recurring[interval]": {"month"}}).body, "id")
	res := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {cus}, "items[0][price]": {price}, "collection_method": {"send_invoice"}, "days_until_due": {"30"}})
	if res.status != 200 {
		t.Fatalf("creating the subscription: %v", res.body)
	}
	items := res.body["items"].(map[string]any)["data"].([]any)
	return str(res.body, "id"), items[0].(map[string]any)["id"].(string)
}

// TestRateLimitedReasons: the global limit answers 429 with
// Stripe-Rate-Limited-Reason global-rate; one endpoint over its own limit
// gets endpoint-rate while another endpoint still answers; Search endpoints
// share one limit (https://docs.stripe.com/rate-limits).
func TestRateLimitedReasons(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: 2})
	var last apiResult
	for range 3 {
		last = call(t, s, "GET", "/v1/customers", "", nil)
	}
	g.Expect(last.status).To(Equal(429))
	g.Expect(last.header.Get(RateLimitedReasonHeader)).To(Equal(ReasonGlobalRate))

	s = NewTestServer(t, Options{RateLimit: 1000, EndpointRateLimit: 3, SearchRateLimit: 2})
	for range 3 {
		last = call(t, s, "GET", "/v1/customers", "", nil)
	}
	g.Expect(last.status).To(Equal(200))
	last = call(t, s, "GET", "/v1/customers", "", nil)
	g.Expect(last.status).To(Equal(429))
	g.Expect(last.header.Get(RateLimitedReasonHeader)).To(Equal(ReasonEndpointRate))
	g.Expect(call(t, s, "GET", "/v1/products", "", nil).status).To(Equal(200), "another endpoint is not limited")

	q := "?query=" + url.QueryEscape("name:'x'")
	g.Expect(call(t, s, "GET", "/v1/customers/search"+q, "", nil).status).To(Equal(200))
	g.Expect(call(t, s, "GET", "/v1/products/search"+q, "", nil).status).To(Equal(200))
	last = call(t, s, "GET", "/v1/customers/search"+q, "", nil)
	g.Expect(last.status).To(Equal(429), "Search endpoints share 20/s (here 2)")
	g.Expect(last.header.Get(RateLimitedReasonHeader)).To(Equal(ReasonEndpointRate))
	g.Expect(s.Stats().RateLimitedByReason).To(HaveKeyWithValue(ReasonEndpointRate, 2))
}

// TestSubscriptionQuantityChangeLimit: one subscription over its quantity
// updates per hour gets resource-specific 429s and keeps its quantity;
// another subscription and other changes of the capped one go on; the
// window is wall time, not the test clock.
func TestSubscriptionQuantityChangeLimit(t *testing.T) {
	g := NewWithT(t)
	wall := &fakeWall{t: time.Now()}
	s := NewTestServer(t, Options{RateLimit: -1, SubscriptionQuantityChangesPerHour: 2, WallClock: wall.now})
	sub, item := newSub(t, s)
	other, otherItem := newSub(t, s)
	qty := func(id, it string, n int) apiResult {
		return call(t, s, "POST", "/v1/subscriptions/"+id, "", url.Values{"items[0][id]": {it}, "items[0][quantity]": {strconv.Itoa(n)}, "proration_behavior": {"none"}})
	}
	g.Expect(qty(sub, item, 2).status).To(Equal(200))
	g.Expect(qty(sub, item, 3).status).To(Equal(200))
	capped := qty(sub, item, 4)
	g.Expect(capped.status).To(Equal(429))
	g.Expect(capped.header.Get(RateLimitedReasonHeader)).To(Equal(ReasonResourceSpecific))
	got := call(t, s, "GET", "/v1/subscriptions/"+sub, "", nil).body["items"].(map[string]any)["data"].([]any)[0].(map[string]any)["quantity"]
	g.Expect(got).To(BeEquivalentTo(3), "nothing of the refused update is applied")
	g.Expect(qty(sub, item, 3).status).To(Equal(200), "an update that changes no quantity is not counted")
	g.Expect(call(t, s, "POST", "/v1/subscriptions/"+sub, "", url.Values{"metadata[a]": {"b"}}).status).To(Equal(200))
	g.Expect(qty(other, otherItem, 5).status).To(Equal(200), "other subscriptions are not limited")
	s.AdvanceClock(2 * time.Hour)
	g.Expect(qty(sub, item, 4).status).To(Equal(429), "the test clock does not move the window")
	wall.advance(time.Hour)
	g.Expect(qty(sub, item, 4).status).To(Equal(200))
}

// TestSubscriptionInvoiceLimit: the invoices updates create for one
// subscription are limited per day (20, here 1).
func TestSubscriptionInvoiceLimit(t *testing.T) {
	g := NewWithT(t)
	wall := &fakeWall{t: time.Now()}
	s := NewTestServer(t, Options{RateLimit: -1, SubscriptionInvoicesPerDay: 1, WallClock: wall.now})
	sub, item := newSub(t, s)
	up := func(n int) apiResult {
		return call(t, s, "POST", "/v1/subscriptions/"+sub, "", url.Values{"items[0][id]": {item}, "items[0][quantity]": {strconv.Itoa(n)}, "proration_behavior": {"always_invoice"}})
	}
	g.Expect(up(2).status).To(Equal(200))
	invoices := s.Stats().Creates["invoice"]
	capped := up(3)
	g.Expect(capped.status).To(Equal(429))
	g.Expect(capped.header.Get(RateLimitedReasonHeader)).To(Equal(ReasonResourceSpecific))
	g.Expect(s.Stats().Creates["invoice"]).To(Equal(invoices))
	wall.advance(24 * time.Hour)
	g.Expect(up(3).status).To(Equal(200))
}

// TestDeleteIgnoresIdempotencyKey: "Don't send idempotency keys in GET and
// DELETE requests because it has no effect"
// (https://docs.stripe.com/api/idempotent_requests): a DELETE under a key
// used before runs, and is never replayed.
func TestDeleteIgnoresIdempotencyKey(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	a := str(call(t, s, "POST", "/v1/customers", "", nil).body, "id")
	b := str(call(t, s, "POST", "/v1/customers", "", nil).body, "id")
	first := call(t, s, "DELETE", "/v1/customers/"+a, "k-del", nil)
	g.Expect(first.status).To(Equal(200))
	second := call(t, s, "DELETE", "/v1/customers/"+b, "k-del", nil)
	g.Expect(second.status).To(Equal(200), "the key is ignored: no 400 for other parameters")
	g.Expect(second.header.Get("Idempotent-Replayed")).To(BeEmpty())
	g.Expect(str(second.body, "id")).To(Equal(b))
	again := call(t, s, "DELETE", "/v1/customers/"+a, "k-del", nil)
	g.Expect(again.header.Get("Idempotent-Replayed")).To(BeEmpty())
	g.Expect(again.status).To(Equal(404), "the customer is already deleted")
	g.Expect(s.Stats().Replays).To(BeZero())
}

// TestMetadataLimits follows https://docs.stripe.com/metadata: up to 50
// keys (counted after an update merges), keys up to 40 characters, values
// up to 500.
func TestMetadataLimits(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	md := func(n int) url.Values {
		v := url.Values{}
		for i := range n {
			v.Set("metadata[k"+strconv.Itoa(i)+"]", "v")
		}
		return v
	}
	g.Expect(call(t, s, "POST", "/v1/customers", "", md(51)).status).To(Equal(400))
	res := call(t, s, "POST", "/v1/customers", "", md(50))
	g.Expect(res.status).To(Equal(200))
	cus := str(res.body, "id")
	over := call(t, s, "POST", "/v1/customers/"+cus, "", url.Values{"metadata[extra]": {"v"}})
	g.Expect(over.status).To(Equal(400))
	g.Expect(str(over.body, "error", "param")).To(Equal("metadata"))
	g.Expect(call(t, s, "POST", "/v1/customers/"+cus, "", url.Values{"metadata[extra]": {"v"}, "metadata[k0]": {""}}).status).To(Equal(200), "a key set to \"\" is deleted first")
	g.Expect(call(t, s, "POST", "/v1/customers", "", url.Values{"metadata[" + strings.Repeat("k", 41) + "]": {"v"}}).status).To(Equal(400))
	g.Expect(call(t, s, "POST", "/v1/customers", "", url.Values{"metadata[" + strings.Repeat("k", 40) + "]": {strings.Repeat("v", 500)}}).status).To(Equal(200))
	g.Expect(call(t, s, "POST", "/v1/customers", "", url.Values{"metadata[k]": {strings.Repeat("v", 501)}}).status).To(Equal(400))
	g.Expect(s.Stats().Objects["customer"]).To(Equal(2))
}

// TestSearchUnavailable: switched off, Search answers as for an account in
// a country without it; lists still work.
func TestSearchUnavailable(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	s.SetSearchUnavailable(true)
	q := "?query=" + url.QueryEscape("name:'x'")
	res := call(t, s, "GET", "/v1/customers/search"+q, "", nil)
	g.Expect(res.status).To(Equal(400))
	g.Expect(str(res.body, "error", "message")).To(ContainSubstring("search feature is temporarily unavailable"))
	g.Expect(call(t, s, "GET", "/v1/products/search"+q, "", nil).status).To(Equal(400))
	g.Expect(call(t, s, "GET", "/v1/customers", "", nil).status).To(Equal(200))
	s.SetSearchUnavailable(false)
	g.Expect(call(t, s, "GET", "/v1/customers/search"+q, "", nil).status).To(Equal(200))
}
