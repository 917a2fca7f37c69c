package controllers

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/stripe-operator/stripe-operator/internal/audit"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// An Orphan deletion leaves the Stripe object in place and marks it with
// the time of the deletion (audit.MetadataOrphaned), so the billing audit
// can tell an object left on purpose (Orphaned, Expected) from one nobody
// explains. The identity keys stay, so a resource re-created with the same
// name can find it again; its first update removes the marker with the
// other metadata it does not declare.

// orphanMarker is the metadata update that marks obj's Stripe objects. The
// value is the resource's deletion time, so a retried deletion sends the
// same update (and the same idempotency key).
func orphanMarker(obj client.Object) map[string]string {
	t := time.Now()
	if ts := obj.GetDeletionTimestamp(); ts != nil {
		t = ts.Time
	}
	return map[string]string{audit.MetadataOrphaned: t.UTC().Format(time.RFC3339)}
}

// markOrphaned runs one marking update. A Stripe object that is gone needs
// no mark; one Stripe refuses to change (a canceled subscription, for
// example) is history the audit does not classify, so the deletion goes on
// and the refusal is logged.
func markOrphaned(ctx context.Context, kind, id string, update func() error) error {
	if id == "" {
		return nil
	}
	err := update()
	switch {
	case err == nil, stripe.IsNotFound(err):
		return nil
	case stripe.ClassOf(err) == stripe.ClassTerminal:
		log.FromContext(ctx).Info("Could not mark the Stripe object as left by an Orphan deletion; the billing audit will report it as unexplained if it is still live",
			"kind", kind, "stripeID", id, "error", err.Error())
		return nil
	default:
		return fmt.Errorf("marking %s %s as orphaned: %w", kind, id, err)
	}
}

func (x *customerExternal) markOrphaned(ctx context.Context) error {
	id := x.obj.Status.CustomerID
	return markOrphaned(ctx, audit.KindCustomer, id, func() error {
		_, err := x.writes.UpdateCustomer(ctx, x.owner, id, stripe.CustomerParams{Metadata: orphanMarker(x.obj)})
		return err
	})
}

func (x *planExternal) markOrphaned(ctx context.Context) error {
	if id := x.obj.Status.PriceID; id != "" {
		if err := markOrphaned(ctx, audit.KindPrice, id, func() error {
			_, err := x.writes.UpdatePrice(ctx, x.owner, id, stripe.PriceUpdateParams{Metadata: orphanMarker(x.obj)})
			return err
		}); err != nil {
			return err
		}
	}
	id := x.obj.Status.ProductID
	return markOrphaned(ctx, audit.KindProduct, id, func() error {
		_, err := x.writes.UpdateProduct(ctx, x.owner, id, stripe.ProductParams{Metadata: orphanMarker(x.obj)})
		return err
	})
}

func (s *subscriptionScope) markOrphaned(ctx context.Context) error {
	id := s.obj.Status.SubscriptionID
	return markOrphaned(ctx, audit.KindSubscription, id, func() error {
		_, err := s.writes.UpdateSubscription(ctx, s.owner, id, stripe.SubscriptionUpdateParams{Metadata: orphanMarker(s.obj)})
		return err
	})
}
