package stripefake

import (
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Webhook endpoints, as Stripe's /v1/webhook_endpoints behaves
// (https://docs.stripe.com/api/webhook_endpoints):
//
//   - the signing secret (whsec_...) is in the create response only; a
//     retrieve, update or list never shows it;
//   - api_version can be set on create only; an endpoint created without it
//     gets events in the account's default version (here 2023-10-16, the
//     only version the fake renders: a create with another version is
//     refused, a limitation of the fake, not of Stripe);
//   - enabled_events lists the event types sent ("*" for all); update
//     replaces the list; disabled=true stops deliveries;
//   - each endpoint signs its deliveries with its own secret;
//   - deleting an endpoint stops its deliveries at once.
//
// Stripe's API (stripe-go v76) has no call to roll an endpoint's secret
// (the Dashboard's "Roll secret" is not in the API); the operator rotates by
// replacing the endpoint, so the fake offers no roll either.

const accountDefaultAPIVersion = DefaultAPIVersion

type webhookEndpoint struct {
	id, url, description, apiVersion, status string
	enabledEvents                            []string
	metadata                                 map[string]string
	created                                  int64
	ep                                       *endpoint
}

func (w *webhookEndpoint) json() map[string]any {
	events := make([]any, len(w.enabledEvents))
	for i, e := range w.enabledEvents {
		events[i] = e
	}
	return map[string]any{"id": w.id, "object": "webhook_endpoint", "url": w.url, "description": nullable(w.description),
		"api_version": nullable(w.apiVersion), "enabled_events": events, "status": w.status, "metadata": copyMeta(w.metadata),
		"created": w.created, "livemode": false, "application": nil}
}

// webhookEndpointStore is the fake's table of API-created endpoints.
type webhookEndpointStore struct {
	byID  map[string]*webhookEndpoint
	order []string
}

// whTable returns the table; s.mu is held.
func (s *Server) whTable() *webhookEndpointStore {
	if s.webhookEndpoints == nil {
		s.webhookEndpoints = &webhookEndpointStore{byID: map[string]*webhookEndpoint{}}
	}
	return s.webhookEndpoints
}

func (r *request) strList(name string) ([]string, bool) {
	idx := r.indexed(name)
	if len(idx) == 0 {
		if v, ok := r.str(name); ok && v == "" {
			return nil, true
		}
		return nil, false
	}
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		v, _ := r.str(name + "[" + i + "]")
		out = append(out, v)
	}
	return out, true
}

func validEndpointURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != ""
}

// createWebhookEndpoint serves POST /v1/webhook_endpoints; s.mu is held.
func (s *Server) createWebhookEndpoint(r *request) (any, *apiError) {
	u, _ := r.str("url")
	if u == "" {
		return nil, invalid("url", "Missing required param: url.")
	}
	if !validEndpointURL(u) {
		return nil, invalid("url", "Invalid URL: %s", u)
	}
	events, _ := r.strList("enabled_events")
	if len(events) == 0 {
		return nil, invalid("enabled_events", "Missing required param: enabled_events.")
	}
	version, _ := r.str("api_version")
	switch version {
	case "", DefaultAPIVersion, APIVersionAcacia, APIVersionBasil, APIVersionClover, APIVersionDahlia:
	default:
		return nil, invalid("api_version", "The test-mode fake renders events in %s, %s, %s, %s and %s only.",
			DefaultAPIVersion, APIVersionAcacia, APIVersionBasil, APIVersionClover, APIVersionDahlia)
	}
	desc, _ := r.str("description")
	meta, _ := r.metadata("")
	w := &webhookEndpoint{id: s.newID("we"), url: u, description: desc, apiVersion: version, status: "enabled",
		enabledEvents: events, metadata: applyMeta(nil, meta), created: s.now.Unix()}
	secret := "whsec_" + s.newID("")[1:]
	// An endpoint without an API version gets events in the account's
	// default version (https://docs.stripe.com/webhooks/versioning).
	rendered := version
	if rendered == "" {
		rendered = accountDefaultAPIVersion
	}
	w.ep = s.addEndpointLocked(u, secret, rendered, events)
	t := s.whTable()
	t.byID[w.id] = w
	t.order = append(t.order, w.id)
	out := w.json()
	out["secret"] = secret
	return out, nil
}

func (s *Server) getWebhookEndpoint(id string) (any, *apiError) {
	w, ok := s.whTable().byID[id]
	if !ok {
		return nil, missing("webhook_endpoint", id)
	}
	return w.json(), nil
}

func (s *Server) updateWebhookEndpoint(r *request, id string) (any, *apiError) {
	w, ok := s.whTable().byID[id]
	if !ok {
		return nil, missing("webhook_endpoint", id)
	}
	if _, ok := r.str("api_version"); ok {
		return nil, invalid("api_version", "Received unknown parameter: api_version")
	}
	if u, ok := r.str("url"); ok && u != w.url {
		if !validEndpointURL(u) {
			return nil, invalid("url", "Invalid URL: %s", u)
		}
		// Deliveries go to the new URL from now on, with the same secret.
		w.url = u
		old := w.ep
		old.stop()
		w.ep = s.addEndpointLocked(u, old.secret, old.apiVersion, w.enabledEvents)
		s.removeEndpointLocked(old)
	}
	if ev, ok := r.strList("enabled_events"); ok {
		if len(ev) == 0 {
			return nil, invalid("enabled_events", "enabled_events cannot be empty.")
		}
		w.enabledEvents = ev
	}
	if d, ok := r.str("description"); ok {
		w.description = d
	}
	if dis, ok := r.bool("disabled"); ok {
		w.status = "enabled"
		if dis {
			w.status = "disabled"
		}
	}
	if m, ok := r.metadata(""); ok {
		w.metadata = applyMeta(w.metadata, m)
	}
	w.ep.configure(w.enabledEvents, w.status == "disabled")
	return w.json(), nil
}

func (s *Server) deleteWebhookEndpoint(id string) (any, *apiError) {
	t := s.whTable()
	w, ok := t.byID[id]
	if !ok {
		return nil, missing("webhook_endpoint", id)
	}
	delete(t.byID, id)
	w.ep.stop()
	s.removeEndpointLocked(w.ep)
	return map[string]any{"id": id, "object": "webhook_endpoint", "deleted": true}, nil
}

// listWebhookEndpoints is GET /v1/webhook_endpoints
// (https://docs.stripe.com/api/webhook_endpoints/list): newest first, paged
// like every list (limit 1 to 100, starting_after, has_more). A deleted
// endpoint is gone from it and from a retrieve.
func (s *Server) listWebhookEndpoints(r *request) (any, *apiError) {
	t := s.whTable()
	return s.list(r, "/v1/webhook_endpoints", t.order, func(id string) (map[string]any, bool) {
		w, ok := t.byID[id]
		if !ok {
			return nil, false
		}
		return w.json(), true
	})
}

// dispatchWebhookEndpoints routes /v1/webhook_endpoints; s.mu is held.
func (s *Server) dispatchWebhookEndpoints(r *request) (any, *apiError, bool) {
	p := r.path
	switch {
	case len(p) == 1 && r.method == http.MethodPost:
		out, err := s.createWebhookEndpoint(r)
		return out, err, true
	case len(p) == 1 && r.method == http.MethodGet:
		out, err := s.listWebhookEndpoints(r)
		return out, err, true
	case len(p) == 2 && r.method == http.MethodGet:
		out, err := s.getWebhookEndpoint(p[1])
		return out, err, true
	case len(p) == 2 && r.method == http.MethodPost:
		out, err := s.updateWebhookEndpoint(r, p[1])
		return out, err, true
	case len(p) == 2 && r.method == http.MethodDelete:
		out, err := s.deleteWebhookEndpoint(p[1])
		return out, err, true
	}
	return nil, nil, false
}

// addEndpointLocked registers a delivery target; s.mu is held.
func (s *Server) addEndpointLocked(u, secret, apiVersion string, events []string) *endpoint {
	e := &endpoint{url: u, secret: secret, apiVersion: apiVersion, client: &http.Client{Timeout: 10 * time.Second}, srv: s}
	e.cond = sync.NewCond(&e.mu)
	e.configure(events, false)
	s.endpoints = append(s.endpoints, e)
	go e.run()
	return e
}

func (s *Server) removeEndpointLocked(ep *endpoint) {
	for i, e := range s.endpoints {
		if e == ep {
			s.endpoints = append(s.endpoints[:i:i], s.endpoints[i+1:]...)
			return
		}
	}
}

// configure sets which event types the endpoint receives.
func (e *endpoint) configure(events []string, disabled bool) {
	e.mu.Lock()
	e.enabled = append([]string(nil), events...)
	e.disabled = disabled
	e.mu.Unlock()
}

// accepts reports whether an event of type typ is sent to the endpoint.
func (e *endpoint) accepts(typ string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.disabled {
		return false
	}
	if len(e.enabled) == 0 {
		return true
	}
	for _, t := range e.enabled {
		if t == "*" || t == typ {
			return true
		}
	}
	return false
}

// WebhookEndpointCount returns how many API-created endpoints exist and
// are enabled, for tests.
func (s *Server) WebhookEndpointCount() (enabled, disabled int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.whTable().byID {
		if w.status == "enabled" {
			enabled++
		} else {
			disabled++
		}
	}
	return enabled, disabled
}
