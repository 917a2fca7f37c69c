package kinds

import (
	"testing"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// TestTableIsConsistent: each kind and each Stripe object type appears
// once, every kind knows its own objects and lists, and the audit's types
// are those of the kinds it classifies.
func TestTableIsConsistent(t *testing.T) {
	names, types := map[string]bool{}, map[string]string{}
	for _, k := range All {
		if k.Name == "" || k.Resource == "" || names[k.Name] {
			t.Errorf("kind %q (resource %q): empty or registered twice", k.Name, k.Resource)
		}
		names[k.Name] = true
		for _, st := range k.StripeTypes {
			if other, dup := types[st]; dup {
				t.Errorf("Stripe type %q belongs to %s and %s", st, other, k.Name)
			}
			types[st] = k.Name
		}
		if o := k.New(); NameOf(o) != k.Name || !k.Is(o) {
			t.Errorf("NameOf(%T) = %q, want %q", o, NameOf(o), k.Name)
		}
		if items := k.Items(k.NewList()); len(items) != 0 {
			t.Errorf("%s: a new list has %d items", k.Name, len(items))
		}
		if k.Refs != nil {
			for _, ref := range k.Refs(k.New()) {
				if types[ref.Kind] != k.Name {
					t.Errorf("%s records a %s, which is not one of its Stripe types", k.Name, ref.Kind)
				}
			}
		}
	}
	if NameOf(&billingv1alpha1.StripeBillingReport{}) != "" {
		t.Error("the billing report is not a managed kind")
	}
	want := []string{Customer, Product, Price, Subscription}
	if got := AuditedStripeTypes(); len(got) != len(want) {
		t.Errorf("audited Stripe types %v, want %v", got, want)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("audited Stripe types %v, want %v (report order)", got, want)
			}
		}
	}
	if OwnerKindOf()[Price] != "StripePlan" {
		t.Errorf("a price without a kind key belongs to StripePlan, got %q", OwnerKindOf()[Price])
	}
}

// TestItemsPointIntoTheList: the table's Items hands out the list's own
// items (the audit and the metrics read the cache's objects without copies).
func TestItemsPointIntoTheList(t *testing.T) {
	k, _ := Named("StripeCustomer")
	l := &billingv1alpha1.StripeCustomerList{Items: []billingv1alpha1.StripeCustomer{{}, {}}}
	items := k.Items(l)
	if len(items) != 2 || items[1] != &l.Items[1] {
		t.Fatalf("Items does not point into the list: %v", items)
	}
}
