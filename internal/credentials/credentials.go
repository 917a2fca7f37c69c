// Package credentials holds the Stripe API key and webhook signing secrets,
// read from a Kubernetes Secret (keys apiKey and webhookSigningSecrets, the
// latter one or more whsec_ values separated by newlines, for rotation) and
// re-read when it changes; or from the environment for local runs.
// Nothing here ever prints a secret: String, GoString and MarshalJSON
// redact.
package credentials

import (
	"context"
	"errors"
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

	"github.com/stripe-operator/stripe-operator/internal/stripe"
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
	// OnProblem is called when the credentials Secret gives no usable API
	// key (reason CredentialsMissing, LiveKeyRefused or CredentialsRejected,
	// and a message naming the Secret, never the key), so that the Stripe
	// client makes no call until a key is accepted.
	OnProblem func(reason, message string)
	// problemReason and problemMessage are the current problem ("" when
	// the Secret's key was accepted).
	problemReason, problemMessage string
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

// reportProblem records a credentials problem, hands it to OnProblem and
// notifies subscribers when it is new, so every resource shows it.
func (s *Store) reportProblem(reason, message string) {
	s.mu.Lock()
	changed := s.problemReason != reason || s.problemMessage != message
	s.problemReason, s.problemMessage = reason, message
	subs := append([]chan struct{}(nil), s.subs...)
	onProblem := s.OnProblem
	s.mu.Unlock()
	if !changed {
		return
	}
	if onProblem != nil {
		onProblem(reason, message)
	}
	notify(subs)
}

// Problem returns the current credentials problem; reason is "" when the
// credentials Secret gave an accepted key (or was never read).
func (s *Store) Problem() (reason, message string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.problemReason, s.problemMessage
}

func notify(subs []chan struct{}) {
	for _, ch := range subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Problem reasons, the same strings as the Stalled condition reasons.
const (
	ProblemMissing     = "CredentialsMissing"
	ProblemLiveRefused = "LiveKeyRefused"
	ProblemKeyRejected = "CredentialsRejected"
)

// setFromSecret applies the Secret's API key and signing secrets, or
// reports why its API key cannot be used. The messages name the Secret and
// its key, never the key's value.
func (s *Store) setFromSecret(sec *corev1.Secret, secrets [][]byte, withSecrets bool) error {
	where := fmt.Sprintf("key %s of the credentials Secret %s/%s", KeyAPIKey, sec.Namespace, sec.Name)
	key := strings.TrimSpace(string(sec.Data[KeyAPIKey]))
	set := func(key string) error {
		if withSecrets {
			return s.Set(key, secrets)
		}
		return s.setKey(key)
	}
	if key == "" {
		s.reportProblem(ProblemMissing, fmt.Sprintf("The credentials Secret %s/%s has no %s; put the Stripe API key there.", sec.Namespace, sec.Name, KeyAPIKey))
		return set(s.APIKey())
	}
	if err := set(key); err != nil {
		if errors.Is(err, stripe.ErrLiveModeRefused) {
			s.reportProblem(ProblemLiveRefused, fmt.Sprintf("The %s is a live-mode key; the operator accepts live keys only when started with --allow-live-mode.", where))
		} else {
			s.reportProblem(ProblemKeyRejected, fmt.Sprintf("The %s is not a Stripe secret or restricted key (sk_ or rk_).", where))
		}
		return err
	}
	// The key is accepted. After a problem the key may be the one held
	// before it (unchanged, so Set did not hand it on): hand it on again to
	// lift the problem, and wake every resource.
	s.mu.Lock()
	hadProblem := s.problemReason != ""
	s.problemReason, s.problemMessage = "", ""
	onKey := s.OnAPIKey
	subs := append([]chan struct{}(nil), s.subs...)
	s.mu.Unlock()
	if hadProblem {
		if onKey != nil {
			if err := onKey(key); err != nil {
				return err
			}
		}
		notify(subs)
	}
	return nil
}

// secretMissing reports a missing Secret when no API key is held.
func (s *Store) secretMissing(ns, name string) {
	if s.APIKey() != "" {
		return
	}
	s.reportProblem(ProblemMissing, fmt.Sprintf("The credentials Secret %s/%s does not exist; create it with the Stripe API key under %s.", ns, name, KeyAPIKey))
}

// setKey replaces only the API key (the signing secrets come from their
// own Secret).
func (s *Store) setKey(key string) error {
	s.mu.RLock()
	same := s.apiKey == key
	onKey := s.OnAPIKey
	s.mu.RUnlock()
	if same {
		return nil
	}
	if key != "" && onKey != nil {
		if err := onKey(key); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.apiKey = key
	subs := append([]chan struct{}(nil), s.subs...)
	s.mu.Unlock()
	notify(subs)
	return nil
}

// SetWebhookSecrets replaces only the signing secrets (the API key comes
// from its own Secret).
func (s *Store) SetWebhookSecrets(secrets [][]byte) {
	s.mu.Lock()
	if sameSecrets(s.secrets, secrets) {
		s.mu.Unlock()
		return
	}
	s.secrets = secrets
	subs := append([]chan struct{}(nil), s.subs...)
	s.mu.Unlock()
	notify(subs)
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

// Parts says what a Secret provides.
type Parts int

const (
	// PartsAll: the API key (apiKey) and the signing secrets
	// (webhookSigningSecrets), the single-Secret layout.
	PartsAll Parts = iota
	// PartsAPIKey: only the API key; the manager's Secret when the signing
	// secrets have their own.
	PartsAPIKey
	// PartsWebhookSecrets: only the signing secrets; the one Secret the
	// webhook server may read.
	PartsWebhookSecrets
)

// SecretReconciler keeps a Store in step with one Secret.
type SecretReconciler struct {
	Client    client.Client
	Namespace string
	Name      string
	Store     *Store
	// Provides is what the Secret holds (default both parts).
	Provides Parts
	// Reader reads the Secret (default Client); set it when the Secret is
	// cached by another cache than the manager's.
	Reader client.Reader
	// SkipNameValidation lets tests start several managers.
	SkipNameValidation bool
}

// Reconcile re-reads the Secret.
func (r *SecretReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	var sec corev1.Secret
	reader := r.Reader
	if reader == nil {
		reader = r.Client
	}
	if err := reader.Get(ctx, req.NamespacedName, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			logger.Info("Credentials Secret not found; keeping the current credentials")
			if r.Provides != PartsWebhookSecrets {
				r.Store.secretMissing(req.Namespace, req.Name)
			}
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	var secrets [][]byte
	if r.Provides != PartsAPIKey {
		var err error
		if secrets, err = ParseSecrets(string(sec.Data[KeyWebhookSigningSecrets])); err != nil {
			logger.Error(err, "Invalid credentials Secret")
			return ctrl.Result{}, nil
		}
	}
	if r.Provides == PartsWebhookSecrets {
		r.Store.SetWebhookSecrets(secrets)
		logger.Info("Loaded webhook signing secrets", "webhookSecrets", len(secrets))
		return ctrl.Result{}, nil
	}
	if err := r.Store.setFromSecret(&sec, secrets, r.Provides == PartsAll); err != nil {
		// The error names the problem (for example a live key without
		// --allow-live-mode) and never the key.
		logger.Error(err, "Refusing the credentials Secret's API key")
		return ctrl.Result{}, nil
	}
	logger.Info("Loaded credentials", "webhookSecrets", len(secrets), "apiKeySet", len(sec.Data[KeyAPIKey]) > 0)
	return ctrl.Result{}, nil
}

// SetupWithManager watches only the one Secret, in the manager's cache.
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
	return LoadParts(ctx, c, ns, name, s, PartsAll)
}

// LoadParts is Load for a Secret that holds only some parts.
func LoadParts(ctx context.Context, c client.Reader, ns, name string, s *Store, parts Parts) error {
	var sec corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			if parts != PartsWebhookSecrets {
				s.secretMissing(ns, name)
			}
			return nil
		}
		return fmt.Errorf("reading credentials Secret %s/%s: %w", ns, name, err)
	}
	var secrets [][]byte
	if parts != PartsAPIKey {
		var err error
		if secrets, err = ParseSecrets(string(sec.Data[KeyWebhookSigningSecrets])); err != nil {
			return err
		}
	}
	if parts == PartsWebhookSecrets {
		s.SetWebhookSecrets(secrets)
		return nil
	}
	return s.setFromSecret(&sec, secrets, parts == PartsAll)
}
