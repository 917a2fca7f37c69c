package webhookserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// TestBackToBackEventsDoNotConflict: events for one subscription sent one
// after another, each as soon as the last was answered, faster than the
// informer cache sees each write. Each is written once, over the object the
// last write returned, with no conflict and no extra read.
func TestBackToBackEventsDoNotConflict(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_b2b_" + rand.String(8))
	t0 := r.now.Unix()
	const n = 30
	for i := range int64(n) {
		code, outcome := r.postOutcome(subEvent(fmt.Sprintf("evt_b2b_%d", i), "customer.subscription.updated", t0+i, obj, "active", i%5+1, true, "2023-10-16"))
		g.Expect(code).To(Equal(200))
		g.Expect(outcome).To(Equal(OutcomeApplied), "event %d", i)
	}
	g.Expect(r.c.writes.Load()).To(BeEquivalentTo(n))
	g.Expect(r.c.metaWrites.Load()).To(BeEquivalentTo(n), "one annotation write per event")
	g.Expect(r.c.conflicts.Load()).To(BeZero(), "writes over a resourceVersion the server had already replaced")
	got := r.get(obj)
	g.Expect(got.Status.LastEvent.ID).To(Equal(fmt.Sprintf("evt_b2b_%d", n-1)))
	g.Expect(got.Status.Items[0].Quantity).To(BeEquivalentTo((n-1)%5 + 1))
}

// TestOwnWrites: the server's own write is used only while the cache still
// shows the resourceVersion it replaced; resourceVersions are compared for
// equality only.
func TestOwnWrites(t *testing.T) {
	at := func(uid, rv string) *billingv1alpha1.StripeSubscription {
		return &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), ResourceVersion: rv}}
	}
	now := time.Now()
	for _, tc := range []struct {
		name     string
		cached   *billingv1alpha1.StripeSubscription
		wantRV   string
		wantOurs bool
	}{
		{"cache still shows the replaced version", at("u1", "10"), "11", true},
		{"cache shows the write", at("u1", "11"), "11", false},
		{"cache shows another writer's later version", at("u1", "12"), "12", false},
		{"another object", at("u2", "10"), "10", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			var w ownWrites
			w.record("10", at("u1", "11"), now)
			got, ours := w.newer(tc.cached)
			g.Expect(got.ResourceVersion).To(Equal(tc.wantRV))
			g.Expect(ours).To(Equal(tc.wantOurs))
			if !ours && tc.cached.UID == "u1" {
				// Once the cache has moved on, the entry is gone.
				_, again := w.newer(at("u1", "10"))
				g.Expect(again).To(BeFalse())
			}
		})
	}
}

// TestOwnWritesIsBounded: entries never exceed maxOwnWrites.
func TestOwnWritesIsBounded(t *testing.T) {
	var w ownWrites
	now := time.Now()
	for i := range maxOwnWrites + 100 {
		w.record("1", &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{UID: types.UID(fmt.Sprint(i)), ResourceVersion: "2"}}, now)
	}
	if len(w.m) > maxOwnWrites {
		t.Fatalf("%d entries, want at most %d", len(w.m), maxOwnWrites)
	}
}

// TestStatusPatch: the patch carries the resourceVersion precondition and
// only what changed; a field that went away is deleted with null.
func TestStatusPatch(t *testing.T) {
	g := NewWithT(t)
	before := &billingv1alpha1.StripeSubscriptionStatus{StripeStatus: "active", LatestInvoice: &billingv1alpha1.InvoiceStatus{ID: "in_1"}}
	after := before.DeepCopy()
	after.StripeStatus = "past_due"
	after.LatestInvoice = nil
	p, err := statusPatch(before, after, "42")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(p)).To(MatchJSON(`{"metadata":{"resourceVersion":"42"},"status":{"stripeStatus":"past_due","latestInvoice":null}}`))
}

// TestLookupReadsTheInformerIndex: with the manager's cache, a delivery
// finds its subscription through the informer's own index (no List, no
// copy); the scan of the cached list is only for caches without one.
func TestLookupReadsTheInformerIndex(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_idx_" + rand.String(8))
	s := New(Options{Client: mgr.GetClient(), Cache: mgr.GetCache()})
	idx, err := s.subscriptionIndex(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(idx).NotTo(BeNil(), "the manager's informer has no usable subscription-ID index")
	for _, srv := range []*Server{s, New(Options{Client: mgr.GetClient()})} {
		got, err := srv.subscriptionsByID(context.Background(), obj.Status.SubscriptionID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(HaveLen(1))
		g.Expect(got[0].UID).To(Equal(obj.UID))
	}
}

// TestOwnWritesExpire: an entry no later event looked at is dropped after
// ownWriteTTL, so written objects do not outlive the cache's for long.
func TestOwnWritesExpire(t *testing.T) {
	var w ownWrites
	now := time.Now()
	obj := func(uid string) *billingv1alpha1.StripeSubscription {
		return &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), ResourceVersion: "2"}}
	}
	w.record("1", obj("old"), now)
	w.record("1", obj("new"), now.Add(2*ownWriteTTL))
	if _, ok := w.m["old"]; ok {
		t.Fatal("an entry older than ownWriteTTL was kept")
	}
	if _, ok := w.m["new"]; !ok {
		t.Fatal("the new entry is missing")
	}
}

// TestOwnWritesFollowAChain: a cache that lags several of this server's
// writes in a row (each replacing the one before) still gets the last one.
func TestOwnWritesFollowAChain(t *testing.T) {
	g := NewWithT(t)
	at := func(rv string) *billingv1alpha1.StripeSubscription {
		return &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{UID: "u1", ResourceVersion: rv}}
	}
	var w ownWrites
	now := time.Now()
	// Event 1: status 1 -> 2, annotations 2 -> 3.
	w.record("1", at("2"), now)
	w.recordVia("1", "2", at("3"), now)
	// Event 2, judged on our write 3: status 3 -> 4, annotations 4 -> 5.
	w.record("3", at("4"), now)
	w.recordVia("3", "4", at("5"), now)
	for _, lagging := range []string{"1", "2", "3", "4"} {
		got, ours := w.newer(at(lagging))
		g.Expect(ours).To(BeTrue(), "cache at %s", lagging)
		g.Expect(got.ResourceVersion).To(Equal("5"))
	}
	// Another writer's version ends the chain.
	got, ours := w.newer(at("9"))
	g.Expect(ours).To(BeFalse())
	g.Expect(got.ResourceVersion).To(Equal("9"))
}
