package controllers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

func TestSubscriptionIdentitiesSnapshot(t *testing.T) {
	g := NewWithT(t)
	now := time.Unix(1_700_000_000, 0)
	x := &subscriptionIdentities{now: func() time.Time { return now }}
	md := map[string]string{billingv1alpha1.StripeMetadataNamespace: "ns", billingv1alpha1.StripeMetadataName: "a"}
	var lists int
	var mu sync.Mutex
	listed := []*stripe.Subscription{
		{ID: "sub_live", Status: "active", Metadata: md},
		{ID: "sub_ended", Status: "canceled", Metadata: md},
		{ID: "sub_foreign", Status: "active"}, // no metadata: never a candidate
	}
	list := func(context.Context) ([]*stripe.Subscription, error) {
		mu.Lock()
		defer mu.Unlock()
		lists++
		return listed, nil
	}
	ids := func(subs []*stripe.Subscription) []string {
		var out []string
		for _, s := range subs {
			out = append(out, s.ID)
		}
		return out
	}

	// Concurrent first lookups list once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := x.candidates(context.Background(), "cus_1", list)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ids(got)).To(ConsistOf("sub_live"))
		}()
	}
	wg.Wait()
	g.Expect(lists).To(Equal(1))

	// What this process creates joins without a list; what ended leaves.
	x.add("cus_1", &stripe.Subscription{ID: "sub_new", Status: "active", Metadata: md})
	x.drop("cus_1", "sub_live")
	got, _ := x.candidates(context.Background(), "cus_1", list)
	g.Expect(ids(got)).To(ConsistOf("sub_new"))
	g.Expect(lists).To(Equal(1))

	// Another customer lists on its own; a stale snapshot is listed again.
	_, _ = x.candidates(context.Background(), "cus_2", list)
	g.Expect(lists).To(Equal(2))
	now = now.Add(identitySnapshotTTL + time.Second)
	got, _ = x.candidates(context.Background(), "cus_1", list)
	g.Expect(ids(got)).To(ConsistOf("sub_live"))
	g.Expect(lists).To(Equal(3))

	// A failed list is not remembered.
	failing := func(context.Context) ([]*stripe.Subscription, error) { return nil, errors.New("boom") }
	_, err := x.candidates(context.Background(), "cus_3", failing)
	g.Expect(err).To(HaveOccurred())
	_, _ = x.candidates(context.Background(), "cus_3", list)
	g.Expect(lists).To(Equal(4))
}

// TestSubscriptionIdentityLookupReadsTheMatchAgain: a subscription this
// process remembers as carrying the resource's identity, but which ended
// since, is not adopted by a re-created resource: a new one is created.
func TestSubscriptionIdentityLookupReadsTheMatchAgain(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("again", nil)
	e.mustReconcile("again")
	oldID := e.fetch("again").Status.SubscriptionID
	g.Expect(oldID).NotTo(BeEmpty())

	// Deleted (CancelAtPeriodEnd keeps it live), then canceled in Stripe.
	g.Expect(testClient().Delete(e.ctx, e.fetch("again"))).To(Succeed())
	e.mustReconcile("again")
	g.Expect(apierrors.IsNotFound(testClient().Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: "again"}, &billingv1alpha1.StripeSubscription{}))).To(BeTrue())
	g.Expect(e.m.fake.DashboardCancelSubscription(oldID)).To(Succeed())

	// Re-applied: the remembered match is read, found ended, and not adopted.
	e.newSub("again", nil)
	e.mustReconcile("again")
	newID := e.fetch("again").Status.SubscriptionID
	g.Expect(newID).NotTo(BeEmpty())
	g.Expect(newID).NotTo(Equal(oldID))
	g.Expect(e.m.creates()).To(Equal(2))
}
