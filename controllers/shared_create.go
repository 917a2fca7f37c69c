package controllers

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// externalCreate describes one crash-safe create of a Stripe object.
type externalCreate struct {
	// find looks the object up by the operator's metadata (a strongly
	// consistent List call) and returns its ID, "" when there is none.
	find func(ctx context.Context) (string, error)
	// create calls Stripe with a deterministic idempotency key and returns
	// the new ID.
	create func(ctx context.Context) (string, error)
	// record writes the ID into obj's status (in memory).
	record func(id string)
	// persistStatus writes obj's status to the API server now.
	persistStatus func(ctx context.Context) error
}

// createExternal creates the Stripe object of obj exactly once, also when
// the operator is killed between the Stripe call and the status write:
//
//  1. If obj carries the create-pending annotation, an earlier pass may have
//     created the object without recording it: find it by metadata and
//     record it instead of creating.
//  2. Otherwise persist the annotation, then create (the idempotency key
//     makes a retried call within 24 hours return the same object), record
//     the ID, persist status, and remove the annotation.
//
// It returns the Stripe ID.
func createExternal(ctx context.Context, c client.Client, obj client.Object, ec externalCreate) (string, error) {
	logger := log.FromContext(ctx)
	if _, pending := obj.GetAnnotations()[billingv1alpha1.AnnotationCreatePending]; pending {
		id, err := ec.find(ctx)
		if err != nil {
			return "", fmt.Errorf("looking up a possibly created Stripe object: %w", err)
		}
		if id != "" {
			logger.Info("Recovered Stripe object created by an earlier pass", "stripeID", id)
			return id, ec.finish(ctx, c, obj, id)
		}
	} else {
		if err := patchMeta(ctx, c, obj, func() {
			ann := obj.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann[billingv1alpha1.AnnotationCreatePending] = "true"
			obj.SetAnnotations(ann)
		}); err != nil {
			return "", err
		}
	}
	id, err := ec.create(ctx)
	if err != nil {
		return "", err
	}
	logger.Info("Created Stripe object", "stripeID", id)
	return id, ec.finish(ctx, c, obj, id)
}

func (ec externalCreate) finish(ctx context.Context, c client.Client, obj client.Object, id string) error {
	ec.record(id)
	if err := ec.persistStatus(ctx); err != nil {
		return fmt.Errorf("recording Stripe ID %s: %w", id, err)
	}
	return patchMeta(ctx, c, obj, func() {
		ann := obj.GetAnnotations()
		delete(ann, billingv1alpha1.AnnotationCreatePending)
		obj.SetAnnotations(ann)
	})
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
