package app

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/labels"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/webhookserver"
)

// Run builds the manager with the Stripe client, the credentials watch, the
// reconcilers and (unless disabled) the webhook server, and runs it until
// ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	setupLog := ctrl.Log.WithName("setup")
	mgr, err := NewManager(cfg, o)
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}

	store := &credentials.Store{}
	if _, err := store.FromEnv(); err != nil {
		return err
	}
	// The Secret, when present, wins over the environment; read it once now
	// (the cache is not running yet) so the first reconciles have a key.
	keyParts := credentials.PartsAll
	if o.splitSecrets() {
		keyParts = credentials.PartsAPIKey
	}
	if err := credentials.LoadParts(ctx, mgr.GetAPIReader(), o.CredentialsNamespace, o.CredentialsName, store, keyParts); err != nil {
		setupLog.Error(err, "Could not read the credentials Secret; waiting for it", "namespace", o.CredentialsNamespace, "name", o.CredentialsName)
	}
	sc, err := newStripeClient(o, store)
	if err != nil {
		return fmt.Errorf("configuring the Stripe client: %w", err)
	}
	apiURL := o.StripeAPIURL
	if apiURL == "" {
		apiURL = "https://api.stripe.com"
	}
	setupLog.Info("Stripe client configured", "mode", sc.Mode(), "apiKeySet", store.APIKey() != "",
		"webhookSecrets", len(store.WebhookSecrets()), "apiURL", apiURL, "allowLiveMode", o.AllowLiveMode)

	if err := (&credentials.SecretReconciler{Client: mgr.GetClient(), Namespace: o.CredentialsNamespace, Name: o.CredentialsName,
		Store: store, Provides: keyParts, SkipNameValidation: o.SkipNameValidation}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the credentials watch: %w", err)
	}
	if o.AdoptionNamespaceSelector == "" {
		o.AdoptionNamespaceSelector = controllers.DefaultAdoptionSelector
	}
	adoption, err := labels.Parse(o.AdoptionNamespaceSelector)
	if err != nil {
		return fmt.Errorf("--adoption-namespace-selector: %w", err)
	}
	inProcessWebhooks := o.RunWebhookServer && o.WebhookAddr != "0" && o.WebhookAddr != ""
	if inProcessWebhooks && o.splitSecrets() {
		if err := watchWebhookSecret(ctx, mgr, o, store); err != nil {
			return err
		}
	}
	// One credentials-changed channel per kind of the table.
	changed := broadcast(ctx, store.Subscribe(), controllers.KindCount())
	recv := make([]<-chan event.GenericEvent, len(changed))
	for i, c := range changed {
		recv[i] = c
	}
	// The Stripe subscription ID index serves only the webhook server; with
	// the receiver in its own Deployment (the chart's default) the manager
	// does not keep it (two index entries and sets per subscription).
	if inProcessWebhooks {
		if err := webhookserver.SetupIndexes(ctx, mgr); err != nil {
			return fmt.Errorf("indexing subscriptions: %w", err)
		}
	}
	// One set of whole lists serves the resync of every kind and the audit;
	// new credentials (perhaps another account's) drop them.
	lists := &controllers.ResyncLists{Lister: sc, MinRefresh: o.ResyncPeriod / 2}
	go forgetListsOnChange(ctx, store.Subscribe(), lists)
	if err := controllers.SetupKinds(mgr, controllers.KindOptions{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Stripe: sc,
		ResyncPeriod: o.ResyncPeriod, Instance: o.InstanceName, AdoptionSelector: adoption, MaxConcurrentReconciles: o.MaxConcurrentReconciles,
		SkipNameValidation: o.SkipNameValidation, Namespace: o.CredentialsNamespace, MaxChargeAttempts: o.MaxChargeAttempts,
		Lists: lists,
	}, recv); err != nil {
		return err
	}
	if err := (&controllers.StripeBillingPreviewReconciler{Client: mgr.GetClient(), Stripe: sc,
		SkipNameValidation: o.SkipNameValidation}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the StripeBillingPreview controller: %w", err)
	}
	if err := (&controllers.BillingAuditReconciler{Client: mgr.GetClient(), Stripe: sc,
		Recorder: mgr.GetEventRecorderFor("billing-audit"), //nolint:staticcheck
		Instance: o.InstanceName, Period: o.AuditPeriod, Lists: lists, SkipNameValidation: o.SkipNameValidation,
		Now: o.AuditClock,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the billing audit: %w", err)
	}
	if inProcessWebhooks {
		if err := mgr.Add(NewWebhookServer(mgr, o, store)); err != nil {
			return err
		}
	}
	if err := registerResourceMetrics(mgr); err != nil {
		return err
	}
	if err := addHealthChecks(mgr); err != nil {
		return err
	}
	setupLog.Info("Starting manager")
	return mgr.Start(ctx)
}

// NewWebhookServer builds the webhook receiver on the manager's clients.
func NewWebhookServer(mgr ctrl.Manager, o Options, secrets webhookserver.SecretSource) *webhookserver.Server {
	return webhookserver.New(webhookserver.Options{
		BindAddress: o.WebhookAddr, MaxBodyBytes: o.WebhookMaxBodyBytes, Tolerance: o.WebhookTolerance,
		Secrets: secrets, Client: mgr.GetClient(), Cache: mgr.GetCache(), APIReader: mgr.GetAPIReader(),
		Recorder: mgr.GetEventRecorderFor("stripe-webhook"), //nolint:staticcheck
		Logger:   ctrl.Log.WithName("webhook"),
		Instance: o.InstanceName,
	})
}

// RunWebhookServerOnly runs the webhook receiver alone (cmd/webhook-server),
// for scaling it as its own Deployment. It needs no leader election.
//
// It reads only the signing secrets (from the webhook Secret, or from the
// single credentials Secret when both are one) and never holds an API key.
func RunWebhookServerOnly(ctx context.Context, cfg *rest.Config, o Options) error {
	o.LeaderElect = false
	o.cachedSecret = o.webhookSecret()
	mgr, err := NewManager(cfg, o)
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	store := &credentials.Store{}
	if _, err := store.FromEnv(); err != nil {
		return err
	}
	if err := (&credentials.SecretReconciler{Client: mgr.GetClient(), Namespace: o.CredentialsNamespace, Name: o.webhookSecret(),
		Store: store, Provides: credentials.PartsWebhookSecrets, SkipNameValidation: o.SkipNameValidation}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := webhookserver.SetupIndexes(ctx, mgr); err != nil {
		return err
	}
	if err := mgr.Add(NewWebhookServer(mgr, o, store)); err != nil {
		return err
	}
	if err := addHealthChecks(mgr); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// forgetListsOnChange drops the resync's lists whenever the credentials
// change.
func forgetListsOnChange(ctx context.Context, changed <-chan struct{}, lists *controllers.ResyncLists) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			lists.Forget()
		}
	}
}
