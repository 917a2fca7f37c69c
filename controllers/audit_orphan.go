package controllers

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/stripe-operator/stripe-operator/internal/audit"
	"github.com/stripe-operator/stripe-operator/internal/kinds"
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

// markOrphaned marks, on an Orphan deletion, every Stripe object the
// resource records (its kind's Refs in the table of kinds, earlier ones
// such as a rolled-over price aside), each through its type's metadata
// update and the pass's guard.
func (p *pass[O]) markOrphaned(ctx context.Context) error {
	k, ok := kinds.Of(p.obj)
	if !ok || k.Refs == nil {
		return nil
	}
	md := orphanMarker(p.obj)
	for _, ref := range k.Refs(p.obj) {
		if ref.Previous || ref.ID == "" {
			continue
		}
		t := stripeTypes[ref.Kind]
		if t.updateMetadata == nil {
			return fmt.Errorf("no metadata update for Stripe %s", ref.Kind)
		}
		if err := markOrphaned(ctx, ref.Kind, ref.ID, func() error { return t.updateMetadata(ctx, p.writes, p.owner, ref.ID, md) }); err != nil {
			return err
		}
	}
	return nil
}
