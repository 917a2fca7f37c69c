package webhookserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripesubscriptions,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripesubscriptions/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Path is where Stripe posts events.
const Path = "/webhooks/stripe"

// SecretSource provides the webhook signing secrets (several during
// rotation). internal/credentials.Store implements it.
type SecretSource interface {
	WebhookSecrets() [][]byte
}

// Options configure a Server.
type Options struct {
	// BindAddress is the listen address, default ":8090".
	BindAddress string
	// MaxBodyBytes bounds the request body, default 512 KiB.
	MaxBodyBytes int64
	// Tolerance is the accepted signature timestamp skew both ways, default
	// 300 s.
	Tolerance time.Duration
	// Secrets gives the signing secrets.
	Secrets SecretSource
	// Client reads from the informer cache (dedup, lookups) and writes.
	Client client.Client
	// Cache is the informer cache Client reads, on which SetupIndexes
	// registered the subscription-ID index.
	Cache cache.Cache
	// APIReader reads from the API server (the read before a write).
	APIReader client.Reader
	// Recorder records Kubernetes Events; optional.
	Recorder record.EventRecorder
	// RetryBudget bounds how long a status write is retried on conflicts
	// before the event is answered 503; default 8 s, below the time Stripe
	// waits for an answer.
	RetryBudget time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default discards.
	Logger logr.Logger
	// Instance is the operator instance (--instance-name): an event whose
	// object carries another instance's identity is not this operator's.
	// Empty: any instance.
	Instance string
}

// Server receives Stripe webhooks. It is a controller-runtime Runnable that
// does not need leader election: every replica serves.
type Server struct {
	opts Options
	log  logr.Logger
	// written holds this server's latest status writes until the informer
	// cache has seen them.
	written ownWrites
	// byID is the StripeSubscription informer's subscription-ID index,
	// found on first use (byIDKnown).
	byIDMu    sync.Mutex
	byIDKnown bool
	byID      toolscache.Indexer
}

// New builds a Server.
func New(opts Options) *Server {
	if opts.BindAddress == "" {
		opts.BindAddress = ":8090"
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 512 << 10
	}
	if opts.Tolerance <= 0 {
		opts.Tolerance = 300 * time.Second
	}
	if opts.RetryBudget <= 0 {
		opts.RetryBudget = 8 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.APIReader == nil {
		opts.APIReader = opts.Client
	}
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	registerMetrics()
	return &Server{opts: opts, log: log.WithName("webhook-server")}
}

// NeedLeaderElection is false: every replica receives webhooks.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends, then shuts down gracefully.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.BindAddress)
	if err != nil {
		return fmt.Errorf("webhook server listen on %s: %w", s.opts.BindAddress, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("Serving Stripe webhooks", "address", ln.Addr().String(), "path", Path)
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// Handler serves /webhooks/stripe, /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.serveWebhook)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/readyz", s.serveReady)
	mux.HandleFunc("/", http.NotFound)
	return mux
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if s.opts.Secrets == nil || len(s.opts.Secrets.WebhookSecrets()) == 0 {
		http.Error(w, "no webhook signing secrets configured", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	var list billingv1alpha1.StripeSubscriptionList
	if err := s.opts.APIReader.List(ctx, &list, client.Limit(1)); err != nil {
		http.Error(w, "API server not reachable", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

func (s *Server) serveWebhook(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Now()
	defer func() { processing.Observe(time.Since(start).Seconds()) }()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	received.Inc()
	if r.ContentLength > s.opts.MaxBodyBytes {
		s.reject(w, "body_too_large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes), r.ContentLength)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.reject(w, "body_too_large", http.StatusRequestEntityTooLarge)
			return
		}
		s.reject(w, "body_unreadable", http.StatusBadRequest)
		return
	}
	var secrets [][]byte
	if s.opts.Secrets != nil {
		secrets = s.opts.Secrets.WebhookSecrets()
	}
	if reason := verify(body, r.Header.Get("Stripe-Signature"), secrets, s.opts.Now(), s.opts.Tolerance); reason != "" {
		status := http.StatusBadRequest
		if reason == ReasonNoSecrets {
			status = http.StatusServiceUnavailable
		}
		s.reject(w, reason, status)
		return
	}
	verified.Inc()
	ev, err := decodeEvent(body)
	if err != nil {
		s.reject(w, "malformed_event", http.StatusBadRequest)
		return
	}
	byVersion.WithLabelValues(versionLabel(ev.APIVersion)).Inc()
	log := s.log.WithValues("eventID", ev.ID, "type", ev.Type, "apiVersion", ev.APIVersion)
	outcome, err := s.apply(logr.NewContext(r.Context(), log), ev)
	if err != nil {
		failed.Inc()
		// An ordinary failure (API server unreachable, conflicts beyond the
		// budget): logged without a stack trace.
		log.Info("Could not persist event; answering 503 so Stripe redelivers", "error", err.Error())
		http.Error(w, "temporarily unable to persist the event", http.StatusServiceUnavailable)
		return
	}
	log.V(1).Info("Event handled", "outcome", outcome)
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, "{\"received\":true,\"outcome\":%q}\n", outcome)
}

// maxBodyHint bounds the buffer readBody allocates before reading.
const maxBodyHint = 64 << 10

// readBody reads the whole body into one buffer sized from the declared
// length, rather than io.ReadAll's doubling from 512 bytes, which copies a
// 4 KiB event four times. The declared length is only a hint: a longer
// body still reads (to the reader's limit), and the first buffer is at most
// maxBodyHint, so that a request declaring a large body it never sends
// cannot make the server reserve the whole limit up front.
func readBody(r io.Reader, declared int64) ([]byte, error) {
	size := 512
	if declared > 0 {
		size = int(min(declared, maxBodyHint)) + 1 // +1: room to see EOF without growing
	}
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
	}
}

func (s *Server) reject(w http.ResponseWriter, reason string, status int) {
	rejected.WithLabelValues(reason).Inc()
	s.log.Info("Rejected webhook request", "reason", reason, "status", status)
	http.Error(w, reason, status)
}
