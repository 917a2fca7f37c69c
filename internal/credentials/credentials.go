// Package credentials holds the Stripe API key and webhook signing secrets,
// read from a Kubernetes Secret (keys apiKey and webhookSigningSecrets, the
// latter one or more whsec_ values separated by newlines, for rotation) and
// re-read when it changes; or from the environment for local runs.
// Nothing here ever prints a secret: String, GoString and MarshalJSON
// redact.
package credentials

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Secret keys.
const (
	KeyAPIKey                = "apiKey"
	KeyWebhookSigningSecrets = "webhookSigningSecrets"
)

// Store is the current credentials; safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	apiKey  string
	secrets [][]byte
	subs    []chan struct{}
	// OnAPIKey is called with every new non-empty API key (for the Stripe
	// client's SetAPIKey); its error is returned by Set.
	OnAPIKey func(string) error
}

// APIKey returns the API key.
func (s *Store) APIKey() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.apiKey
}

// WebhookSecrets returns the signing secrets.
func (s *Store) WebhookSecrets() [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.secrets
}

// Subscribe returns a channel that receives a value after each change.
func (s *Store) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs = append(s.subs, ch)
	s.mu.Unlock()
	return ch
}

// Set replaces the credentials and notifies subscribers when they changed.
func (s *Store) Set(apiKey string, secrets [][]byte) error {
	s.mu.Lock()
	changed := s.apiKey != apiKey || !sameSecrets(s.secrets, secrets)
	keyChanged := s.apiKey != apiKey
	s.mu.Unlock()
	if !changed {
		return nil
	}
	if keyChanged && apiKey != "" && s.OnAPIKey != nil {
		if err := s.OnAPIKey(apiKey); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.apiKey, s.secrets = apiKey, secrets
	subs := append([]chan struct{}(nil), s.subs...)
	s.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return nil
}

func sameSecrets(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
}

// String redacts.
func (s *Store) String() string { return "credentials.Store{[redacted]}" }

// GoString redacts.
func (s *Store) GoString() string { return s.String() }

// MarshalJSON redacts.
func (s *Store) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// ParseSecrets splits newline-separated whsec_ values, ignoring blank lines
// and surrounding space.
func ParseSecrets(v string) ([][]byte, error) {
	var out [][]byte
	for _, line := range strings.Split(v, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "whsec_") {
			return nil, fmt.Errorf("%s: every line must be a webhook signing secret starting with whsec_", KeyWebhookSigningSecrets)
		}
		out = append(out, []byte(line))
	}
	return out, nil
}

// FromEnv loads STRIPE_API_KEY and STRIPE_WEBHOOK_SECRETS (or
// STRIPE_WEBHOOK_SECRET) into the store; it reports whether a key was set.
func (s *Store) FromEnv() (bool, error) {
	key := strings.TrimSpace(os.Getenv("STRIPE_API_KEY"))
	raw := os.Getenv("STRIPE_WEBHOOK_SECRETS")
	if raw == "" {
		raw = os.Getenv("STRIPE_WEBHOOK_SECRET")
	}
	secrets, err := ParseSecrets(raw)
	if err != nil {
		return false, err
	}
	if key == "" && len(secrets) == 0 {
		return false, nil
	}
	return key != "", s.Set(key, secrets)
}

// SecretReconciler keeps a Store in step with one Secret.
type SecretReconciler struct {
	Client    client.Client
	Namespace string
	Name      string
	Store     *Store
	// SkipNameValidation lets tests start several managers.
	SkipNameValidation bool
}

// Reconcile re-reads the Secret.
func (r *SecretReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	var sec corev1.Secret
	if err := r.Client.Get(ctx, req.NamespacedName, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			logger.Info("Credentials Secret not found; keeping the current credentials")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	secrets, err := ParseSecrets(string(sec.Data[KeyWebhookSigningSecrets]))
	if err != nil {
		logger.Error(err, "Invalid credentials Secret")
		return ctrl.Result{}, nil
	}
	if err := r.Store.Set(strings.TrimSpace(string(sec.Data[KeyAPIKey])), secrets); err != nil {
		// The error names the problem (for example a live key without
		// --allow-live-mode) and never the key.
		logger.Error(err, "Refusing the credentials Secret's API key")
		return ctrl.Result{}, nil
	}
	logger.Info("Loaded credentials", "webhookSecrets", len(secrets), "apiKeySet", len(sec.Data[KeyAPIKey]) > 0)
	return ctrl.Result{}, nil
}

// SetupWithManager watches only the one Secret.
func (r *SecretReconciler) SetupWithManager(mgr ctrl.Manager) error {
	key := types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
	only := predicate.NewPredicateFuncs(func(o client.Object) bool { return client.ObjectKeyFromObject(o) == key })
	opts := controller.Options{}
	if r.SkipNameValidation {
		t := true
		opts.SkipNameValidation = &t
	}
	return ctrl.NewControllerManagedBy(mgr).Named("credentials").
		For(&corev1.Secret{}, builder.WithPredicates(only)).WithOptions(opts).Complete(r)
}

// Load reads the Secret once, directly (used at start-up before the cache
// runs). A missing Secret is not an error.
func Load(ctx context.Context, c client.Reader, ns, name string, s *Store) error {
	var sec corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading credentials Secret %s/%s: %w", ns, name, err)
	}
	secrets, err := ParseSecrets(string(sec.Data[KeyWebhookSigningSecrets]))
	if err != nil {
		return err
	}
	return s.Set(strings.TrimSpace(string(sec.Data[KeyAPIKey])), secrets)
}
