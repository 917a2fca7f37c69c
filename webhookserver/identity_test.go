package webhookserver

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/stripe-operator/stripe-operator/internal/identity"
)

// TestEventsMatchResourcesByTheIdentityRule: an event whose subscription
// the index does not know is matched to a resource by its metadata, read by
// the identity rule (internal/identity): this instance's StripeSubscription
// only, and the UID when the metadata records one.
func TestEventsMatchResourcesByTheIdentityRule(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_ident1")
	s := New(Options{Client: mgr.GetClient(), APIReader: env.Client, Instance: "mine"})
	owner := identity.Identity{Instance: "mine", Kind: "StripeSubscription", Namespace: obj.Namespace, Name: obj.Name, UID: string(obj.UID)}
	with := func(change func(map[string]string)) map[string]string {
		md := identity.Metadata(owner, nil)
		change(md)
		return md
	}
	for _, tc := range []struct {
		name  string
		md    map[string]string
		found bool
	}{
		{"this instance's identity", identity.Metadata(owner, nil), true},
		{"written before instances and kinds", with(func(m map[string]string) { delete(m, identity.KeyInstance); delete(m, identity.KeyKind) }), true},
		{"another instance", with(func(m map[string]string) { m[identity.KeyInstance] = "other" }), false},
		{"another kind", with(func(m map[string]string) { m[identity.KeyKind] = "StripeCustomer" }), false},
		{"another UID (a resource deleted and re-created)", with(func(m map[string]string) { m[identity.KeyUID] = "not-" + string(obj.UID) }), false},
		{"a broken identity (name only)", with(func(m map[string]string) { delete(m, identity.KeyNamespace) }), false},
		{"no identity", map[string]string{"team": "x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := s.findTarget(context.Background(), "", tc.md)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got != nil).To(Equal(tc.found))
			if got != nil {
				g.Expect(got.UID).To(Equal(obj.UID))
			}
		})
	}
}
