package controllers

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// externalCreate describes one crash-safe create of a Stripe object.
type externalCreate struct {
	// find looks the object up by the operator's metadata (a strongly
	// consistent List call) and returns its ID, "" when there is none.
	find func(ctx context.Context) (string, error)
	// adopt looks, before a first create, for a live object that carries
	// this resource's identity (instance, kind, namespace, name), as a
	// cluster rebuilt from Git, a restored backup or a re-applied manifest
	// leaves behind, and returns its ID, "" when there is none. Customers
	// and products are found with Stripe's Search API, which is eventually
	// consistent (it finds objects made long ago, which is what a rebuild
	// leaves); a subscription through its customer's listed subscriptions.
	// find, not adopt, is the crash safety.
	adopt func(ctx context.Context) (string, error)
	// create calls Stripe under the idempotency key of intent (see
	// stripe.IntentKey) and returns the new ID.
	create func(ctx context.Context, intent string) (string, error)
	// record writes the ID into obj's status (in memory).
	record func(id string)
	// persistStatus writes obj's status to the API server now.
	persistStatus func(ctx context.Context) error
}

// createExternal creates the Stripe object of obj exactly once, also when
// the operator is killed between the Stripe call and the status write, and
// never lets a saved failure stick:
//
//  0. Before a first create, a live object with this resource's identity is
//     adopted instead (adopted reports it).
//  1. If obj carries the create-pending annotation, an earlier pass may have
//     created the object without recording it: find it by metadata and
//     record it instead of creating.
//  2. Otherwise persist the annotation, whose value is the intent (the
//     nonce of the create's idempotency key), before the first call. A retry
//     after a transport error reuses it, so Stripe replays a create that
//     went through or answers 409 while it is still running.
//  3. When Stripe gave a definitive answer to the create (a decline, a 500,
//     a refusal), Stripe has saved that answer under the key for 24 hours.
//     The intent is over: a new one is persisted at once, and the next pass
//     first looks the object up (step 1) and only then creates under the new
//     key. Fixing the card therefore takes effect on the next pass.
//
// It returns the Stripe ID.
func createExternal(ctx context.Context, c client.Client, obj client.Object, ec externalCreate) (id string, adopted bool, err error) {
	logger := log.FromContext(ctx)
	intent, pending := obj.GetAnnotations()[billingv1alpha1.AnnotationCreatePending]
	if !pending && ec.adopt != nil {
		id, err := ec.adopt(ctx)
		if err != nil {
			return "", false, fmt.Errorf("looking for a Stripe object with this resource's identity: %w", err)
		}
		if id != "" {
			logger.Info("Adopted the Stripe object that carries this resource's identity", "stripeID", id)
			ec.record(id)
			if err := ec.persistStatus(ctx); err != nil {
				return "", false, fmt.Errorf("recording Stripe ID %s: %w", id, err)
			}
			return id, true, nil
		}
	}
	if pending {
		id, err = ec.find(ctx)
		if err != nil {
			return "", false, fmt.Errorf("looking up a possibly created Stripe object: %w", err)
		}
		if id != "" {
			logger.Info("Recovered Stripe object created by an earlier pass", "stripeID", id)
			return id, false, ec.finish(ctx, c, obj, id)
		}
	} else {
		intent = stripe.NewIntent()
		if err := setCreatePending(ctx, c, obj, intent); err != nil {
			return "", false, err
		}
	}
	id, err = ec.create(ctx, intent)
	if err != nil {
		if stripe.AnswerStored(err) {
			// Best effort: if this write fails, the next pass reuses the key,
			// gets the saved answer again and tries once more.
			if perr := setCreatePending(ctx, c, obj, stripe.NewIntent()); perr != nil {
				logger.V(1).Info("Could not start a new create intent", "error", perr.Error())
			}
		}
		return "", false, err
	}
	logger.Info("Created Stripe object", "stripeID", id)
	return id, false, ec.finish(ctx, c, obj, id)
}

// setCreatePending persists the create-pending annotation with intent.
func setCreatePending(ctx context.Context, c client.Client, obj client.Object, intent string) error {
	return patchMeta(ctx, c, obj, func() {
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[billingv1alpha1.AnnotationCreatePending] = intent
		obj.SetAnnotations(ann)
	})
}

func (ec externalCreate) finish(ctx context.Context, c client.Client, obj client.Object, id string) error {
	ec.record(id)
	if err := ec.persistStatus(ctx); err != nil {
		return fmt.Errorf("recording Stripe ID %s: %w", id, err)
	}
	return clearCreatePending(ctx, c, obj)
}

// clearCreatePending removes a create-pending annotation left behind when
// the ID reached status by another path (for example a status write that
// landed after a failed step).
func clearCreatePending(ctx context.Context, c client.Client, obj client.Object) error {
	if _, pending := obj.GetAnnotations()[billingv1alpha1.AnnotationCreatePending]; !pending {
		return nil
	}
	return patchMeta(ctx, c, obj, func() {
		ann := obj.GetAnnotations()
		delete(ann, billingv1alpha1.AnnotationCreatePending)
		obj.SetAnnotations(ann)
	})
}
