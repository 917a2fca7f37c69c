package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/identity"
	"github.com/stripe-operator/stripe-operator/internal/kinds"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Identity and ownership, shared by every kind.
//
// Every Stripe object the operator creates or adopts carries its resource's
// identity in metadata: instance (--instance-name), kind, namespace and name,
// plus the resource's UID. The identity, not the UID, is what survives a
// cluster rebuilt from Git or a restored backup (new UIDs, empty status):
// before any create the operator looks for a live object with the same
// identity and adopts it instead of billing twice.
//
// A namespace is a tenant. An existing Stripe object named in a spec
// (customerID, productID, subscriptionID) may be adopted only when it
// carries this resource's own identity, or no identity at all and the
// namespace is selected for adoption (--adoption-namespace-selector).
// Anything else is OwnedElsewhere: Stalled, and no Stripe write.

// DefaultAdoptionSelector selects the namespaces where objects created
// outside the operator (no identity) may be adopted.
const DefaultAdoptionSelector = "billing.stripe-operator.io/adoption=allowed"

// ReasonOwnedElsewhere: the Stripe object named in the spec belongs to
// another resource.
const ReasonOwnedElsewhere = "OwnedElsewhere"

// kindOf is the resource kind written into Stripe metadata: its name in
// the table of kinds (internal/kinds).
func kindOf(obj client.Object) string {
	return kinds.NameOf(obj)
}

// ownerOf identifies the resource in Stripe calls (identity metadata and
// idempotency keys).
func ownerOf(obj client.Object, instance string) stripe.Owner {
	if instance == "" {
		instance = DefaultInstance // also the instance of objects written before instances existed
	}
	return stripe.Owner{Instance: instance, Kind: kindOf(obj), Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: string(obj.GetUID())}
}

// ownerMetadata is the metadata the operator writes on every Stripe object
// it creates or adopts: the spec's, plus the identity keys (the one rule:
// internal/identity).
func ownerMetadata(owner stripe.Owner, spec map[string]string) map[string]string {
	return identity.Metadata(owner, spec)
}

// desiredMetadata is the metadata a Stripe object should carry. In Manage
// mode that includes the identity keys, so objects written before a key
// existed get it backfilled on their next pass. Observe mode never writes,
// so the identity keys are not expected.
func desiredMetadata(obj conditioned, owner stripe.Owner, spec map[string]string, observed map[string]string) map[string]string {
	want := ownerMetadata(owner, spec)
	if obj.GetManagementPolicy() == billingv1alpha1.ManagementPolicyObserve {
		for _, k := range identity.Keys {
			if v, ok := observed[k]; ok {
				want[k] = v
			} else {
				delete(want, k)
			}
		}
	}
	return want
}

// ownership is how a Stripe object relates to a resource.
type ownership = identity.Ownership

const (
	// unowned: the object carries no identity (made outside the operator).
	unowned = identity.Unowned
	// ownedHere: it carries this resource's identity.
	ownedHere = identity.OwnedHere
	// ownedElsewhere: it carries another resource's identity, or a broken
	// one.
	ownedElsewhere = identity.OwnedElsewhere
)

// ownershipOf reads md against owner by the identity rule
// (identity.OwnershipOf, also the billing audit's, the Stripe client's and
// the webhook server's), and names the resource an object owned elsewhere
// claims.
func ownershipOf(owner stripe.Owner, md map[string]string) (ownership, string) {
	o, id := identity.OwnershipOf(owner, md)
	if o != ownedElsewhere {
		return o, ""
	}
	return o, id.Resource()
}

// adoptionPolicy decides whether a resource may take over an existing Stripe
// object.
type adoptionPolicy struct {
	reader   client.Reader
	selector labels.Selector
}

// check returns a Stalled spec error unless obj may adopt the Stripe object
// id of the given description (for example "customer") whose metadata is md.
func (a adoptionPolicy) check(ctx context.Context, obj client.Object, owner stripe.Owner, what, id string, md map[string]string) error {
	switch o, by := ownershipOf(owner, md); o {
	case ownedHere:
		return nil
	case ownedElsewhere:
		return newSpecError(ReasonOwnedElsewhere, "Stripe %s %s belongs to %s, not to this resource; it cannot be adopted here.", what, id, by)
	}
	allowed, err := a.namespaceAllowsAdoption(ctx, obj.GetNamespace())
	if err != nil {
		return err
	}
	if !allowed {
		return newSpecError(ReasonOwnedElsewhere, "Stripe %s %s was not created by this operator; namespace %s is not selected for adoption (label it %s).",
			what, id, obj.GetNamespace(), a.selectorText())
	}
	return nil
}

func (a adoptionPolicy) selectorText() string {
	if a.selector == nil {
		return DefaultAdoptionSelector
	}
	return a.selector.String()
}

func (a adoptionPolicy) namespaceAllowsAdoption(ctx context.Context, ns string) (bool, error) {
	sel := a.selector
	if sel == nil {
		var err error
		if sel, err = labels.Parse(DefaultAdoptionSelector); err != nil {
			return false, err
		}
	}
	if a.reader == nil {
		return false, nil
	}
	var n corev1.Namespace
	if err := a.reader.Get(ctx, types.NamespacedName{Name: ns}, &n); err != nil {
		return false, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	return sel.Matches(labels.Set(n.Labels)), nil
}

// oldestOwnedHere returns the ID of the oldest of objects that carries
// owner's identity ("" when none): Search matches are checked again here,
// and the oldest is the one a rebuilt cluster's resource was bound to.
func oldestOwnedHere[T any](owner stripe.Owner, objs []T, meta func(T) (id string, created int64, md map[string]string)) string {
	best, bestAt := "", int64(0)
	for _, o := range objs {
		id, at, md := meta(o)
		if own, _ := ownershipOf(owner, md); own != ownedHere {
			continue
		}
		if best == "" || at < bestAt {
			best, bestAt = id, at
		}
	}
	return best
}

// lookupSteps are a create's find and adopt steps (externalCreate) for one
// Stripe object type: find is the crash-safety lookup of a create that may
// have gone through (the resource's UID, a strongly consistent list of
// objects created since createdAfter); adopt is the identity lookup (the
// oldest object that carries the resource's identity, oldestOwnedHere).
func lookupSteps[T comparable](owner stripe.Owner, createdAfter time.Time,
	find func(context.Context, stripe.Owner, time.Time) (T, error),
	search func(context.Context, stripe.Owner) ([]T, error),
	meta func(T) (id string, created int64, md map[string]string),
) (findStep, adoptStep func(context.Context) (string, error)) {
	findStep = func(ctx context.Context) (string, error) {
		var none T
		x, err := find(ctx, owner, createdAfter)
		if err != nil || x == none {
			return "", err
		}
		id, _, _ := meta(x)
		return id, nil
	}
	adoptStep = func(ctx context.Context) (string, error) {
		found, err := search(ctx, owner)
		return oldestOwnedHere(owner, found, meta), err
	}
	return findStep, adoptStep
}

// onlyIdentityBackfill reports whether a metadata update md does nothing
// but add identity keys the object lacks (objects written before a key
// existed): bookkeeping on upgrade, not drift.
func onlyIdentityBackfill(md, observed map[string]string) bool {
	if len(md) == 0 {
		return false
	}
	for k, v := range md {
		if _, had := observed[k]; had || v == "" || !identity.IsKey(k) {
			return false
		}
	}
	return true
}

// identityFieldName names an identity backfill among changed fields.
const identityFieldName = "identity metadata"

// metadataField names a metadata update for events: an identity backfill
// is told apart from a metadata change (drift or spec).
func metadataField(name string, md, observed map[string]string) string {
	if onlyIdentityBackfill(md, observed) {
		return identityFieldName
	}
	return name
}

// onlyBackfilled reports whether the changed fields are only an identity
// backfill: an update, never a DriftCorrected warning.
func onlyBackfilled(fields []string) bool {
	return len(fields) == 1 && fields[0] == identityFieldName
}
