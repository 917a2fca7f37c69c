package controllers

import (
	"slices"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/audit"
	"github.com/stripe-operator/stripe-operator/internal/identity"
)

// operatorMetadataKeys are the metadata keys the operator may write on the
// Stripe objects of each kind besides spec.metadata: the identity keys on
// every object it creates or adopts, the Orphan deletion's marker, and on a
// subscription created through the recreate annotation the ID it replaces.
// Stripe allows 50 keys (https://docs.stripe.com/metadata), so each kind's
// spec.metadata is bounded at 50 less these (the CRDs' maxProperties,
// billingv1alpha1.MaxUserMetadataKeys*); TestOperatorMetadataKeysLeaveRoom
// checks the bounds against this list. A new key the operator writes
// belongs here.
var operatorMetadataKeys = map[string][]string{
	"StripeCustomer":     append(slices.Clone(identity.Keys), audit.MetadataOrphaned),
	"StripePlan":         append(slices.Clone(identity.Keys), audit.MetadataOrphaned),
	"StripeSubscription": append(slices.Clone(identity.Keys), audit.MetadataOrphaned, metadataReplaces),
	"StripeCoupon":       append(slices.Clone(identity.Keys), audit.MetadataOrphaned),
}

// maxUserMetadataKeys is each kind's bound on spec.metadata.
var maxUserMetadataKeys = map[string]int{
	"StripeCustomer":     billingv1alpha1.MaxUserMetadataKeysCustomer,
	"StripePlan":         billingv1alpha1.MaxUserMetadataKeysPlan,
	"StripeSubscription": billingv1alpha1.MaxUserMetadataKeysSubscription,
	"StripeCoupon":       billingv1alpha1.MaxUserMetadataKeysCoupon,
}
