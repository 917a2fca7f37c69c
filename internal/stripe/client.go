package stripe

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/stripe-operator/stripe-operator/internal/identity"
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
// collecting 429s), paced per endpoint and for Search as well; a 429 is
// applied by its Stripe-Rate-Limited-Reason (ratelimit.go): a
// resource-specific one backs off only that object, an endpoint one pauses
// only that endpoint, any other pauses every caller for Retry-After (or one
// second); a call that would have to wait longer than its context
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
	// EndpointRateLimit is requests per second to one endpoint (method and
	// path, https://docs.stripe.com/rate-limits); 0 means 20, 80% of
	// Stripe's 25, and a negative value turns per-endpoint pacing off. When
	// RateLimit is above Stripe's live global limit (100/s), which only
	// makes sense against a test double, 0 also means off.
	EndpointRateLimit float64
	// SearchRateLimit is requests per second to the Search API, all Search
	// endpoints together; 0 means 16, 80% of Stripe's 20 (off when
	// per-endpoint pacing is off), negative means off.
	SearchRateLimit float64
	// HTTPClient is the base HTTP client; nil means one with an 80 s timeout.
	HTTPClient *http.Client
	// CallTimeout is the deadline of one call, stripe-go's retries included;
	// 0 means 20 s. It should be shorter than the HTTP client's timeout.
	CallTimeout time.Duration
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
	// gate stops calls while no accepted API key is held (credentials.go).
	gate credentialsGate
	// lookups is the adoption lookup's Search state and list fallback
	// (identity_lookup.go).
	lookups identityLookups
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
// empty key is allowed so the operator can start before its credentials
// Secret exists, and then every call fails with a CredentialsMissing error
// without a request.
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
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 20 * time.Second
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.RateLimit/4))
	}
	base := cfg.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: 80 * time.Second}
	}
	endpointRate, searchRate := cfg.EndpointRateLimit, cfg.SearchRateLimit
	if endpointRate == 0 && cfg.RateLimit <= 100 {
		endpointRate = 20
	}
	if searchRate == 0 && endpointRate > 0 {
		searchRate = 16
	}
	lim := newLimiter(cfg.RateLimit, cfg.Burst).withEndpointRates(max(endpointRate, 0), max(searchRate, 0))
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
	if cfg.APIKey == "" {
		c.SetCredentialsProblem(CredentialsMissing, "No Stripe API key is configured.")
	}
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
	c.gate.set(nil)
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

// Idempotency keys follow Stripe's guidance
// (https://docs.stripe.com/api/idempotent_requests): one key per intent.
// Stripe saves the first response to a key for 24 hours, errors from an
// endpoint that started executing included, and replays it; a key reused
// with other parameters is refused (400), a key in use by a concurrent
// request is refused (409).
//
//   - A create is one intent that may take several passes (a crash, a
//     timeout): its key is IntentKey(owner, action, intent), where intent is
//     a nonce the reconciler persists (the create-pending annotation) before
//     the first call and replaces once Stripe has given a definitive answer
//     (see AnswerStored), so a saved decline or 500 never sticks.
//   - Every other write sets a target state (update, attach, cancel, delete)
//     and is idempotent by itself, because the reconciler reads Stripe
//     before it writes. Such a write gets a fresh key per attempt
//     (attemptKey); stripe-go's own retries of that attempt reuse it. A
//     repeated change (A -> B -> A, the same Dashboard drift corrected
//     twice) is therefore a new request that Stripe executes, never a
//     replay of an old success.
//   - A response that Stripe marks Idempotent-Replayed is never taken as the
//     current state: the object is read again (see current).

// IntentKey is the idempotency key of one create intent. At most 255
// characters (Stripe's limit).
func IntentKey(owner Owner, action, intent string) string {
	key := "so-" + owner.UID + "-" + action + "-" + intent
	if len(key) > 255 {
		sum := sha256.Sum256([]byte(key))
		key = key[:255-33] + "-" + hex.EncodeToString(sum[:16])
	}
	return key
}

// createKey is the key of a create: IntentKey when the caller holds an
// intent, a fresh attempt key when the create is guarded otherwise (a
// strongly consistent lookup right before it).
func createKey(owner Owner, action, intent string) string {
	if intent == "" {
		return attemptKey(owner, action)
	}
	return IntentKey(owner, action, intent)
}

// NewIntent returns a fresh intent nonce for IntentKey.
func NewIntent() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// attemptKey is a fresh key for one attempt of a write that is idempotent
// by itself.
func attemptKey(owner Owner, action string) string {
	return IntentKey(owner, action, NewIntent())
}

// AnswerStored reports whether err is a response that Stripe saved under
// the request's idempotency key: any answer from an endpoint that started
// executing. Retrying under the same key would only replay it, so the
// intent must end: look the object up, then start a new intent. Transport
// errors (no answer), 429s, 409 key-in-use conflicts and authentication
// failures are not saved by Stripe.
func AnswerStored(err error) bool {
	var se *Error
	if !errors.As(err, &se) || se.HTTPStatus == 0 {
		return false
	}
	switch se.HTTPStatus {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusConflict, http.StatusTooManyRequests:
		return false
	}
	return true
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

// identityQuery is the Search API query for owner's identity
// (https://docs.stripe.com/search#query-fields-for-customers: metadata
// fields, exact match, joined by AND).
func identityQuery(owner Owner) string {
	clause := func(k, v string) string {
		return "metadata['" + k + "']:'" + strings.ReplaceAll(v, "'", "\\'") + "'"
	}
	return strings.Join([]string{clause(identity.KeyInstance, owner.Instance), clause(identity.KeyKind, owner.Kind),
		clause(identity.KeyNamespace, owner.Namespace), clause(identity.KeyName, owner.Name)}, " AND ")
}

// call runs fn, classifying its error and logging the request ID.
//
// Each call has its own deadline (Config.CallTimeout), stripe-go's retries
// included, so one hung request holds a reconcile worker for at most that
// long; the caller's own deadline applies when it is earlier.
func (c *Client) call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if err := c.checkCredentials(op); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	err := fn(ctx)
	if err == nil {
		return nil
	}
	e := classify(op, err)
	c.noteAuthFailure(e)
	c.log.V(1).Info("Stripe call failed", "op", op, "class", e.Class.String(), "status", e.HTTPStatus, "code", e.Code, "requestID", e.RequestID)
	return e
}

// replayed reports whether Stripe answered from its idempotency cache.
func replayed(r *stripego.APIResponse) bool {
	return r != nil && r.Header.Get("Idempotent-Replayed") == "true"
}

// current returns what a write returned, unless Stripe replayed a saved
// response: that is the answer to an earlier request, not the state now, so
// the object is read again.
// answeredAt is Stripe's time of an answer: every API response carries an
// HTTP Date header (RFC 9110 section 6.6.1), to the second. 0 when absent.
func answeredAt(r *stripego.APIResponse) int64 {
	if r == nil {
		return 0
	}
	t, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return 0
	}
	return t.Unix()
}

func current[T any](resp *stripego.APIResponse, obj T, get func() (T, error)) (T, error) {
	if !replayed(resp) {
		return obj, nil
	}
	return get()
}

// LimiterCounts reports how many 429s paused every caller (global reasons)
// and how many backed off a single object (resource-specific).
func (c *Client) LimiterCounts() (globalPauses, resourceBackoffs int) {
	return c.limiter.counts()
}
