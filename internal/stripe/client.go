package stripe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Which errors are retried, and by whom.
//
// stripe-go v76 (BackendImplementation.shouldRetry) retries, up to
// MaxNetworkRetries with its own backoff: network errors (except TLS, scheme
// and redirect errors), any response with `Stripe-Should-Retry: true`, 409
// Conflict, 429 only when the error code is lock_timeout, 5xx on non-POST
// requests, and 503 on any request. It never retries `Stripe-Should-Retry:
// false`. It sends the idempotency key this package sets, so its retries of
// a POST are safe.
//
// This package adds: one client-side token-bucket limiter shared by every
// controller (so the operator stays under Stripe's rate limit instead of
// collecting 429s); on a 429 the limiter pauses every caller for Retry-After
// (or one second); a call that would have to wait longer than its context
// allows fails at once with a RateLimited *Error, which reconcilers turn into
// a requeue after RetryAfter instead of an error storm. Other failures are
// classified (see errors.go) and returned: the reconcilers' workqueue backoff
// is the retry for Retryable errors, so a reconcile never blocks long.

// Config configures a Client.
type Config struct {
	// APIKey is a secret (sk_) or restricted (rk_) key.
	APIKey string
	// BaseURL is the API's base URL; "" means Stripe's own.
	BaseURL string
	// AllowLiveMode permits live-mode keys.
	AllowLiveMode bool
	// RateLimit is requests per second shared by all callers; 0 means 20 in
	// test mode and 80 in live mode.
	RateLimit float64
	// Burst is the limiter's burst; 0 means max(1, RateLimit/4).
	Burst int
	// HTTPClient is the base HTTP client; nil means one with an 80 s timeout.
	HTTPClient *http.Client
	// MaxNetworkRetries is stripe-go's own retry count (default 2).
	MaxNetworkRetries *int64
	// Logger logs request IDs of failed calls; never keys or bodies.
	Logger logr.Logger
}

// Client implements API on stripe-go v76.
type Client struct {
	mu      sync.RWMutex
	api     *client.API
	mode    string
	cfg     Config
	backend *stripego.Backends
	limiter *limiter
	log     logr.Logger
}

var _ API = (*Client)(nil)

// ErrLiveModeRefused is returned for a live key without AllowLiveMode.
var ErrLiveModeRefused = errors.New("a live-mode Stripe key was given but live mode is not allowed (set --allow-live-mode)")

// ErrNoAPIKey is returned for an empty key.
var ErrNoAPIKey = errors.New("no Stripe API key configured")

// KeyMode returns "live" or "test" for a key, or an error for a key that is
// neither a secret nor a restricted key.
func KeyMode(key string) (string, error) {
	switch {
	case key == "":
		return "", ErrNoAPIKey
	case strings.HasPrefix(key, "sk_live_"), strings.HasPrefix(key, "rk_live_"):
		return "live", nil
	case strings.HasPrefix(key, "sk_test_"), strings.HasPrefix(key, "rk_test_"):
		return "test", nil
	}
	return "", errors.New("the Stripe API key is not a secret (sk_) or restricted (rk_) key")
}

// New builds a Client. It refuses live keys unless cfg.AllowLiveMode; an
// empty key is allowed (calls fail with an Auth error) so the operator can
// start before its credentials Secret exists.
func New(cfg Config) (*Client, error) {
	mode := "test"
	if cfg.APIKey != "" {
		m, err := KeyMode(cfg.APIKey)
		if err != nil {
			return nil, err
		}
		if m == "live" && !cfg.AllowLiveMode {
			return nil, ErrLiveModeRefused
		}
		mode = m
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = 20
		if mode == "live" {
			cfg.RateLimit = 80
		}
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.RateLimit/4))
	}
	base := cfg.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: 80 * time.Second}
	}
	lim := newLimiter(cfg.RateLimit, cfg.Burst)
	transport := base.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	hc := *base
	hc.Transport = &instrumentedTransport{next: transport, limiter: lim}
	retries := cfg.MaxNetworkRetries
	if retries == nil {
		retries = stripego.Int64(2)
	}
	bc := &stripego.BackendConfig{
		HTTPClient:        &hc,
		MaxNetworkRetries: retries,
		EnableTelemetry:   stripego.Bool(false),
		LeveledLogger:     &stripego.LeveledLogger{Level: stripego.LevelNull},
	}
	if cfg.BaseURL != "" {
		bc.URL = stripego.String(strings.TrimRight(cfg.BaseURL, "/"))
	}
	c := &Client{cfg: cfg, mode: mode, backend: stripego.NewBackendsWithConfig(bc), limiter: lim, log: cfg.Logger}
	if c.log.GetSink() == nil {
		c.log = logr.Discard()
	}
	c.api = client.New(cfg.APIKey, c.backend)
	c.cfg.APIKey = "" // the key lives only inside stripe-go's client
	return c, nil
}

// String never prints the key.
func (c Config) String() string {
	return fmt.Sprintf("stripe.Config{APIKey:[redacted], BaseURL:%q, AllowLiveMode:%t, RateLimit:%g}", c.BaseURL, c.AllowLiveMode, c.RateLimit)
}

// GoString never prints the key.
func (c Config) GoString() string { return c.String() }

// String never prints the key.
func (c *Client) String() string {
	return fmt.Sprintf("stripe.Client{mode:%s, config:%s}", c.Mode(), c.cfg)
}

// GoString never prints the key.
func (c *Client) GoString() string { return c.String() }

// SetAPIKey swaps the key (credentials rotation), with the same live-mode
// check as New.
func (c *Client) SetAPIKey(key string) error {
	m, err := KeyMode(key)
	if err != nil {
		return err
	}
	if m == "live" && !c.cfg.AllowLiveMode {
		return ErrLiveModeRefused
	}
	api := client.New(key, c.backend)
	c.mu.Lock()
	c.api, c.mode = api, m
	c.mu.Unlock()
	return nil
}

// Mode is "test" or "live".
func (c *Client) Mode() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.mode
}

func (c *Client) sc() *client.API {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.api
}

// IdempotencyKey derives the key of one intent: the owner's UID, the action
// and a hash of the canonical JSON of the parameters. The same intent always
// gets the same key (a retry is replayed by Stripe for 24 hours); a changed
// intent gets a new one. At most 255 characters.
func IdempotencyKey(owner Owner, action string, params any) string {
	b, _ := json.Marshal(params) // maps marshal with sorted keys: canonical
	sum := sha256.Sum256(append([]byte(owner.UID+"\x00"+action+"\x00"), b...))
	key := "so-" + owner.UID + "-" + action + "-" + hex.EncodeToString(sum[:16])
	if len(key) > 255 {
		key = key[:255]
	}
	return key
}

func setup(ctx context.Context, p *stripego.Params, key string, expand ...string) {
	p.Context = ctx
	if key != "" {
		p.SetIdempotencyKey(key)
	}
	for _, e := range expand {
		p.AddExpand(e)
	}
}

func setMetadata(p *stripego.Params, m map[string]string) {
	for k, v := range m {
		p.AddMetadata(k, v)
	}
}

// withOwner adds the operator's link-back metadata to a create's metadata.
func withOwner(owner Owner, m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+3)
	for k, v := range m {
		out[k] = v
	}
	out["stripe-operator.io/namespace"] = owner.Namespace
	out["stripe-operator.io/name"] = owner.Name
	out["stripe-operator.io/uid"] = owner.UID
	return out
}

// call runs fn, classifying its error and logging the request ID.
func (c *Client) call(op string, fn func() error) error {
	err := fn()
	if err == nil {
		return nil
	}
	e := classify(op, err)
	c.log.V(1).Info("Stripe call failed", "op", op, "class", e.Class.String(), "status", e.HTTPStatus, "code", e.Code, "requestID", e.RequestID)
	return e
}

// replayed reports whether Stripe answered from its idempotency cache.
func replayed(r *stripego.APIResponse) bool {
	return r != nil && r.Header.Get("Idempotent-Replayed") == "true"
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// stateHash is a short deterministic hash of an object's state.
func stateHash(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// updateOnce runs an update under key. If Stripe replays the stored response
// of an earlier identical update (Idempotent-Replayed) while the object has
// changed since (for example a Dashboard edit that undid that update), the
// update is sent again under a key derived from the object's current state:
// still deterministic, so a retry of that second call is replayed too.
func updateOnce[T any, D any](key string, do func(key string) (T, *stripego.APIResponse, error), get func() (T, error), conv func(T) D) (D, error) {
	var zero D
	obj, resp, err := do(key)
	if err != nil {
		return zero, err
	}
	if replayed(resp) {
		fresh, err := get()
		if err != nil {
			return zero, err
		}
		if !sameJSON(conv(fresh), conv(obj)) {
			if obj, _, err = do(key + "-" + stateHash(conv(fresh))); err != nil {
				return zero, err
			}
		}
	}
	return conv(obj), nil
}
