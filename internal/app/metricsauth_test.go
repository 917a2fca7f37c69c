package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// TestMetricsAuthAgainstTheAPIServer runs the metrics filter against a real
// API server: no token and an unknown token are 401, a service account
// without the /metrics permission is 403, one bound to a ClusterRole with
// nonResourceURLs /metrics get is let through to /metrics and nowhere else.
func TestMetricsAuthAgainstTheAPIServer(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "metrics-auth"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	token := func(name string) string {
		t.Helper()
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name}}
		if err := c.Create(ctx, sa); err != nil {
			t.Fatal(err)
		}
		tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{}}
		if err := c.SubResource("token").Create(ctx, sa, tr); err != nil {
			t.Fatalf("requesting a token for %s: %v", name, err)
		}
		return tr.Status.Token
	}
	scraper, stranger := token("prometheus"), token("stranger")
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics-auth-test-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "metrics-auth-test-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns.Name, Name: "prometheus"}}}
	if err := c.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}

	httpClient, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := metricsAuthFilter(env.Config, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	h, err := filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(path, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, path, auth string
		want             int
	}{
		{"no token", "/metrics", "", http.StatusUnauthorized},
		{"not a bearer token", "/metrics", "Basic " + scraper, http.StatusUnauthorized},
		{"unknown token", "/metrics", "Bearer not-a-token", http.StatusUnauthorized},
		{"no permission", "/metrics", "Bearer " + stranger, http.StatusForbidden},
		{"permitted", "/metrics", "Bearer " + scraper, http.StatusOK},
		{"permitted, lower-case scheme", "/metrics", "bearer " + scraper, http.StatusOK},
		{"permitted, cached", "/metrics", "Bearer " + scraper, http.StatusOK},
		{"another path", "/debug", "Bearer " + scraper, http.StatusForbidden},
	} {
		if got := get(tc.path, tc.auth); got != tc.want {
			t.Errorf("%s: GET %s = %d, want %d", tc.name, tc.path, got, tc.want)
		}
	}
}

// TestMetricsAuthCachesDecisions checks the cache lifetimes: a token's
// review is reused for a minute, an allowed access for five minutes, a
// denied one for thirty seconds.
func TestMetricsAuthCachesDecisions(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tokens := &countingTokens{}
	reviews := &countingReviews{allow: true}
	a := &metricsAuth{tokens: tokens, reviews: reviews, now: func() time.Time { return now }}
	ctx := context.Background()
	check := func(wantTokens, wantReviews int, wantAllowed bool) {
		t.Helper()
		u, err := a.authenticate(ctx, "t")
		if err != nil || u == nil {
			t.Fatalf("authenticate = %v, %v", u, err)
		}
		ok, _, err := a.authorize(ctx, u, "get", "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if tokens.n != wantTokens || reviews.n != wantReviews || ok != wantAllowed {
			t.Fatalf("at %s: %d token reviews, %d access reviews, allowed %v; want %d, %d, %v",
				now.Format(time.TimeOnly), tokens.n, reviews.n, ok, wantTokens, wantReviews, wantAllowed)
		}
	}
	check(1, 1, true)
	now = now.Add(59 * time.Second)
	check(1, 1, true)
	now = now.Add(2 * time.Second) // the token's review expired, the access not
	check(2, 1, true)
	now = now.Add(5 * time.Minute) // both expired; now denied
	reviews.allow = false
	check(3, 2, false)
	now = now.Add(29 * time.Second)
	reviews.allow = true
	check(3, 2, false)
	now = now.Add(2 * time.Second) // the denial expired
	check(3, 3, true)
}

type countingTokens struct{ n int }

func (c *countingTokens) Create(_ context.Context, r *authnv1.TokenReview, _ metav1.CreateOptions) (*authnv1.TokenReview, error) {
	c.n++
	r.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "u"}}
	return r, nil
}

type countingReviews struct {
	n     int
	allow bool
}

func (c *countingReviews) Create(_ context.Context, r *authzv1.SubjectAccessReview, _ metav1.CreateOptions) (*authzv1.SubjectAccessReview, error) {
	c.n++
	r.Status.Allowed = c.allow
	return r, nil
}
