package stripefake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"sync"
	"time"
)

// Event is one emitted Stripe event.
type Event struct {
	ID      string
	Type    string
	Created int64
	// JSON is the event exactly as delivered.
	JSON []byte
}

// Delivery controls webhook delivery.
type Delivery struct {
	// Duplicates delivers each event this many extra times.
	Duplicates int
	// Shuffle delivers each batch of queued events in random order.
	Shuffle bool
	// MaxAttempts per event (Stripe retries for three days); default 8.
	MaxAttempts int
	// RetryBackoff is the first retry delay, doubled per attempt.
	RetryBackoff time.Duration
	// Paused holds events in the queue until unpaused.
	Paused bool
}

type endpoint struct {
	url    string
	secret string
	// apiVersion is the endpoint's API version: its events are rendered
	// in that version's shape.
	apiVersion string
	client     *http.Client
	// enabled are the event types sent (nil or "*": all); disabled stops
	// deliveries (webhook_endpoints.go). Guarded by mu.
	enabled  []string
	disabled bool

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []Event
	busy    bool
	stopped bool
	srv     *Server
	// Delivered counts successful deliveries.
	delivered int
	failed    int
}

// AddWebhookEndpoint registers url: every event from now on is POSTed to it,
// signed with secret as Stripe signs (Stripe-Signature: t=...,v1=...), and
// retried with backoff while it answers non-2xx.
// Events are in the fake's own API version, 2023-10-16 (an endpoint
// created without a version gets the account's default version).
func (s *Server) AddWebhookEndpoint(url, secret string) {
	s.AddWebhookEndpointWithVersion(url, secret, DefaultAPIVersion)
}

// AddWebhookEndpointWithVersion registers url like AddWebhookEndpoint, with
// the endpoint's API version set: Stripe renders each endpoint's events in
// that endpoint's version (https://docs.stripe.com/webhooks/versioning).
// See renderObject for the versions whose shapes differ.
func (s *Server) AddWebhookEndpointWithVersion(url, secret, apiVersion string) {
	e := &endpoint{url: url, secret: secret, apiVersion: apiVersion, client: &http.Client{Timeout: 10 * time.Second}, srv: s}
	e.cond = sync.NewCond(&e.mu)
	s.mu.Lock()
	s.endpoints = append(s.endpoints, e)
	s.mu.Unlock()
	go e.run()
}

// SetDelivery changes how events are delivered.
func (s *Server) SetDelivery(d Delivery) {
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = 8
	}
	if d.RetryBackoff <= 0 {
		d.RetryBackoff = 50 * time.Millisecond
	}
	s.delivery.Store(&d)
	s.mu.Lock()
	eps := append([]*endpoint(nil), s.endpoints...)
	s.mu.Unlock()
	for _, e := range eps {
		e.mu.Lock()
		e.cond.Broadcast()
		e.mu.Unlock()
	}
}

// deliveryOpts is read without s.mu: endpoints read it while holding their
// own lock, and emit takes an endpoint's lock while holding s.mu.
func (s *Server) deliveryOpts() Delivery {
	return *s.delivery.Load()
}

// Events returns every event emitted so far.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// FlushEvents waits until every endpoint's queue is delivered (or given up).
func (s *Server) FlushEvents(ctx context.Context) error {
	for {
		s.mu.Lock()
		eps := append([]*endpoint(nil), s.endpoints...)
		s.mu.Unlock()
		idle := true
		for _, e := range eps {
			e.mu.Lock()
			if len(e.queue) > 0 || e.busy {
				idle = false
			}
			e.mu.Unlock()
		}
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("events still queued: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// emit records an event and queues it for every endpoint; s.mu is held.
func (s *Server) emit(r *request, typ string, obj map[string]any, prev map[string]any) {
	data := map[string]any{"object": unexpanded(obj)}
	if prev != nil {
		data["previous_attributes"] = prev
	}
	req := map[string]any{"id": nil, "idempotency_key": nil}
	if r != nil {
		req = map[string]any{"id": r.reqID, "idempotency_key": nullable(r.idem)}
	}
	ev := map[string]any{
		"id": s.newID("evt"), "object": "event", "api_version": DefaultAPIVersion, "created": s.now.Unix(),
		"type": typ, "livemode": false, "pending_webhooks": len(s.endpoints), "request": req, "data": data,
	}
	b, _ := json.Marshal(ev)
	e := Event{ID: ev["id"].(string), Type: typ, Created: s.now.Unix(), JSON: b}
	s.events = append(s.events, e)
	rendered := map[string][]byte{DefaultAPIVersion: b}
	for _, ep := range s.endpoints {
		if !ep.accepts(typ) {
			continue
		}
		v := ep.apiVersion
		if _, ok := rendered[v]; !ok {
			rendered[v] = renderEvent(ev, v)
		}
		out := e
		out.JSON = rendered[v]
		ep.enqueue(out)
	}
}

// unexpanded is obj as an event carries it: Stripe never expands objects
// in event payloads, so an expandable field is its ID even where the API
// answer the fake built obj for expanded it ("Expanding responses":
// https://docs.stripe.com/api/expanding_objects, expansion applies to API
// requests; https://docs.stripe.com/webhooks, event data.object is the
// object's state at the event). An invoice's payment_intent is then a bare
// ID: its status and last_payment_error are for a read of the payment intent
// to give. obj is not changed.
func unexpanded(obj map[string]any) map[string]any {
	var out map[string]any
	for _, field := range []string{"payment_intent", "latest_invoice"} {
		x, ok := obj[field].(map[string]any)
		if !ok {
			continue
		}
		if out == nil {
			out = make(map[string]any, len(obj))
			for k, v := range obj {
				out[k] = v
			}
		}
		out[field] = x["id"]
	}
	if out == nil {
		return obj
	}
	return out
}

// emitUpdated emits an *.updated event with previous_attributes when
// something changed.
func (s *Server) emitUpdated(r *request, typ string, before, after map[string]any) {
	prev := map[string]any{}
	for k, v := range before {
		if !reflect.DeepEqual(normalize(v), normalize(after[k])) {
			prev[k] = v
		}
	}
	if len(prev) == 0 {
		return
	}
	s.emit(r, typ, after, prev)
}

func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func (e *endpoint) enqueue(ev Event) {
	e.mu.Lock()
	e.queue = append(e.queue, ev)
	e.cond.Broadcast()
	e.mu.Unlock()
}

func (e *endpoint) stop() {
	e.mu.Lock()
	e.stopped = true
	e.cond.Broadcast()
	e.mu.Unlock()
}

func (e *endpoint) run() {
	for {
		e.mu.Lock()
		for !e.stopped && (len(e.queue) == 0 || e.srv.deliveryOpts().Paused) {
			e.cond.Wait()
		}
		if e.stopped {
			e.mu.Unlock()
			return
		}
		batch := e.queue
		e.queue = nil
		e.busy = true
		e.mu.Unlock()

		d := e.srv.deliveryOpts()
		if d.Shuffle {
			rand.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		}
		for _, ev := range batch {
			for n := 0; n <= d.Duplicates; n++ {
				e.deliver(ev, d)
			}
		}
		e.mu.Lock()
		e.busy = false
		e.mu.Unlock()
	}
}

// Sign returns the Stripe-Signature header for payload at time t.
func Sign(payload []byte, secret string, t time.Time) string {
	ts := fmt.Sprintf("%d", t.Unix())
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(payload)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

func (e *endpoint) deliver(ev Event, d Delivery) {
	backoff := d.RetryBackoff
	for attempt := 1; attempt <= d.MaxAttempts; attempt++ {
		req, err := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(ev.JSON))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
		// The signature carries wall-clock time, as Stripe's does; the
		// event's created field carries the test clock.
		req.Header.Set("Stripe-Signature", Sign(ev.JSON, e.secret, time.Now()))
		resp, err := e.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				e.mu.Lock()
				e.delivered++
				e.mu.Unlock()
				return
			}
		}
		e.mu.Lock()
		e.failed++
		stopped := e.stopped
		e.mu.Unlock()
		if stopped {
			return
		}
		time.Sleep(backoff)
		backoff *= 2
	}
}
