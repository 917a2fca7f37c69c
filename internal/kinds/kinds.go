// Package kinds is the one table of the kinds the operator manages: each
// kind (StripeCustomer, StripePlan, ...) is registered here once, with its
// API type, the Stripe object types a resource of the kind records, and
// what the billing audit, the metrics and the kubectl plugin need of it.
//
// It is a low package (it imports only the API types), so every user reads
// the same table: identity (the kind written into Stripe metadata), the
// billing audit (internal/audit and the audit reconciler), the metrics
// collector, the wiring of the reconcilers (controllers.SetupKinds, which
// attaches each kind's external client) and `kubectl stripe`.
//
// Adding a kind: one entry in All (below), and the kind's attachment in
// controllers/kinds.go (its reconciler's setup and the Stripe calls of its
// object types). See docs/adding-a-kind.md.
package kinds

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// The Stripe object types, as named in the billing report, the write
// guard, Events and messages.
const (
	Customer        = "customer"
	Product         = "product"
	Price           = "price"
	Subscription    = "subscription"
	WebhookEndpoint = "webhook endpoint"
	Coupon          = "coupon"
	PromotionCode   = "promotion code"
)

// Object is what the table needs of a kind's API type.
type Object interface {
	client.Object
	GetConditions() []metav1.Condition
}

// Ref is a Stripe object a resource records in its status.
type Ref struct {
	// Kind is the Stripe object type (Customer, Price, ...).
	Kind string
	ID   string
	// Previous marks an object the resource used before (a rolled-over
	// price): Managed while it exists, never Missing, never marked on an
	// Orphan deletion.
	Previous bool
	// MayEnd is true when the object ending is what the declaration asks
	// for (a subscription canceling at period end, or a resource being
	// deleted), so an ended object is not Missing.
	MayEnd bool
}

// Kind is one managed kind.
type Kind struct {
	// Name is the API kind, e.g. "StripeCustomer". It is the kind written
	// into the identity metadata of the kind's Stripe objects.
	Name string
	// Resource is the plural resource name, e.g. "stripecustomers".
	Resource string
	// StripeTypes are the Stripe object types a resource of the kind
	// records (status), in report order; a Stripe object of one of these
	// types without a kind key in its metadata belongs to this kind.
	StripeTypes []string
	// Refs returns the Stripe objects a resource records. Non-nil: the
	// billing audit classifies the kind's Stripe objects against it, and an
	// Orphan deletion marks them (audit.MetadataOrphaned). nil: neither.
	Refs func(Object) []Ref
	// Billing: a billing resource, counted by the metrics collector and
	// listed by `kubectl stripe drift` (its BillingDrift, PaymentFailed and
	// Drifted conditions).
	Billing bool

	newObject func() Object
	newList   func() client.ObjectList
	items     func(client.ObjectList) []Object
	is        func(client.Object) bool
}

// New returns a new, empty object of the kind.
func (k Kind) New() Object { return k.newObject() }

// NewList returns a new, empty list of the kind.
func (k Kind) NewList() client.ObjectList { return k.newList() }

// Items returns the items of a list of the kind (pointers into it).
func (k Kind) Items(l client.ObjectList) []Object { return k.items(l) }

// Is tells whether obj is of the kind.
func (k Kind) Is(obj client.Object) bool { return k.is(obj) }

// Define builds a Kind for the API type T, whose list type L holds its
// items in items(list). The caller sets StripeTypes, Refs and Billing.
func Define[T any, L any, PT interface {
	*T
	Object
}, PL interface {
	*L
	client.ObjectList
}](name, resource string, items func(*L) []T) Kind {
	return Kind{Name: name, Resource: resource,
		newObject: func() Object { return PT(new(T)) },
		newList:   func() client.ObjectList { return PL(new(L)) },
		items: func(l client.ObjectList) []Object {
			its := items(l.(PL))
			out := make([]Object, len(its))
			for i := range its {
				out[i] = PT(&its[i])
			}
			return out
		},
		is: func(o client.Object) bool { _, ok := o.(PT); return ok },
	}
}

// deleting tells whether the resource is being deleted.
func deleting(o Object) bool { return !o.GetDeletionTimestamp().IsZero() }

// All is the table: every managed kind, in report order.
var All = []Kind{
	func() Kind {
		k := Define[billingv1alpha1.StripeCustomer]("StripeCustomer", "stripecustomers",
			func(l *billingv1alpha1.StripeCustomerList) []billingv1alpha1.StripeCustomer { return l.Items })
		k.StripeTypes, k.Billing = []string{Customer}, true
		k.Refs = func(o Object) []Ref {
			c := o.(*billingv1alpha1.StripeCustomer)
			return []Ref{{Kind: Customer, ID: c.Status.CustomerID, MayEnd: deleting(c)}}
		}
		return k
	}(),
	func() Kind {
		k := Define[billingv1alpha1.StripePlan]("StripePlan", "stripeplans",
			func(l *billingv1alpha1.StripePlanList) []billingv1alpha1.StripePlan { return l.Items })
		k.StripeTypes, k.Billing = []string{Product, Price}, true
		k.Refs = func(o Object) []Ref {
			p := o.(*billingv1alpha1.StripePlan)
			refs := []Ref{{Kind: Product, ID: p.Status.ProductID, MayEnd: deleting(p)}, {Kind: Price, ID: p.Status.PriceID, MayEnd: deleting(p)}}
			for _, id := range p.Status.PreviousPriceIDs {
				refs = append(refs, Ref{Kind: Price, ID: id, Previous: true})
			}
			return refs
		}
		return k
	}(),
	func() Kind {
		k := Define[billingv1alpha1.StripeSubscription]("StripeSubscription", "stripesubscriptions",
			func(l *billingv1alpha1.StripeSubscriptionList) []billingv1alpha1.StripeSubscription { return l.Items })
		k.StripeTypes, k.Billing = []string{Subscription}, true
		k.Refs = func(o Object) []Ref {
			s := o.(*billingv1alpha1.StripeSubscription)
			return []Ref{{Kind: Subscription, ID: s.Status.SubscriptionID, MayEnd: deleting(s) || s.Spec.CancelAtPeriodEnd}}
		}
		return k
	}(),
	func() Kind {
		// A coupon's promotion codes are written only while their coupon
		// may be (the guard checks the coupon), so the coupon is the one
		// Stripe object type. Not audited yet (Refs nil): the billing audit
		// does not list coupons.
		k := Define[billingv1alpha1.StripeCoupon]("StripeCoupon", "stripecoupons",
			func(l *billingv1alpha1.StripeCouponList) []billingv1alpha1.StripeCoupon { return l.Items })
		k.StripeTypes = []string{Coupon}
		return k
	}(),
	func() Kind {
		k := Define[billingv1alpha1.StripeWebhookEndpoint]("StripeWebhookEndpoint", "stripewebhookendpoints",
			func(l *billingv1alpha1.StripeWebhookEndpointList) []billingv1alpha1.StripeWebhookEndpoint {
				return l.Items
			})
		k.StripeTypes = []string{WebhookEndpoint}
		return k
	}(),
}

// Of returns the kind of obj.
func Of(obj client.Object) (Kind, bool) {
	for _, k := range All {
		if k.Is(obj) {
			return k, true
		}
	}
	return Kind{}, false
}

// NameOf is the kind name of obj ("" when obj is of no managed kind).
func NameOf(obj client.Object) string {
	k, _ := Of(obj)
	return k.Name
}

// Named returns the kind called name.
func Named(name string) (Kind, bool) {
	for _, k := range All {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// Audited returns the kinds the billing audit classifies (Refs set), in
// report order.
func Audited() []Kind {
	var out []Kind
	for _, k := range All {
		if k.Refs != nil {
			out = append(out, k)
		}
	}
	return out
}

// BillingKinds returns the billing resources (Billing set), in report
// order.
func BillingKinds() []Kind {
	var out []Kind
	for _, k := range All {
		if k.Billing {
			out = append(out, k)
		}
	}
	return out
}

// AuditedStripeTypes lists the Stripe object types the billing audit lists
// and classifies, in report order.
func AuditedStripeTypes() []string {
	var out []string
	for _, k := range Audited() {
		out = append(out, k.StripeTypes...)
	}
	return out
}

// OwnerKindOf returns, for every Stripe object type, the kind its objects
// belong to when their metadata names none.
func OwnerKindOf() map[string]string {
	m := map[string]string{}
	for _, k := range All {
		for _, t := range k.StripeTypes {
			m[t] = k.Name
		}
	}
	return m
}
