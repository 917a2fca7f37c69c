// Package app wires the operator together: the controller-runtime manager,
// the Stripe client, the credentials Secret watch, the three reconcilers and
// the webhook server. cmd/manager runs it against a real cluster; cmd/dev
// runs it against an embedded API server and the test-mode Stripe.
package app

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// Scheme has the core and billing types.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(billingv1alpha1.AddToScheme(Scheme))
}

// Options are the manager's settings, bound to flags by BindFlags.
type Options struct {
	MetricsAddr      string
	SecureMetrics    bool
	EnableHTTP2      bool
	ProbeAddr        string
	LeaderElect      bool
	LeaderElectionID string
	// LeaderElectionNamespace is where the leader election Lease lives;
	// empty means the pod's namespace (in a cluster only).
	LeaderElectionNamespace string
	// FieldManager is the field manager of every write (default
	// stripe-operator), whatever the binary is called.
	FieldManager         string
	WebhookAddr          string
	WebhookTolerance     time.Duration
	WebhookMaxBodyBytes  int64
	StripeAPIURL         string
	AllowLiveMode        bool
	StripeRateLimit      float64
	CredentialsNamespace string
	CredentialsName      string
	// WebhookSecretName is the Secret with the webhook signing secrets
	// (key webhookSigningSecrets), the only Secret the webhook server reads.
	// Equal to CredentialsName (or empty), one Secret holds both.
	WebhookSecretName string
	// cachedSecret is the one Secret the manager's cache holds (default
	// CredentialsName).
	cachedSecret string
	ResyncPeriod time.Duration
	// StripeCallTimeout is the deadline of one Stripe call.
	StripeCallTimeout time.Duration
	// MaxConcurrentReconciles is the number of workers per kind.
	MaxConcurrentReconciles int
	// MaxChargeAttempts is the most operator-made charge attempts per
	// subscription in 24 hours.
	MaxChargeAttempts int
	// AdoptionNamespaceSelector selects the namespaces where Stripe objects
	// created outside the operator may be adopted.
	AdoptionNamespaceSelector string
	// PprofAddr serves net/http/pprof when set.
	PprofAddr string
	// InstanceName names this operator instance (its StripeBillingReport).
	InstanceName string
	// AuditPeriod is the time between billing audits.
	AuditPeriod time.Duration
	// RunWebhookServer runs the webhook server inside the manager.
	RunWebhookServer bool
	// SkipNameValidation lets tests and cmd/dev start several managers in
	// one process.
	SkipNameValidation bool
	// AuditClock decides the calendar months of the financial report; nil
	// is the wall clock. cmd/dev gives the test-mode Stripe's clock, which
	// stamps its invoices.
	AuditClock func() time.Time
}

// BindFlags registers the flags on fs with production defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint (:8443 for HTTPS, :8080 for HTTP); 0 disables it.")
	fs.BoolVar(&o.SecureMetrics, "metrics-secure", true, "Serve metrics over HTTPS with authentication and authorization.")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", false, "Enable HTTP/2 for the metrics server (off by default: HTTP/2 rapid reset and stream cancellation CVEs).")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "Enable leader election so only one manager reconciles.")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", "stripe-operator.billing.stripe-operator.io", "Name of the leader election Lease.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease; empty means the pod's own (set it when running outside a cluster).")
	fs.StringVar(&o.WebhookAddr, "webhook-bind-address", ":8090", "Address of the Stripe webhook receiver; 0 disables it in this process.")
	fs.DurationVar(&o.WebhookTolerance, "webhook-tolerance", 300*time.Second, "Accepted clock difference of a webhook signature timestamp, both ways.")
	fs.Int64Var(&o.WebhookMaxBodyBytes, "webhook-max-body-bytes", 512<<10, "Largest webhook body accepted; larger gets 413.")
	fs.StringVar(&o.StripeAPIURL, "stripe-api-url", envOr("STRIPE_API_URL", ""), "Stripe API base URL (env STRIPE_API_URL); empty means Stripe's own.")
	fs.BoolVar(&o.AllowLiveMode, "allow-live-mode", false, "Allow live-mode keys (sk_live_, rk_live_). Without it only test-mode keys are accepted.")
	fs.Float64Var(&o.StripeRateLimit, "stripe-rate-limit", 0, "Client-side Stripe request rate limit per second shared by all controllers; 0 means 20 in test mode, 80 in live mode.")
	fs.StringVar(&o.CredentialsNamespace, "credentials-secret-namespace", envOr("POD_NAMESPACE", "stripe-operator-system"), "Namespace of the credentials Secret.")
	fs.StringVar(&o.CredentialsName, "credentials-secret-name", "stripe-credentials", "Name of the credentials Secret (key apiKey; and webhookSigningSecrets when --webhook-secret-name names the same Secret).")
	fs.StringVar(&o.WebhookSecretName, "webhook-secret-name", "stripe-webhook-secrets", "Name of the Secret with the webhook signing secrets (key webhookSigningSecrets), in the credentials namespace; the webhook server reads only this one. Set it to the credentials Secret's name to keep one Secret for both.")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", 10*time.Minute, "How often every resource is compared with Stripe even without a change (jittered).")
	fs.DurationVar(&o.StripeCallTimeout, "stripe-call-timeout", 20*time.Second, "Deadline of one Stripe call, stripe-go's retries included (shorter than the HTTP client's 80 s), so a hung call holds one worker for at most this long.")
	fs.StringVar(&o.AdoptionNamespaceSelector, "adoption-namespace-selector", "billing.stripe-operator.io/adoption=allowed", "Label selector of the namespaces where Stripe objects created outside the operator (no identity metadata) may be adopted through a spec ID.")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", "", "Address to serve Go's pprof profiles on (for example 127.0.0.1:6060); empty disables it.")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", 4, "Workers per kind; all share the one Stripe rate limiter.")
	fs.IntVar(&o.MaxChargeAttempts, "max-charge-attempts", 3, "Most charge attempts (subscription creates and updates that charge the card) the operator makes per subscription in 24 hours, whatever the reason; a declined card is never charged again without a reason.")
	fs.StringVar(&o.InstanceName, "instance-name", "default", "Name of this operator instance; its StripeBillingReport has this name. Two clusters sharing one Stripe account need different names.")
	fs.DurationVar(&o.AuditPeriod, "audit-period", 10*time.Minute, "How often the billing audit compares everything in Stripe with the cluster (jittered; leader only).")
	o.RunWebhookServer = true
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// NewManager builds a manager whose cache reads Secrets only in the
// credentials namespace and only the credentials Secret.
func NewManager(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	var tlsOpts []func(*tls.Config)
	if !o.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: o.MetricsAddr, SecureServing: o.SecureMetrics, TLSOpts: tlsOpts}
	if o.SecureMetrics {
		metricsOpts.FilterProvider = metricsAuthFilter
	}
	// client-go's event correlator keeps three LRU caches (aggregation,
	// spam filter, log dedup) of 4,096 entries by default, one entry per
	// object that had an Event: about 5 MiB once thousands of resources
	// have had one. A quarter of that still aggregates and rate-limits the
	// Events of the 1,024 most recent objects.
	broadcaster := record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{LRUCacheSize: eventCacheSize}))
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		EventBroadcaster:              broadcaster, //nolint:staticcheck // the manager below shuts it down with itself
		Scheme:                        Scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.ProbeAddr,
		PprofBindAddress:              o.PprofAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		Client:                        client.Options{FieldOwner: fieldManager(o)},
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{DefaultTransform: slimCachedObject, ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Namespaces: map[string]cache.Config{o.CredentialsNamespace: {}},
				Field:      fields.OneTermEqualSelector("metadata.name", o.secretToCache()),
			},
		}},
	})
	if err != nil {
		broadcaster.Shutdown()
		return nil, err
	}
	// A broadcaster given to the manager is not stopped by it.
	if err := mgr.Add(shutdownOnStop(broadcaster.Shutdown)); err != nil {
		broadcaster.Shutdown()
		return nil, err
	}
	return mgr, nil
}

// eventCacheSize is the size of each of the event correlator's caches.
const eventCacheSize = 1024

// shutdownOnStop runs stop when the manager stops, leader or not.
type shutdownOnStop func()

func (s shutdownOnStop) Start(ctx context.Context) error {
	<-ctx.Done()
	s()
	return nil
}

func (shutdownOnStop) NeedLeaderElection() bool { return false }

// webhookSecret returns the name of the Secret with the signing secrets.
func (o Options) webhookSecret() string {
	if o.WebhookSecretName == "" {
		return o.CredentialsName
	}
	return o.WebhookSecretName
}

// splitSecrets tells whether the API key and the signing secrets live in
// separate Secrets.
func (o Options) splitSecrets() bool { return o.webhookSecret() != o.CredentialsName }

func (o Options) secretToCache() string {
	if o.cachedSecret != "" {
		return o.cachedSecret
	}
	return o.CredentialsName
}

// DefaultFieldManager is the operator's field manager name in
// managedFields, fixed rather than derived from the binary's name.
const DefaultFieldManager = "stripe-operator"

func fieldManager(o Options) string {
	if o.FieldManager != "" {
		return o.FieldManager
	}
	return DefaultFieldManager
}

// addHealthChecks adds the manager's probes.
func addHealthChecks(mgr ctrl.Manager) error {
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding healthz: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding readyz: %w", err)
	}
	return nil
}

// broadcast fans one credentials-changed signal out to every reconciler.
func broadcast(ctx context.Context, in <-chan struct{}, n int) []chan event.GenericEvent {
	outs := make([]chan event.GenericEvent, n)
	for i := range outs {
		outs[i] = make(chan event.GenericEvent, 1)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-in:
				for _, o := range outs {
					select {
					case o <- event.GenericEvent{Object: &corev1.Secret{}}:
					default:
					}
				}
			}
		}
	}()
	return outs
}
