package stripe

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// Reasons a client holds no usable API key. They are the condition reasons
// the reconcilers report (Stalled), CamelCase.
const (
	// CredentialsMissing: no API key is configured.
	CredentialsMissing = "CredentialsMissing"
	// LiveKeyRefused: the key is a live-mode key and live mode is not allowed.
	LiveKeyRefused = "LiveKeyRefused"
	// CredentialsRejected: the key is not a Stripe key, or Stripe answered
	// 401 (invalid, revoked or rolled key) or 403 (the key lacks a
	// permission).
	CredentialsRejected = "CredentialsRejected"
)

// CredentialsError says why a call was not made, or failed, for lack of a
// usable API key. Its message names where the key comes from, never the key.
type CredentialsError struct {
	Reason  string
	Message string
}

func (e *CredentialsError) Error() string { return e.Message }

// credentialsGate holds the current credentials problem. While it is set,
// no request is sent to Stripe.
type credentialsGate struct {
	mu      sync.RWMutex
	problem *CredentialsError
	source  string
}

func (g *credentialsGate) get() *CredentialsError {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.problem
}

func (g *credentialsGate) set(p *CredentialsError) {
	g.mu.Lock()
	g.problem = p
	g.mu.Unlock()
}

func (g *credentialsGate) describeSource() string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.source == "" {
		return "the configured API key"
	}
	return g.source
}

// SetCredentialsSource says, for messages, where the API key comes from
// (for example "key apiKey of Secret ns/name"). It is never the key.
func (c *Client) SetCredentialsSource(source string) {
	c.gate.mu.Lock()
	c.gate.source = source
	c.gate.mu.Unlock()
}

// SetCredentialsProblem stops every Stripe call with reason and message
// (CredentialsMissing, LiveKeyRefused, CredentialsRejected) until a new API
// key is accepted by SetAPIKey.
func (c *Client) SetCredentialsProblem(reason, message string) {
	c.gate.set(&CredentialsError{Reason: reason, Message: message})
}

// CredentialsProblem returns the current credentials problem, nil when the
// client has an accepted key.
func (c *Client) CredentialsProblem() *CredentialsError { return c.gate.get() }

// checkCredentials returns the error a call gets, without any request,
// while the client holds no accepted key.
func (c *Client) checkCredentials(op string) error {
	p := c.gate.get()
	if p == nil {
		return nil
	}
	return &Error{Op: op, Class: ClassAuth, Code: p.Reason, Message: p.Message, Err: p}
}

// noteAuthFailure turns Stripe's 401 into a credentials problem that stops
// further calls with the same key (they would all be refused), and a 403
// into a CredentialsRejected error for this call only (a restricted key may
// lack one permission and have the others).
func (c *Client) noteAuthFailure(e *Error) {
	if e.Class != ClassAuth || e.HTTPStatus == 0 {
		return
	}
	var p *CredentialsError
	switch e.HTTPStatus {
	case http.StatusUnauthorized:
		p = &CredentialsError{Reason: CredentialsRejected,
			Message: fmt.Sprintf("Stripe rejected the API key from %s as invalid, revoked or rolled; put a valid key there.", c.gate.describeSource())}
		c.gate.set(p)
	case http.StatusForbidden:
		p = &CredentialsError{Reason: CredentialsRejected,
			Message: fmt.Sprintf("The API key from %s lacks a permission this operation needs; give the restricted key write access to customers, products, prices and subscriptions.", c.gate.describeSource())}
	default:
		return
	}
	e.Err = errors.Join(e.Err, p)
}
