package app

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationv1 "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1 "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// The metrics endpoint's authentication and authorization make the same
// checks, with the same cache lifetimes, as controller-runtime's
// filters.WithAuthenticationAndAuthorization: the caller's bearer token is
// authenticated with a TokenReview, and the request (its lower-case method
// as the verb, its path as a non-resource URL) is authorized for that user
// with a SubjectAccessReview. That package links k8s.io/apiserver and with
// it CEL, gRPC and hundreds of other packages into the binary; their code
// and initialisation cost the manager about 18 MiB of resident memory, so
// the two reviews are made here with client-go's typed clients instead.
const (
	metricsAuthnTTL      = time.Minute
	metricsAllowTTL      = 5 * time.Minute
	metricsDenyTTL       = 30 * time.Second
	metricsReviewTimeout = 10 * time.Second
	// metricsAuthCacheMax bounds each decision cache, so callers sending
	// many distinct tokens cannot grow it without limit.
	metricsAuthCacheMax = 1024
)

// metricsAuthFilter is the metrics server's FilterProvider.
func metricsAuthFilter(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	authn, err := authenticationv1.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("creating the TokenReview client: %w", err)
	}
	authz, err := authorizationv1.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("creating the SubjectAccessReview client: %w", err)
	}
	a := &metricsAuth{tokens: authn.TokenReviews(), reviews: authz.SubjectAccessReviews(), now: time.Now}
	return a.filter, nil
}

type tokenReviewer interface {
	Create(ctx context.Context, r *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error)
}

type accessReviewer interface {
	Create(ctx context.Context, r *authzv1.SubjectAccessReview, opts metav1.CreateOptions) (*authzv1.SubjectAccessReview, error)
}

type metricsAuth struct {
	tokens  tokenReviewer
	reviews accessReviewer
	now     func() time.Time

	mu     sync.Mutex
	users  map[[sha256.Size]byte]cachedUser // by the token's hash
	access map[string]cachedDecision        // by the review's spec
}

type cachedUser struct {
	user    *authnv1.UserInfo // nil: not authenticated
	expires time.Time
}

type cachedDecision struct {
	allowed bool
	reason  string
	expires time.Time
}

func (a *metricsAuth) filter(log logr.Logger, next http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		token, ok := bearerToken(req)
		if !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		user, err := a.authenticate(req.Context(), token)
		if err != nil {
			log.Error(err, "Authentication failed")
			http.Error(w, "Authentication failed", http.StatusInternalServerError)
			return
		}
		if user == nil {
			log.V(4).Info("Authentication failed")
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		allowed, reason, err := a.authorize(req.Context(), user, strings.ToLower(req.Method), req.URL.Path)
		if err != nil {
			msg := fmt.Sprintf("Authorization for user %s failed", user.Username)
			log.Error(err, msg)
			http.Error(w, msg, http.StatusInternalServerError)
			return
		}
		if !allowed {
			msg := fmt.Sprintf("Authorization denied for user %s", user.Username)
			log.V(4).Info(msg, "reason", reason)
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, req)
	}), nil
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header (the scheme is case-insensitive, as in RFC 6750).
func bearerToken(req *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(req.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return "", false
	}
	return token, true
}

// authenticate returns the token's user, or nil when the API server does
// not authenticate it.
func (a *metricsAuth) authenticate(ctx context.Context, token string) (*authnv1.UserInfo, error) {
	key := sha256.Sum256([]byte(token))
	now := a.now()
	a.mu.Lock()
	if c, ok := a.users[key]; ok && now.Before(c.expires) {
		a.mu.Unlock()
		return c.user, nil
	}
	a.mu.Unlock()

	var res *authnv1.TokenReview
	err := retryReview(ctx, func(ctx context.Context) (err error) {
		res, err = a.tokens.Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reviewing the token: %w", err)
	}
	var user *authnv1.UserInfo
	if res.Status.Authenticated {
		user = &res.Status.User
	}
	a.mu.Lock()
	if a.users == nil || len(a.users) >= metricsAuthCacheMax {
		a.users = pruned(a.users, now, func(c cachedUser) time.Time { return c.expires })
	}
	a.users[key] = cachedUser{user: user, expires: now.Add(metricsAuthnTTL)}
	a.mu.Unlock()
	return user, nil
}

// authorize asks whether user may use verb on the non-resource URL path.
func (a *metricsAuth) authorize(ctx context.Context, user *authnv1.UserInfo, verb, path string) (bool, string, error) {
	extra := make(map[string]authzv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	spec := authzv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		NonResourceAttributes: &authzv1.NonResourceAttributes{Path: path, Verb: verb},
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return false, "", err
	}
	key := string(raw)
	now := a.now()
	a.mu.Lock()
	if c, ok := a.access[key]; ok && now.Before(c.expires) {
		a.mu.Unlock()
		return c.allowed, c.reason, nil
	}
	a.mu.Unlock()

	var res *authzv1.SubjectAccessReview
	err = retryReview(ctx, func(ctx context.Context) (err error) {
		res, err = a.reviews.Create(ctx, &authzv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return false, "", fmt.Errorf("reviewing access: %w", err)
	}
	allowed := res.Status.Allowed
	ttl := metricsDenyTTL
	if allowed {
		ttl = metricsAllowTTL
	}
	a.mu.Lock()
	if a.access == nil || len(a.access) >= metricsAuthCacheMax {
		a.access = pruned(a.access, now, func(c cachedDecision) time.Time { return c.expires })
	}
	a.access[key] = cachedDecision{allowed: allowed, reason: res.Status.Reason, expires: now.Add(ttl)}
	a.mu.Unlock()
	return allowed, res.Status.Reason, nil
}

// pruned drops m's expired entries, and all of them if it is still full.
func pruned[K comparable, V any](m map[K]V, now time.Time, expires func(V) time.Time) map[K]V {
	for k, v := range m {
		if !now.Before(expires(v)) {
			delete(m, k)
		}
	}
	if m == nil || len(m) >= metricsAuthCacheMax {
		return make(map[K]V)
	}
	return m
}

// retryReview makes one review call with its own deadline, retrying a
// failed call (not a negative answer) a few times with backoff, as the API
// server's delegating authenticator and authorizer do.
func retryReview(ctx context.Context, call func(context.Context) error) error {
	delay := 500 * time.Millisecond
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(delay):
			}
			delay = delay * 3 / 2
		}
		cctx, cancel := context.WithTimeout(ctx, metricsReviewTimeout)
		err = call(cctx)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}
