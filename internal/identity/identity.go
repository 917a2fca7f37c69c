// Package identity is the one rule by which a Stripe object says which
// resource it belongs to: the identity metadata the operator writes on every
// Stripe object it creates or adopts, and how that metadata is read.
//
// Every reader uses it: the reconcilers (adoption, the write guard, the
// create-pending lookup), the billing audit (internal/audit), the Stripe
// client's lookups (internal/stripe) and the webhook server (which matches
// events to resources). It imports nothing but the standard library, so
// that every one of them can import it (internal/stripe does not import the
// API types).
//
// The rule:
//
//   - An object carries an identity when its namespace key or its name key is
//     not empty. One that has only one of them (damaged by hand, or written
//     by another tool) still carries an identity, a broken one that matches
//     no resource: it is owned elsewhere, never adoptable, and the audit
//     reports it. A tenant boundary must not dissolve when one key is
//     deleted, so the rule fails closed.
//   - An object without an instance key was written before instances
//     existed and belongs to the instance that reads it. One with the key
//     belongs to that instance only (an empty value included).
//   - An object without a kind key (or with an empty one) belongs to the
//     resource kind its Stripe type implies, which the reader gives.
//   - The UID is read but not compared by Same: a resource re-created from
//     the same manifest (a cluster rebuilt from Git, new UIDs) is the same
//     resource. Only the crash-safety lookup of a create that may have gone
//     through compares UIDs (SameUID).
package identity

// Metadata keys. They are the same strings as the API's
// billingv1alpha1.StripeMetadata* constants (a test checks it); this package
// does not import the API types.
const (
	Prefix       = "stripe-operator.io/"
	KeyInstance  = Prefix + "instance"
	KeyKind      = Prefix + "kind"
	KeyNamespace = Prefix + "namespace"
	KeyName      = Prefix + "name"
	KeyUID       = Prefix + "uid"
)

// Keys are the identity keys, in the order they are written.
var Keys = []string{KeyInstance, KeyKind, KeyNamespace, KeyName, KeyUID}

// IsKey reports whether k is one of the identity keys.
func IsKey(k string) bool {
	switch k {
	case KeyInstance, KeyKind, KeyNamespace, KeyName, KeyUID:
		return true
	}
	return false
}

// Identity is the resource a Stripe object belongs to.
type Identity struct {
	// Instance is the operator instance (--instance-name).
	Instance string
	// Kind is the resource kind (StripeCustomer, StripePlan,
	// StripeSubscription, StripeWebhookEndpoint).
	Kind      string
	Namespace string
	Name      string
	// UID is the resource's UID; Same does not compare it.
	UID string
}

// Resource is "namespace/name".
func (id Identity) Resource() string { return id.Namespace + "/" + id.Name }

// Same reports whether a and b name the same resource of the same instance:
// instance, kind, namespace and name, not the UID.
func (id Identity) Same(other Identity) bool {
	return id.Instance == other.Instance && id.Kind == other.Kind &&
		id.Namespace == other.Namespace && id.Name == other.Name
}

// Read returns the identity md carries, and false when it carries none.
// instance is the reading operator instance (the instance of an object
// written before instances existed); impliedKind is the resource kind the
// object's Stripe type implies (used when md has no kind).
func Read(md map[string]string, instance, impliedKind string) (Identity, bool) {
	ns, name := md[KeyNamespace], md[KeyName]
	if ns == "" && name == "" {
		return Identity{}, false
	}
	id := Identity{Instance: instance, Kind: impliedKind, Namespace: ns, Name: name, UID: md[KeyUID]}
	if inst, ok := md[KeyInstance]; ok {
		id.Instance = inst
	}
	if k := md[KeyKind]; k != "" {
		id.Kind = k
	}
	return id, true
}

// Ownership is how a Stripe object relates to a resource.
type Ownership int

const (
	// Unowned: the object carries no identity (made outside the operator).
	Unowned Ownership = iota
	// OwnedHere: it carries this resource's identity.
	OwnedHere
	// OwnedElsewhere: it carries another resource's identity (another
	// name, namespace, kind or instance, or a broken identity).
	OwnedElsewhere
)

// OwnershipOf reads md against owner, an object of owner.Kind's own Stripe
// type (a StripePlan's product or price, a StripeCustomer's customer). It
// also returns the identity md carries (zero when Unowned).
func OwnershipOf(owner Identity, md map[string]string) (Ownership, Identity) {
	id, ok := Read(md, owner.Instance, owner.Kind)
	switch {
	case !ok:
		return Unowned, id
	case id.Same(owner):
		return OwnedHere, id
	}
	return OwnedElsewhere, id
}

// SameUID reports whether md records owner's UID: the object was made by
// this very resource (the crash-safety lookup of a create that may have
// gone through).
func SameUID(owner Identity, md map[string]string) bool {
	return owner.UID != "" && md[KeyUID] == owner.UID
}

// Metadata is the metadata written on a Stripe object owner creates or
// adopts: m (the spec's) plus the identity keys. An empty instance or kind
// is not written: an empty instance key would bind the object to an
// instance named "", and an absent kind reads as the implied one.
func Metadata(owner Identity, m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+len(Keys))
	for k, v := range m {
		out[k] = v
	}
	if owner.Instance != "" {
		out[KeyInstance] = owner.Instance
	}
	if owner.Kind != "" {
		out[KeyKind] = owner.Kind
	}
	out[KeyNamespace] = owner.Namespace
	out[KeyName] = owner.Name
	out[KeyUID] = owner.UID
	return out
}
