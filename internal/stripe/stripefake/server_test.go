package stripefake

// The fake's own tests speak raw HTTP, form-encoded as Stripe's clients do,
// so they check the server and not the operator's client.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

type apiResult struct {
	status int
	header http.Header
	body   map[string]any
}

func call(t *testing.T, s *Server, method, path, idem string, form url.Values) apiResult {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("sk_test_fake", "")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
	}
	return apiResult{status: resp.StatusCode, header: resp.Header, body: body}
}

func str(m map[string]any, keys ...string) string {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[k]
	}
	s, _ := v.(string)
	return s
}

func TestIdempotentReplayAndConflict(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	form := url.Values{"email": {"a@example.com"}}
	first := call(t, s, "POST", "/v1/customers", "key-1", form)
	g.Expect(first.status).To(Equal(200))
	again := call(t, s, "POST", "/v1/customers", "key-1", form)
	g.Expect(again.status).To(Equal(200))
	g.Expect(again.header.Get("Idempotent-Replayed")).To(Equal("true"))
	g.Expect(str(again.body, "id")).To(Equal(str(first.body, "id")))
	g.Expect(s.Stats().Creates["customer"]).To(Equal(1))
	g.Expect(s.Stats().Replays).To(Equal(1))

	// The same key with other parameters is refused, as Stripe does.
	conflict := call(t, s, "POST", "/v1/customers", "key-1", url.Values{"email": {"b@example.com"}})
	g.Expect(conflict.status).To(Equal(400))
	g.Expect(str(conflict.body, "error", "type")).To(Equal("idempotency_error"))
	g.Expect(s.Stats().Creates["customer"]).To(Equal(1))

	// Without a key, each POST creates.
	call(t, s, "POST", "/v1/customers", "", form)
	g.Expect(s.Stats().Creates["customer"]).To(Equal(2))
}

// TestIdempotencySavesExecutedAnswers follows
// https://docs.stripe.com/api/idempotent_requests: results (errors too) are
// saved once an endpoint started executing, for 24 hours; validation errors
// and requests refused for a concurrent request with the same key are not.
func TestIdempotencySavesExecutedAnswers(t *testing.T) {
	g := NewWithT(t)
	wall := &fakeWall{t: time.Now()}
	s := NewTestServer(t, Options{RateLimit: -1, WallClock: wall.now})

	// A 500 after execution is saved and replayed, though the fault is gone.
	s.InjectFault(Fault{Method: "POST", Path: "/v1/customers", Status: 500, Count: 1, AfterExecute: true})
	form := url.Values{"email": {"a@example.com"}}
	g.Expect(call(t, s, "POST", "/v1/customers", "k-500", form).status).To(Equal(500))
	g.Expect(s.Stats().Creates["customer"]).To(Equal(1), "it executed")
	replay := call(t, s, "POST", "/v1/customers", "k-500", form)
	g.Expect(replay.status).To(Equal(500))
	g.Expect(replay.header.Get("Idempotent-Replayed")).To(Equal("true"))

	// A validation error is not saved: the same key works once fixed...
	bad := url.Values{"email": {"not-an-email"}}
	g.Expect(call(t, s, "POST", "/v1/customers", "k-400", bad).status).To(Equal(400))
	// ... with the same parameters, since nothing was saved for the key.
	g.Expect(call(t, s, "POST", "/v1/customers", "k-400", bad).header.Get("Idempotent-Replayed")).To(BeEmpty())

	// A card decline is saved.
	cus := str(call(t, s, "POST", "/v1/customers", "", nil).body, "id")
	declined := call(t, s, "POST", "/v1/payment_methods/pm_card_chargeDeclined/attach", "k-402", url.Values{"customer": {cus}})
	g.Expect(declined.status).To(Equal(402))
	g.Expect(call(t, s, "POST", "/v1/payment_methods/pm_card_chargeDeclined/attach", "k-402", url.Values{"customer": {cus}}).header.Get("Idempotent-Replayed")).To(Equal("true"))

	// The window is wall time: advancing the test clock prunes nothing.
	s.AdvanceClock(48 * time.Hour)
	g.Expect(call(t, s, "POST", "/v1/customers", "k-500", form).header.Get("Idempotent-Replayed")).To(Equal("true"))
	// After 24 hours of wall time the key is pruned and executes anew.
	wall.advance(24*time.Hour + time.Second)
	g.Expect(call(t, s, "POST", "/v1/customers", "k-500", form).status).To(Equal(200))
	g.Expect(s.Stats().Creates["customer"]).To(Equal(3))

	// A request while another with the same key is in flight: 409, not saved.
	s.InjectFault(Fault{Method: "POST", Path: "/v1/products", Latency: 300 * time.Millisecond, Count: 1})
	var wg sync.WaitGroup
	wg.Add(1)
	var slow apiResult
	go func() {
		defer wg.Done()
		slow = call(t, s, "POST", "/v1/products", "k-busy", url.Values{"name": {"P"}})
	}()
	time.Sleep(100 * time.Millisecond)
	busy := call(t, s, "POST", "/v1/products", "k-busy", url.Values{"name": {"P"}})
	wg.Wait()
	g.Expect(busy.status).To(Equal(409))
	g.Expect(str(busy.body, "error", "code")).To(Equal("idempotency_key_in_use"))
	g.Expect(slow.status).To(Equal(200))
	g.Expect(s.Stats().Creates["product"]).To(Equal(1))
}

// TestTestPaymentMethods follows https://docs.stripe.com/testing: each
// attach of a test PaymentMethod makes a new PaymentMethod with the card's
// details; a default must be attached to the customer; the declining card is
// declined on attach, pm_card_chargeCustomerFail only on charges.
func TestTestPaymentMethods(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	a := str(call(t, s, "POST", "/v1/customers", "", nil).body, "id")
	b := str(call(t, s, "POST", "/v1/customers", "", nil).body, "id")
	first := call(t, s, "POST", "/v1/payment_methods/pm_card_visa/attach", "", url.Values{"customer": {a}})
	second := call(t, s, "POST", "/v1/payment_methods/pm_card_visa/attach", "", url.Values{"customer": {a}})
	g.Expect(first.status).To(Equal(200))
	pm1, pm2 := str(first.body, "id"), str(second.body, "id")
	g.Expect(pm1).To(HavePrefix("pm_"))
	g.Expect(pm1).NotTo(Equal("pm_card_visa"))
	g.Expect(pm2).NotTo(Equal(pm1))
	g.Expect(str(first.body, "card", "last4")).To(Equal("4242"))
	g.Expect(str(first.body, "card", "fingerprint")).To(Equal(str(second.body, "card", "fingerprint")))

	g.Expect(call(t, s, "POST", "/v1/customers/"+a, "", url.Values{"invoice_settings[default_payment_method]": {"pm_card_visa"}}).status).To(Equal(400))
	g.Expect(call(t, s, "POST", "/v1/customers/"+b, "", url.Values{"invoice_settings[default_payment_method]": {pm1}}).status).To(Equal(400), "attached to another customer")
	g.Expect(call(t, s, "POST", "/v1/payment_methods/"+pm1+"/attach", "", url.Values{"customer": {b}}).status).To(Equal(400))
	g.Expect(call(t, s, "POST", "/v1/payment_methods/"+pm1+"/attach", "", url.Values{"customer": {a}}).status).To(Equal(200), "again to its own customer")
	g.Expect(call(t, s, "POST", "/v1/customers/"+a, "", url.Values{"invoice_settings[default_payment_method]": {pm1}}).status).To(Equal(200))

	g.Expect(call(t, s, "POST", "/v1/payment_methods/pm_card_chargeDeclined/attach", "", url.Values{"customer": {a}}).status).To(Equal(402))
	g.Expect(call(t, s, "POST", "/v1/payment_methods/pm_card_chargeCustomerFail/attach", "", url.Values{"customer": {a}}).status).To(Equal(200))
	g.Expect(call(t, s, "GET", "/v1/payment_methods/"+pm1, "", nil).status).To(Equal(200))
}

// TestTestClocksAndInvoiceLines: the test clock API moves time and its
// deletion deletes its customers; an invoice embeds at most 10 lines and
// pages the rest.
func TestTestClocksAndInvoiceLines(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	start := s.Now().Unix()
	clock := call(t, s, "POST", "/v1/test_helpers/test_clocks", "", url.Values{"frozen_time": {itoa(start)}, "name": {"e2e"}})
	g.Expect(clock.status).To(Equal(200))
	id := str(clock.body, "id")
	g.Expect(id).To(HavePrefix("clock_"))
	cus := call(t, s, "POST", "/v1/customers", "", url.Values{"test_clock": {id}})
	g.Expect(str(cus.body, "test_clock")).To(Equal(id))
	g.Expect(call(t, s, "POST", "/v1/customers", "", url.Values{"test_clock": {"clock_missing"}}).status).To(Equal(400))

	adv := call(t, s, "POST", "/v1/test_helpers/test_clocks/"+id+"/advance", "", url.Values{"frozen_time": {itoa(start + 3600)}})
	g.Expect(adv.status).To(Equal(200))
	g.Expect(str(adv.body, "status")).To(Equal("advancing"))
	g.Expect(s.Now().Unix()).To(Equal(start + 3600))
	g.Expect(str(call(t, s, "GET", "/v1/test_helpers/test_clocks/"+id, "", nil).body, "status")).To(Equal("ready"))
	g.Expect(call(t, s, "POST", "/v1/test_helpers/test_clocks/"+id+"/advance", "", url.Values{"frozen_time": {itoa(start)}}).status).To(Equal(400), "only forward")

	// Lines: 12 prices on one subscription.
	cid := str(cus.body, "id")
	pm := str(call(t, s, "POST", "/v1/payment_methods/pm_card_visa/attach", "", url.Values{"customer": {cid}}).body, "id")
	call(t, s, "POST", "/v1/customers/"+cid, "", url.Values{"invoice_settings[default_payment_method]": {pm}})
	prod := str(call(t, s, "POST", "/v1/products", "", url.Values{"name": {"Seat"}}).body, "id")
	form := url.Values{"customer": {cid}}
	for i := range 12 {
		price := str(call(t, s, "POST", "/v1/prices", "", url.Values{"product": {prod}, "currency": {"usd"}, "unit_amount": {itoa(int64(100 + i))},
			"recurring[interval]": {"month"}}).body, "id")
		form.Set("items["+itoa(int64(i))+"][price]", price)
	}
	sub := call(t, s, "POST", "/v1/subscriptions", "", form)
	g.Expect(sub.status).To(Equal(200))
	inv := call(t, s, "GET", "/v1/invoices/"+str(sub.body, "latest_invoice"), "", nil)
	lines := inv.body["lines"].(map[string]any)
	g.Expect(lines["data"]).To(HaveLen(10))
	g.Expect(lines["has_more"]).To(BeTrue())
	q := url.Values{"limit": {"5"}, "starting_after": {str(lines["data"].([]any)[9].(map[string]any), "id")}}
	page := call(t, s, "GET", "/v1/invoices/"+str(inv.body, "id")+"/lines?"+q.Encode(), "", nil)
	g.Expect(page.status).To(Equal(200))
	g.Expect(page.body["data"]).To(HaveLen(2))
	g.Expect(page.body["has_more"]).To(BeFalse())

	g.Expect(call(t, s, "DELETE", "/v1/test_helpers/test_clocks/"+id, "", nil).status).To(Equal(200))
	g.Expect(call(t, s, "GET", "/v1/customers/"+cid, "", nil).body["deleted"]).To(BeTrue())
	g.Expect(call(t, s, "GET", "/v1/subscriptions/"+str(sub.body, "id"), "", nil).body["status"]).To(Equal("canceled"))
}

func TestErrorsAndPagination(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	missing := call(t, s, "GET", "/v1/customers/cus_missing", "", nil)
	g.Expect(missing.status).To(Equal(404))
	g.Expect(str(missing.body, "error", "code")).To(Equal("resource_missing"))
	g.Expect(str(missing.body, "error", "type")).To(Equal("invalid_request_error"))

	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, str(call(t, s, "POST", "/v1/customers", "", url.Values{"metadata[n]": {string(rune('a' + i))}}).body, "id"))
	}
	page := call(t, s, "GET", "/v1/customers?limit=2", "", nil)
	g.Expect(page.body["has_more"]).To(Equal(true))
	data := page.body["data"].([]any)
	g.Expect(data).To(HaveLen(2))
	g.Expect(data[0].(map[string]any)["id"]).To(Equal(ids[4]), "newest first")
	last := data[1].(map[string]any)["id"].(string)
	rest := call(t, s, "GET", "/v1/customers?limit=10&starting_after="+last, "", nil)
	g.Expect(rest.body["has_more"]).To(Equal(false))
	g.Expect(rest.body["data"]).To(HaveLen(3))

	s.InjectFault(Fault{Method: "GET", Path: "/v1/customers", Status: 429, RetryAfter: 2 * time.Second, Count: 1})
	limited := call(t, s, "GET", "/v1/customers", "", nil)
	g.Expect(limited.status).To(Equal(429))
	g.Expect(limited.header.Get("Retry-After")).To(Equal("2"))
	g.Expect(call(t, s, "GET", "/v1/customers", "", nil).status).To(Equal(200))
}

func TestTrialEndsAndPeriodsRenewOnTheTestClock(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	cus := str(call(t, s, "POST", "/v1/customers", "", url.Values{"email": {"a@example.com"}}).body, "id")
	attached := call(t, s, "POST", "/v1/payment_methods/pm_card_visa/attach", "", url.Values{"customer": {cus}})
	g.Expect(attached.status).To(Equal(200))
	g.Expect(call(t, s, "POST", "/v1/customers/"+cus, "", url.Values{"invoice_settings[default_payment_method]": {str(attached.body, "id")}}).status).To(Equal(200))
	prod := str(call(t, s, "POST", "/v1/products", "", url.Values{"name": {"Pro"}}).body, "id")
	price := str(call(t, s, "POST", "/v1/prices", "", url.Values{"product": {prod}, "currency": {"usd"}, "unit_amount": {"2000"},
		"recurring[interval]": {"month"}}).body, "id")
	created := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {cus}, "items[0][price]": {price},
		"items[0][quantity]": {"2"}, "trial_period_days": {"7"}})
	g.Expect(created.status).To(Equal(200))
	g.Expect(str(created.body, "status")).To(Equal("trialing"))
	id := str(created.body, "id")

	s.AdvanceClock(8 * 24 * time.Hour)
	snap, _ := s.Subscription(id)
	g.Expect(snap.Status).To(Equal("active"))
	g.Expect(snap.LatestInvoice).To(And(HaveField("Status", "paid"), HaveField("AmountDue", int64(4000))))
	invoices := len(snap.Invoices)

	s.AdvanceClock(31 * 24 * time.Hour)
	snap, _ = s.Subscription(id)
	g.Expect(snap.Invoices).To(HaveLen(invoices+1), "one renewal")
	g.Expect(snap.LatestInvoice).To(And(HaveField("Status", "paid"), HaveField("BillingReason", "subscription_cycle")))

	var types []string
	for _, e := range s.Events() {
		types = append(types, e.Type)
	}
	g.Expect(types).To(ContainElements("customer.subscription.trial_will_end", "invoice.paid", "invoice.payment_succeeded"))
}

// TestSignedDeliveryWithRetries checks that events reach an endpoint signed
// with its secret (HMAC-SHA256 over "t.payload"), and that a failing
// endpoint gets the same event again until it answers 2xx.
func TestSignedDeliveryWithRetries(t *testing.T) {
	g := NewWithT(t)
	const secret = "whsec_deliveryTest"
	var mu sync.Mutex
	attempts := map[string]int{}
	var badSignatures int
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct{ ID string }
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		defer mu.Unlock()
		if !validSignature(r.Header.Get("Stripe-Signature"), body, secret) {
			badSignatures++
		}
		attempts[ev.ID]++
		if attempts[ev.ID] < 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer ep.Close()

	s := NewTestServer(t, Options{RateLimit: -1})
	s.SetDelivery(Delivery{MaxAttempts: 5, RetryBackoff: 10 * time.Millisecond})
	s.AddWebhookEndpoint(ep.URL, secret)
	call(t, s, "POST", "/v1/customers", "", url.Values{"email": {"a@example.com"}})
	g.Eventually(func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(attempts)
	}, 10*time.Second).Should(BeNumerically(">=", 1))
	g.Eventually(func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range attempts {
			if n != 3 {
				return false
			}
		}
		return true
	}, 10*time.Second).Should(BeTrue(), "each event delivered until the third attempt succeeded, then not again")
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	g.Expect(badSignatures).To(BeZero())
	for id, n := range attempts {
		g.Expect(n).To(Equal(3), id)
	}
}

func validSignature(header string, body []byte, secret string) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	return ts != "" && hmac.Equal([]byte(sig), []byte(want))
}

// TestSearchIsEventuallyConsistent: the Search API finds objects by
// metadata only once they are indexed; a list finds them at once.
func TestSearchIsEventuallyConsistent(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1, SearchIndexDelay: time.Minute})
	id := str(call(t, s, "POST", "/v1/customers", "", url.Values{"email": {"a@example.com"}, "metadata[team]": {"x"}, "metadata[tier]": {"gold"}}).body, "id")
	call(t, s, "POST", "/v1/customers", "", url.Values{"metadata[team]": {"y"}})
	q := url.Values{"query": {`metadata['team']:'x' AND metadata["tier"]:"gold"`}}
	search := func() apiResult { return call(t, s, "GET", "/v1/customers/search?"+q.Encode(), "", nil) }
	g.Expect(search().body["data"]).To(BeEmpty(), "not indexed yet")
	g.Expect(call(t, s, "GET", "/v1/customers", "", nil).body["data"]).To(HaveLen(2), "a list is consistent at once")
	s.AdvanceClock(time.Minute)
	found := search()
	g.Expect(found.body["object"]).To(Equal("search_result"))
	g.Expect(found.body["data"]).To(HaveLen(1))
	g.Expect(str(found.body["data"].([]any)[0].(map[string]any), "id")).To(Equal(id))
	g.Expect(s.Stats().Requests).To(HaveKey("GET /v1/customers/search"))
	bad := call(t, s, "GET", "/v1/customers/search?"+url.Values{"query": {"metadata['team'] ~ 'x'"}}.Encode(), "", nil)
	g.Expect(bad.status).To(Equal(400))
}
