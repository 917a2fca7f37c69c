package app

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/stripe-operator/stripe-operator/internal/credentials"
)

// watchWebhookSecret keeps the store's signing secrets in step with the
// webhook Secret when the manager also runs the webhook server (make dev,
// the chart with webhookServer.enabled=false). The manager's cache holds
// only the credentials Secret (one field selector per namespace), so the
// webhook Secret gets a cache of its own, field-selected to its name, which
// is what the name-restricted RBAC allows.
func watchWebhookSecret(ctx context.Context, mgr ctrl.Manager, o Options, store *credentials.Store) error {
	name := o.webhookSecret()
	if err := credentials.LoadParts(ctx, mgr.GetAPIReader(), o.CredentialsNamespace, name, store, credentials.PartsWebhookSecrets); err != nil {
		ctrl.Log.WithName("setup").Error(err, "Could not read the webhook Secret; waiting for it", "namespace", o.CredentialsNamespace, "name", name)
	}
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {
			Namespaces: map[string]cache.Config{o.CredentialsNamespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", name),
		}},
	})
	if err != nil {
		return fmt.Errorf("creating the webhook Secret cache: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return err
	}
	r := &credentials.SecretReconciler{Client: mgr.GetClient(), Reader: c, Namespace: o.CredentialsNamespace, Name: name,
		Store: store, Provides: credentials.PartsWebhookSecrets}
	opts := controller.Options{}
	if o.SkipNameValidation {
		skip := true
		opts.SkipNameValidation = &skip
	}
	key := types.NamespacedName{Namespace: o.CredentialsNamespace, Name: name}
	return ctrl.NewControllerManagedBy(mgr).Named("webhook-secrets").WithOptions(opts).
		WatchesRawSource(source.Kind(c, &corev1.Secret{}, handler.TypedEnqueueRequestsFromMapFunc(
			func(context.Context, *corev1.Secret) []reconcile.Request {
				return []reconcile.Request{{NamespacedName: key}}
			}))).
		Complete(r)
}
