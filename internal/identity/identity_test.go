package identity

import (
	"testing"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// The keys are the API's: a Stripe object written by any version carries
// the same strings.
func TestKeysAreTheAPIKeys(t *testing.T) {
	for got, want := range map[string]string{
		KeyInstance:  billingv1alpha1.StripeMetadataInstance,
		KeyKind:      billingv1alpha1.StripeMetadataKind,
		KeyNamespace: billingv1alpha1.StripeMetadataNamespace,
		KeyName:      billingv1alpha1.StripeMetadataName,
		KeyUID:       billingv1alpha1.StripeMetadataUID,
		Prefix:       billingv1alpha1.StripeMetadataPrefix,
	} {
		if got != want {
			t.Errorf("key %q, the API says %q", got, want)
		}
	}
}

func md(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		md   map[string]string
		want Identity
		ok   bool
	}{
		{"no identity", md("team", "x"), Identity{}, false},
		{"empty keys", md(KeyNamespace, "", KeyName, ""), Identity{}, false},
		{"all keys", md(KeyInstance, "b", KeyKind, "StripePlan", KeyNamespace, "a", KeyName, "pro", KeyUID, "u1"),
			Identity{"b", "StripePlan", "a", "pro", "u1"}, true},
		{"no instance key: the reader's", md(KeyNamespace, "a", KeyName, "acme"), Identity{"mine", "StripeCustomer", "a", "acme", ""}, true},
		{"empty instance key is an instance", md(KeyInstance, "", KeyNamespace, "a", KeyName, "acme"), Identity{"", "StripeCustomer", "a", "acme", ""}, true},
		{"empty kind key: the implied kind", md(KeyKind, "", KeyNamespace, "a", KeyName, "acme"), Identity{"mine", "StripeCustomer", "a", "acme", ""}, true},
		{"kind key wins", md(KeyKind, "StripeOther", KeyNamespace, "a", KeyName, "acme"), Identity{"mine", "StripeOther", "a", "acme", ""}, true},
		// The broken identities: one key of the two is a claim.
		{"name only", md(KeyName, "acme"), Identity{"mine", "StripeCustomer", "", "acme", ""}, true},
		{"namespace only", md(KeyNamespace, "a"), Identity{"mine", "StripeCustomer", "a", "", ""}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Read(tc.md, "mine", "StripeCustomer")
			if got != tc.want || ok != tc.ok {
				t.Errorf("Read = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestOwnershipOf(t *testing.T) {
	owner := Identity{Instance: "mine", Kind: "StripeCustomer", Namespace: "a", Name: "acme", UID: "u1"}
	for _, tc := range []struct {
		name string
		md   map[string]string
		want Ownership
	}{
		{"made outside", md("team", "x"), Unowned},
		{"written by this resource", Metadata(owner, nil), OwnedHere},
		{"re-created resource (new UID)", md(KeyInstance, "mine", KeyKind, "StripeCustomer", KeyNamespace, "a", KeyName, "acme", KeyUID, "u2"), OwnedHere},
		{"written before instances and kinds", md(KeyNamespace, "a", KeyName, "acme"), OwnedHere},
		{"another instance", md(KeyInstance, "other", KeyNamespace, "a", KeyName, "acme"), OwnedElsewhere},
		{"another kind", md(KeyKind, "StripePlan", KeyNamespace, "a", KeyName, "acme"), OwnedElsewhere},
		{"another tenant", md(KeyNamespace, "b", KeyName, "acme"), OwnedElsewhere},
		{"another name", md(KeyNamespace, "a", KeyName, "other"), OwnedElsewhere},
		// Fails closed: deleting one key of another tenant's object does
		// not make it adoptable.
		{"name only", md(KeyName, "acme"), OwnedElsewhere},
		{"namespace only", md(KeyNamespace, "a"), OwnedElsewhere},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := OwnershipOf(owner, tc.md); got != tc.want {
				t.Errorf("OwnershipOf = %v; want %v", got, tc.want)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	owner := Identity{Instance: "mine", Kind: "StripeCustomer", Namespace: "a", Name: "acme", UID: "u1"}
	got := Metadata(owner, map[string]string{"team": "x"})
	want := md("team", "x", KeyInstance, "mine", KeyKind, "StripeCustomer", KeyNamespace, "a", KeyName, "acme", KeyUID, "u1")
	if len(got) != len(want) {
		t.Fatalf("Metadata = %v; want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Metadata[%s] = %q; want %q", k, got[k], v)
		}
	}
	// An empty instance or kind is not written (it would not read back).
	bare := Metadata(Identity{Namespace: "a", Name: "acme"}, nil)
	if _, ok := bare[KeyInstance]; ok {
		t.Errorf("an empty instance was written: %v", bare)
	}
	if _, ok := bare[KeyKind]; ok {
		t.Errorf("an empty kind was written: %v", bare)
	}
	if !SameUID(owner, got) || SameUID(Identity{}, md()) {
		t.Errorf("SameUID")
	}
	for _, k := range Keys {
		if !IsKey(k) {
			t.Errorf("IsKey(%s) = false", k)
		}
	}
	if IsKey(Prefix + "orphaned") {
		t.Errorf("orphaned is not an identity key")
	}
}
