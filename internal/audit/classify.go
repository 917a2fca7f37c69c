// Package audit classifies what Stripe holds against what the cluster
// declares, for the billing audit: pure functions, no I/O.
package audit

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/identity"
	"github.com/stripe-operator/stripe-operator/internal/kinds"
)

// Stripe object kinds the audit lists (the table of kinds, internal/kinds,
// names them).
const (
	KindCustomer     = kinds.Customer
	KindProduct      = kinds.Product
	KindPrice        = kinds.Price
	KindSubscription = kinds.Subscription
)

// Kinds lists the Stripe kinds in report order: those of every kind in the
// table that the audit classifies.
var Kinds = kinds.AuditedStripeTypes()

// Resource kinds.
const (
	ResourceStripeCustomer     = "StripeCustomer"
	ResourceStripePlan         = "StripePlan"
	ResourceStripeSubscription = "StripeSubscription"
)

// Identity metadata (the rule that reads it: internal/identity).
const (
	MetadataInstance = identity.KeyInstance
	MetadataKind     = identity.KeyKind
	// MetadataOrphaned is written on a Stripe object when the operator
	// leaves it behind under deletion policy Orphan: the time of the
	// deletion, RFC 3339. The audit reads it to tell an expected orphan from
	// an unexplained one; a later adoption removes it with the other
	// undeclared metadata.
	MetadataOrphaned = billingv1alpha1.StripeMetadataPrefix + "orphaned"
)

// ResourceKindOf is the resource kind a Stripe object of each kind belongs
// to when its metadata does not say (from the table of kinds).
var ResourceKindOf = kinds.OwnerKindOf()

// Identity is the resource a Stripe object says it belongs to.
type Identity struct {
	Kind      string
	Namespace string
	Name      string
}

func (id Identity) String() string { return id.Kind + " " + id.Namespace + "/" + id.Name }

// IdentityOf reads the Identity from a Stripe object's metadata, for this
// operator instance only, by the identity rule (identity.Read, the
// reconcilers' rule too):
//
//   - an object carries an identity when it names a namespace or a name; one
//     that names only one of them carries a broken identity, which no
//     resource has: it is reported (Orphaned, Unexplained), not passed over;
//   - an object with an instance key belongs to that instance only; one
//     without (written before instances existed) belongs to any instance;
//   - the kind key, when present, names the resource kind; otherwise the
//     Stripe object's type implies it.
//
// The uid key is not part of the Identity: a resource re-created from the
// same manifest (new UID) is the same resource.
func IdentityOf(instance, stripeKind string, md map[string]string) (Identity, bool) {
	id, ok := identity.Read(md, instance, ResourceKindOf[stripeKind])
	if !ok || id.Instance != instance {
		return Identity{}, false
	}
	return Identity{Kind: id.Kind, Namespace: id.Namespace, Name: id.Name}, true
}

// Object is one Stripe object from the lists.
type Object struct {
	Kind     string
	ID       string
	Metadata map[string]string
	// Live is true for an object that bills or can bill: a subscription
	// that has not ended, an active product or price, a customer that is
	// not deleted (Stripe's list leaves deleted customers out).
	Live bool
	// Ended is true for a subscription that is canceled or
	// incomplete_expired.
	Ended bool
	// Status is the subscription's status, for messages.
	Status  string
	Created int64
	// EndedBy says who ended an ended subscription (a Canceled* reason of
	// billingv1alpha1, from Stripe's cancellation_details): Stripe for
	// non-payment, the operator as declared, or someone outside it.
	EndedBy string
}

// Ref is a Stripe object a resource records (kinds.Ref: each kind's entry
// in the table says which).
type Ref = kinds.Ref

// Resource is one declared resource.
type Resource struct {
	ID   Identity
	Refs []Ref
	// Drifted is set when the resource reports that Stripe differs from its
	// declaration; DriftSince and DriftMessage come from its condition.
	Drifted      bool
	DriftSince   time.Time
	DriftMessage string
}

// Finding is one object that is not simply Managed.
type Finding struct {
	Kind     string
	StripeID string
	Resource Identity
	Class    billingv1alpha1.BillingClass
	// Since is known for OrphanedExpected (the orphaning time) and Drifted
	// (the condition's transition); zero otherwise.
	Since   time.Time
	Message string
}

// Result is the classification of one audit.
type Result struct {
	// Counts by Stripe kind and class.
	Counts   map[string]map[billingv1alpha1.BillingClass]int64
	Findings []Finding
}

func (r *Result) count(kind string, c billingv1alpha1.BillingClass) {
	if r.Counts[kind] == nil {
		r.Counts[kind] = map[billingv1alpha1.BillingClass]int64{}
	}
	r.Counts[kind][c]++
}

func (r *Result) find(f Finding) {
	r.count(f.Kind, f.Class)
	r.Findings = append(r.Findings, f)
}

// classify compares the Stripe objects with the declared resources:
//
//   - an object a resource records is Managed, or Drifted when the resource
//     reports drift (one object per resource: its first recorded one);
//   - a recorded object that is gone, or ended outside the operator, is
//     Missing; a recorded subscription Stripe canceled for non-payment is
//     CanceledForNonPayment, one that ended as declared CanceledByOperator
//     (counted, not findings: neither is drift);
//   - a live object with this instance's Identity and no resource is
//     Orphaned: Expected when the operator marked it at an Orphan deletion,
//     else Unexplained;
//   - a live object with the Identity of an existing resource that records
//     another live object of its kind is a Duplicate; when the resource
//     records none yet (a create in flight), the oldest claimant is Managed
//     and the others are Duplicates; when it records one that is gone, the
//     claimant is Unexplained;
//   - ended subscriptions and archived products and prices that no resource
//     records are history and are not classified.
func Classify(instance string, objs []Object, resources []Resource) Result {
	res := Result{Counts: map[string]map[billingv1alpha1.BillingClass]int64{}}
	byID := make(map[string]*Object, len(objs))
	for i := range objs {
		byID[objs[i].ID] = &objs[i]
	}
	byIdentity := make(map[Identity]*Resource, len(resources))
	recorded := map[string]bool{}
	for i := range resources {
		r := &resources[i]
		byIdentity[r.ID] = r
		for _, ref := range r.Refs {
			if ref.ID != "" {
				recorded[ref.ID] = true
			}
		}
	}

	// Recorded objects: Managed, Drifted or Missing.
	for i := range resources {
		r := &resources[i]
		driftTaken := false
		for _, ref := range r.Refs {
			if ref.ID == "" {
				continue
			}
			o := byID[ref.ID]
			if ref.Previous {
				if o != nil {
					res.count(ref.Kind, billingv1alpha1.BillingClassManaged)
				}
				continue
			}
			switch {
			case o == nil:
				res.find(Finding{Kind: ref.Kind, StripeID: ref.ID, Resource: r.ID, Class: billingv1alpha1.BillingClassMissing,
					Message: fmt.Sprintf("%s records %s %s, which no longer exists in Stripe.", r.ID, ref.Kind, ref.ID)})
			case o.Ended && o.EndedBy == billingv1alpha1.ReasonCanceledForNonPayment:
				// Stripe's dunning ended it: counted apart, never drift.
				res.count(ref.Kind, billingv1alpha1.BillingClassCanceledForNonPayment)
			case o.Ended && (ref.MayEnd || o.EndedBy == billingv1alpha1.ReasonCanceledByOperator):
				res.count(ref.Kind, billingv1alpha1.BillingClassCanceledByOperator)
			case o.Ended:
				res.find(Finding{Kind: ref.Kind, StripeID: ref.ID, Resource: r.ID, Class: billingv1alpha1.BillingClassMissing,
					Message: fmt.Sprintf("%s records %s %s, which was canceled outside the operator (%s) without the declaration asking for it.", r.ID, ref.Kind, ref.ID, o.Status)})
			case r.Drifted && !driftTaken:
				driftTaken = true
				res.find(Finding{Kind: ref.Kind, StripeID: ref.ID, Resource: r.ID, Class: billingv1alpha1.BillingClassDrifted,
					Since: r.DriftSince, Message: r.DriftMessage})
			default:
				res.count(ref.Kind, billingv1alpha1.BillingClassManaged)
			}
		}
	}

	// Objects that carry the Identity but are not recorded.
	claimants := map[Identity]map[string][]*Object{} // resource -> kind -> live claimants
	for i := range objs {
		o := &objs[i]
		if recorded[o.ID] || !o.Live {
			continue
		}
		id, ok := IdentityOf(instance, o.Kind, o.Metadata)
		if !ok {
			continue
		}
		r := byIdentity[id]
		if r == nil {
			res.find(orphanFinding(o, id))
			continue
		}
		if claimants[id] == nil {
			claimants[id] = map[string][]*Object{}
		}
		claimants[id][o.Kind] = append(claimants[id][o.Kind], o)
	}
	for id, kinds := range claimants {
		r := byIdentity[id]
		for kind, list := range kinds {
			slices.SortFunc(list, func(a, b *Object) int {
				return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.ID, b.ID))
			})
			current := currentRef(r, kind)
			for i, o := range list {
				switch {
				case current == "" && i == 0:
					// A create in flight: the resource finds and records it.
					res.count(kind, billingv1alpha1.BillingClassManaged)
				case current == "":
					res.find(Finding{Kind: kind, StripeID: o.ID, Resource: id, Class: billingv1alpha1.BillingClassDuplicate,
						Message: fmt.Sprintf("A second live %s for %s, which records none yet; %s was created first.", kind, id, list[0].ID)})
				case byID[current] != nil && byID[current].Live:
					res.find(Finding{Kind: kind, StripeID: o.ID, Resource: id, Class: billingv1alpha1.BillingClassDuplicate,
						Message: fmt.Sprintf("A second live %s for %s, which records %s.", kind, id, current)})
				default:
					res.find(Finding{Kind: kind, StripeID: o.ID, Resource: id, Class: billingv1alpha1.BillingClassOrphanedUnexplained,
						Message: fmt.Sprintf("Carries the Identity of %s, which records %s %s instead.", id, kind, current)})
				}
			}
		}
	}
	sortFindings(res.Findings)
	return res
}

// currentRef is the ID of the resource's current object of a kind, "" when
// it records none.
func currentRef(r *Resource, kind string) string {
	for _, ref := range r.Refs {
		if ref.Kind == kind && !ref.Previous && ref.ID != "" {
			return ref.ID
		}
	}
	return ""
}

func orphanFinding(o *Object, id Identity) Finding {
	f := Finding{Kind: o.Kind, StripeID: o.ID, Resource: id}
	if v := o.Metadata[MetadataOrphaned]; v != "" {
		f.Class = billingv1alpha1.BillingClassOrphanedExpected
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			f.Since = t
		}
		f.Message = fmt.Sprintf("Left in Stripe by the deletion of %s with deletion policy Orphan.", id)
		return f
	}
	f.Class = billingv1alpha1.BillingClassOrphanedUnexplained
	f.Message = fmt.Sprintf("Carries the Identity of %s, which does not exist, and was not left by an Orphan deletion.", id)
	return f
}

// classRank orders findings by how much attention they need.
var classRank = map[billingv1alpha1.BillingClass]int{
	billingv1alpha1.BillingClassMissing:             0,
	billingv1alpha1.BillingClassDuplicate:           1,
	billingv1alpha1.BillingClassOrphanedUnexplained: 2,
	billingv1alpha1.BillingClassDrifted:             3,
	billingv1alpha1.BillingClassOrphanedExpected:    4,
}

func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(classRank[a.Class], classRank[b.Class]), cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Resource.Namespace, b.Resource.Namespace), cmp.Compare(a.Resource.Name, b.Resource.Name),
			cmp.Compare(a.StripeID, b.StripeID))
	})
}

// NeedsAttention tells whether a class makes the report not Clean.
func NeedsAttention(c billingv1alpha1.BillingClass) bool {
	switch c {
	case billingv1alpha1.BillingClassOrphanedUnexplained, billingv1alpha1.BillingClassMissing,
		billingv1alpha1.BillingClassDuplicate, billingv1alpha1.BillingClassDrifted:
		return true
	}
	return false
}
