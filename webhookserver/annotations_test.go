package webhookserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// TestEventIDAnnotations: every applied event's ID is recorded in the
// annotations after its status write, the list is bounded, and a
// redelivery the annotations name costs no API request.
func TestEventIDAnnotations(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_ann1")
	t0 := r.now.Unix()
	n := maxRecentEventIDs + 5
	for i := range n {
		code, outcome := r.postOutcome(subEvent(fmt.Sprintf("evt_ann_%02d", i), "customer.subscription.updated", t0+int64(i), obj, "active", int64(i%5+1), true, "2023-10-16"))
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(outcome).To(Equal(OutcomeApplied))
	}
	g.Expect(r.c.writes.Load()+r.c.metaWrites.Load()).To(BeEquivalentTo(2*n), "at most two API requests per fresh event")
	// A conflicted write (and the fresh read after it) would be a request
	// more than the two counted.
	g.Expect(r.c.conflicts.Load()).To(BeZero(), "no write conflicted")
	got := r.get(obj)
	ann := got.GetAnnotations()
	g.Expect(ann[billingv1alpha1.AnnotationLastEventID]).To(Equal(fmt.Sprintf("evt_ann_%02d", n-1)))
	ids := strings.Split(ann[billingv1alpha1.AnnotationRecentEventIDs], ",")
	g.Expect(ids).To(HaveLen(maxRecentEventIDs))
	g.Expect(ids[0]).To(Equal(fmt.Sprintf("evt_ann_%02d", n-maxRecentEventIDs)))
	g.Expect(ids[len(ids)-1]).To(Equal(fmt.Sprintf("evt_ann_%02d", n-1)))

	// A redelivery of an event the list names, no longer the status
	// marker: recognised from the annotations, no request.
	r.waitCached(obj)
	before := r.c.writes.Load() + r.c.metaWrites.Load()
	_, outcome := r.postOutcome(subEvent(fmt.Sprintf("evt_ann_%02d", n-3), "customer.subscription.updated", t0+int64(n-3), obj, "active", 1, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeDuplicate))
	g.Expect(r.c.writes.Load() + r.c.metaWrites.Load()).To(Equal(before))
}

// failingMeta fails the writes of the resource (the annotation write that
// follows a status write) while fail is set: the server stopping between
// its two writes.
type failingMeta struct {
	client.Client
	fail *atomic.Bool
}

func (f failingMeta) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	if f.fail.Load() {
		return errors.New("injected: connection lost after the status write")
	}
	return f.Client.Patch(ctx, o, p, opts...)
}

// TestCrashBetweenStatusAndAnnotations: the status write is the commit
// point. When the annotation write after it fails, the event is answered
// 503; Stripe's redelivery is recognised from the status marker (not
// applied again: no second status write, no second Warning) and its ID is
// recorded then.
func TestCrashBetweenStatusAndAnnotations(t *testing.T) {
	g := NewWithT(t)
	var fail atomic.Bool
	r := newRigWith(t, func(c client.Client) client.Client { return failingMeta{c, &fail} })
	obj := r.newSubscription("sub_crash1")
	t0 := r.now.Unix()
	body := invoiceEvent("evt_crash1", "invoice.payment_failed", t0, obj, "open", "requires_payment_method", "card_declined", 1, t0+86400)

	fail.Store(true)
	code, _ := r.postOutcome(body)
	g.Expect(code).To(Equal(http.StatusServiceUnavailable), "not persisted whole: Stripe must redeliver")
	got := r.get(obj)
	g.Expect(got.Status.LatestInvoice).NotTo(BeNil())
	g.Expect(got.Status.LatestInvoice.LastEvent.ID).To(Equal("evt_crash1"), "the status write committed the event")
	g.Expect(got.GetAnnotations()).NotTo(HaveKey(billingv1alpha1.AnnotationRecentEventIDs))
	g.Expect(r.warnings()).To(HaveLen(1))
	statusWrites := r.c.writes.Load()

	fail.Store(false)
	r.waitCached(obj)
	code, outcome := r.postOutcome(body)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(outcome).To(Equal(OutcomeDuplicate), "recognised from the status marker")
	g.Expect(r.c.writes.Load()).To(Equal(statusWrites), "not applied twice")
	g.Expect(r.warnings()).To(BeEmpty(), "one Warning per failed attempt")
	got = r.get(obj)
	g.Expect(got.GetAnnotations()).To(HaveKeyWithValue(billingv1alpha1.AnnotationLastEventID, "evt_crash1"))
	g.Expect(got.GetAnnotations()).To(HaveKeyWithValue(billingv1alpha1.AnnotationRecentEventIDs, "evt_crash1"))

	// Now a redelivery costs nothing.
	r.waitCached(obj)
	metaWrites := r.c.metaWrites.Load()
	_, outcome = r.postOutcome(body)
	g.Expect(outcome).To(Equal(OutcomeDuplicate))
	g.Expect(r.c.metaWrites.Load()).To(Equal(metaWrites))
}
