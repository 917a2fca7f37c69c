package webhookserver

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
)

func TestSubscriptionEventAppliesOnceAndInOrder(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_apply1")
	t0 := r.now.Unix()

	// A signed customer.subscription.updated changes status.
	g.Expect(r.post(subEvent("evt_a1", "customer.subscription.updated", t0, obj, "active", 2, true, "2023-10-16"))).To(Equal(200))
	got := r.get(obj)
	g.Expect(got.Status.StripeStatus).To(Equal("active"))
	g.Expect(got.Status.Items).To(ConsistOf(billingv1alpha1.ObservedItem{ItemID: "si_1", PriceID: "price_test1", Quantity: 2}))
	g.Expect(got.Status.LastEvent).To(Equal(&billingv1alpha1.EventRef{ID: "evt_a1", Type: "customer.subscription.updated", Created: t0}))
	rv := got.ResourceVersion

	// The same event again, and five duplicates at once: no write at all.
	r.waitCached(obj)
	before := r.c.writes.Load()
	codes := make(chan int, 6)
	codes <- r.post(subEvent("evt_a1", "customer.subscription.updated", t0, obj, "active", 2, true, "2023-10-16"))
	done := make(chan struct{})
	for range 5 {
		go func() {
			codes <- r.post(subEvent("evt_a1", "customer.subscription.updated", t0, obj, "active", 2, true, "2023-10-16"))
			done <- struct{}{}
		}()
	}
	for range 5 {
		<-done
	}
	close(codes)
	for c := range codes {
		g.Expect(c).To(Equal(200))
	}
	g.Expect(r.c.writes.Load()).To(Equal(before), "duplicates must not write")
	g.Expect(r.get(obj).ResourceVersion).To(Equal(rv))

	// An older event after a newer one changes nothing and writes nothing.
	code, outcome := r.postOutcome(subEvent("evt_old", "customer.subscription.updated", t0-10, obj, "trialing", 1, true, "2023-10-16"))
	g.Expect(code).To(Equal(200))
	g.Expect(outcome).To(Equal(OutcomeOutOfOrder))
	g.Expect(r.c.writes.Load()).To(Equal(before), "an out-of-order event must not write")
	g.Expect(r.get(obj).ResourceVersion).To(Equal(rv))

	// Two events in the same second: their order is unknown. The first is
	// newer than the marker and applies; the second would change status
	// and may be older, so it is deferred (recorded for the operator to
	// read Stripe), never applied over the first: status does not move
	// backwards. Redeliveries of either are duplicates.
	_, outcome = r.postOutcome(subEvent("evt_b1", "customer.subscription.updated", t0+5, obj, "active", 3, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeApplied))
	_, outcome = r.postOutcome(subEvent("evt_b2", "customer.subscription.updated", t0+5, obj, "past_due", 4, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeDeferred))
	r.waitCached(obj)
	_, outcome = r.postOutcome(subEvent("evt_b1", "customer.subscription.updated", t0+5, obj, "active", 3, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeDuplicate))
	_, outcome = r.postOutcome(subEvent("evt_b2", "customer.subscription.updated", t0+5, obj, "past_due", 4, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeDuplicate))
	got = r.get(obj)
	g.Expect(got.Status.StripeStatus).To(Equal("active"))
	g.Expect(got.Status.Items[0].Quantity).To(Equal(int64(3)))
	g.Expect(got.Status.LastEvent.ID).To(Equal("evt_b1"))
	g.Expect(got.Status.DeferredEvent.ID).To(Equal("evt_b2"))
	// A same-second event that agrees with status applies (its marker
	// moves): nothing to read.
	_, outcome = r.postOutcome(subEvent("evt_b3", "customer.subscription.updated", t0+5, obj, "active", 3, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeApplied))
	g.Expect(r.get(obj).Status.LastEvent.ID).To(Equal("evt_b3"))

	// A same-second event never brings a deleted subscription back.
	g.Expect(r.post(subEvent("evt_c1", "customer.subscription.deleted", t0+9, obj, "canceled", 3, true, "2023-10-16"))).To(Equal(200))
	_, outcome = r.postOutcome(subEvent("evt_c2", "customer.subscription.updated", t0+9, obj, "active", 3, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeDeferred))
	g.Expect(r.get(obj).Status.StripeStatus).To(Equal("canceled"))
}

func TestAdoptedSubscriptionFoundByIndexAndOtherAPIVersion(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_adopted1")
	// No operator metadata (an adopted subscription) and a newer API version.
	g.Expect(r.post(subEvent("evt_d1", "customer.subscription.updated", r.now.Unix(), obj, "active", 7, false, "2024-06-20"))).To(Equal(200))
	g.Expect(r.get(obj).Status.Items[0].Quantity).To(Equal(int64(7)))

	// A subscription nobody manages is acknowledged and ignored.
	other := obj.DeepCopy()
	other.Status.SubscriptionID = "sub_unmanaged"
	before := r.c.writes.Load()
	g.Expect(r.post(subEvent("evt_d2", "customer.subscription.updated", r.now.Unix(), other, "active", 1, false, "2023-10-16"))).To(Equal(200))
	g.Expect(r.c.writes.Load()).To(Equal(before))
}

func TestPaymentEvents(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_pay1")
	t0 := r.now.Unix()
	next := t0 + 3*86400

	// A payment failure: one status write, one Warning Event.
	before := r.c.writes.Load()
	g.Expect(r.post(invoiceEvent("evt_p1", "invoice.payment_failed", t0, obj, "open", "requires_payment_method", "card_declined", 1, next))).To(Equal(200))
	g.Expect(r.c.writes.Load()-before).To(Equal(int64(1)), "one status write per payment failure")
	g.Expect(r.warnings()).To(HaveLen(1), "one Warning Event per payment failure")
	got := r.get(obj)
	cond := findCond(got, billingv1alpha1.ConditionPaymentFailed)
	g.Expect(cond).NotTo(BeNil())
	g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond.Reason).To(Equal(billingv1alpha1.ReasonPaymentDeclined))
	g.Expect(cond.Message).To(And(ContainSubstring("(40.00 USD)"), ContainSubstring("1 attempt")))
	g.Expect(got.Status.LatestInvoice.Status).To(Equal("open"))
	g.Expect(got.Status.LatestInvoice.PaymentIntentStatus).To(Equal("requires_payment_method"), "from the event type")
	g.Expect(got.Status.LatestInvoice.PaymentError).To(BeEmpty(), "a decline code is for a read: events carry the payment intent's ID only")
	g.Expect(got.Status.LatestInvoice.LastEvent.ID).To(Equal("evt_p1"))

	// Its redelivery: nothing.
	r.waitCached(obj)
	before = r.c.writes.Load()
	g.Expect(r.post(invoiceEvent("evt_p1", "invoice.payment_failed", t0, obj, "open", "requires_payment_method", "card_declined", 1, next))).To(Equal(200))
	g.Expect(r.c.writes.Load()).To(Equal(before))
	g.Expect(r.warnings()).To(BeEmpty())

	g.Expect(r.post(invoiceEvent("evt_p2", "invoice.payment_action_required", t0+1, obj, "open", "requires_action", "", 2, next))).To(Equal(200))
	g.Expect(findCond(r.get(obj), billingv1alpha1.ConditionPaymentFailed).Reason).To(Equal(billingv1alpha1.ReasonAuthenticationRequired))
	g.Expect(r.warnings()).To(HaveLen(1), "a new failed attempt is a new Warning")
	// Stripe sends invoice.payment_failed for the same attempt too: it
	// does not erase that authentication is required (nor warn again).
	r.waitCached(obj)
	_, outcome := r.postOutcome(invoiceEvent("evt_p2f", "invoice.payment_failed", t0+1, obj, "open", "requires_action", "authentication_required", 2, next))
	g.Expect(outcome).To(Equal(OutcomeApplied))
	got = r.get(obj)
	g.Expect(got.Status.LatestInvoice.PaymentIntentStatus).To(Equal("requires_action"))
	g.Expect(findCond(got, billingv1alpha1.ConditionPaymentFailed).Reason).To(Equal(billingv1alpha1.ReasonAuthenticationRequired))
	g.Expect(r.warnings()).To(BeEmpty())

	g.Expect(r.post(invoiceEvent("evt_p3", "invoice.paid", t0+2, obj, "paid", "succeeded", "", 3, 0))).To(Equal(200))
	got = r.get(obj)
	cond = findCond(got, billingv1alpha1.ConditionPaymentFailed)
	g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(cond.Reason).To(Equal(billingv1alpha1.ReasonPaid))
	// A same-second event with an earlier state does not unpay it: its
	// order is unknown, it is deferred.
	_, outcome = r.postOutcome(invoiceEvent("evt_p4", "invoice.finalized", t0+2, obj, "open", "requires_payment_method", "", 3, 0))
	g.Expect(outcome).To(Equal(OutcomeDeferred))
	g.Expect(r.get(obj).Status.LatestInvoice.Status).To(Equal("paid"))
}

// step is one delivery in an interleaving.
type step struct {
	body    func(r *rig, obj *billingv1alpha1.StripeSubscription, t0 int64) []byte
	outcome string
}

func subStep(id string, dt int64, status string, qty int64, outcome string) step {
	return step{func(r *rig, obj *billingv1alpha1.StripeSubscription, t0 int64) []byte {
		return subEvent(id, "customer.subscription.updated", t0+dt, obj, status, qty, true, "2023-10-16")
	}, outcome}
}

func invStep(inv string, invCreated int64, id, typ string, dt int64, status, code string, attempts int64, outcome string) step {
	return step{func(r *rig, obj *billingv1alpha1.StripeSubscription, t0 int64) []byte {
		var next int64
		if status == "open" {
			next = t0 + 86400
		}
		pi := "requires_payment_method"
		if status == "paid" {
			pi = "succeeded"
		}
		return invoiceEventFor(inv, t0+invCreated, id, typ, t0+dt, obj, status, pi, code, attempts, next)
	}, outcome}
}

// TestOrderingPerStream delivers events in each interleaving that matters:
// subscription and invoice events are ordered each by their own stream, an
// invoice's events by that invoice's, and an event about an invoice older
// than the latest changes neither latestInvoice nor PaymentFailed.
func TestOrderingPerStream(t *testing.T) {
	for _, tc := range []struct {
		name        string
		steps       []step
		wantStatus  string
		wantInvoice string
		wantInvStat string
		wantPayment metav1.ConditionStatus
	}{
		{"newer subscription event first, then the older invoice failure", []step{
			subStep("evt_s1", 1, "past_due", 1, OutcomeApplied),
			invStep("in_a", -100, "evt_i1", "invoice.payment_failed", 0, "open", "card_declined", 1, OutcomeApplied),
		}, "past_due", "in_a", "open", metav1.ConditionTrue},
		{"invoice failure first, then the older subscription event", []step{
			invStep("in_a", -100, "evt_i1", "invoice.payment_failed", 1, "open", "card_declined", 1, OutcomeApplied),
			subStep("evt_s1", 0, "past_due", 1, OutcomeApplied),
		}, "past_due", "in_a", "open", metav1.ConditionTrue},
		{"paid for last month's invoice after this month's failure", []step{
			invStep("in_new", -100, "evt_i2", "invoice.payment_failed", 0, "open", "card_declined", 1, OutcomeApplied),
			invStep("in_old", -3000000, "evt_i1", "invoice.paid", 5, "paid", "", 1, OutcomeSuperseded),
		}, "", "in_new", "open", metav1.ConditionTrue},
		{"a newer invoice replaces the latest", []step{
			invStep("in_old", -3000000, "evt_i1", "invoice.payment_failed", 0, "open", "card_declined", 1, OutcomeApplied),
			invStep("in_new", -100, "evt_i2", "invoice.paid", 1, "paid", "", 1, OutcomeApplied),
			invStep("in_old", -3000000, "evt_i3", "invoice.voided", 2, "void", "", 1, OutcomeSuperseded),
		}, "", "in_new", "paid", metav1.ConditionFalse},
		{"same invoice, older event after newer", []step{
			invStep("in_a", -100, "evt_i2", "invoice.paid", 5, "paid", "", 2, OutcomeApplied),
			invStep("in_a", -100, "evt_i1", "invoice.payment_failed", 1, "open", "card_declined", 1, OutcomeOutOfOrder),
		}, "", "in_a", "paid", metav1.ConditionFalse},
		// Same-second events of one stream: the order is unknown, so the
		// second is deferred (the operator reads Stripe) and status keeps
		// the first: never moved backwards, no failure dropped.
		{"same-second tie on one invoice, failure then paid", []step{
			invStep("in_a", -100, "evt_i1", "invoice.payment_failed", 3, "open", "card_declined", 1, OutcomeApplied),
			invStep("in_a", -100, "evt_i2", "invoice.paid", 3, "paid", "", 2, OutcomeDeferred),
			invStep("in_a", -100, "evt_i1", "invoice.payment_failed", 3, "open", "card_declined", 1, OutcomeDuplicate),
		}, "", "in_a", "open", metav1.ConditionTrue},
		{"same-second tie on one invoice, paid then failure", []step{
			invStep("in_a", -100, "evt_i2", "invoice.paid", 3, "paid", "", 2, OutcomeApplied),
			invStep("in_a", -100, "evt_i1", "invoice.payment_failed", 3, "open", "card_declined", 1, OutcomeDeferred),
		}, "", "in_a", "paid", metav1.ConditionFalse},
		{"an invoice created in the same second as the latest is not superseded", []step{
			invStep("in_a", -100, "evt_i1", "invoice.payment_failed", 3, "open", "card_declined", 1, OutcomeApplied),
			invStep("in_b", -100, "evt_i2", "invoice.paid", 4, "paid", "", 1, OutcomeDeferred),
			invStep("in_b", -100, "evt_i2", "invoice.paid", 4, "paid", "", 1, OutcomeDuplicate),
		}, "", "in_a", "open", metav1.ConditionTrue},
		{"same-second subscription and invoice events do not judge each other", []step{
			subStep("evt_s1", 3, "past_due", 1, OutcomeApplied),
			invStep("in_a", -100, "evt_i1", "invoice.payment_failed", 3, "open", "card_declined", 1, OutcomeApplied),
			subStep("evt_s0", 3, "active", 1, OutcomeDeferred),
		}, "past_due", "in_a", "open", metav1.ConditionTrue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := newRig(t)
			obj := r.newSubscription(fmt.Sprintf("sub_ord%d", r.now.UnixNano()%1e9))
			t0 := r.now.Unix()
			for i, s := range tc.steps {
				before := r.c.writes.Load()
				code, outcome := r.postOutcome(s.body(r, obj, t0))
				g.Expect(code).To(Equal(http.StatusOK), "step %d", i)
				g.Expect(outcome).To(Equal(s.outcome), "step %d", i)
				if outcome != OutcomeApplied && outcome != OutcomeDeferred {
					g.Expect(r.c.writes.Load()).To(Equal(before), "step %d (%s) must not write", i, outcome)
				}
			}
			got := r.get(obj)
			g.Expect(got.Status.StripeStatus).To(Equal(tc.wantStatus))
			g.Expect(got.Status.LatestInvoice).NotTo(BeNil())
			g.Expect(got.Status.LatestInvoice.ID).To(Equal(tc.wantInvoice))
			g.Expect(got.Status.LatestInvoice.Status).To(Equal(tc.wantInvStat))
			g.Expect(findCond(got, billingv1alpha1.ConditionPaymentFailed).Status).To(Equal(tc.wantPayment))
		})
	}
}

// deletingClient deletes the object just before its status write, as the
// reconciler does when it releases the finalizer after a cancel.
type deletingClient struct{ client.Client }

func (d deletingClient) Status() client.SubResourceWriter {
	return deletingStatus{d.Client.Status(), d.Client}
}

type deletingStatus struct {
	client.SubResourceWriter
	c client.Client
}

func (d deletingStatus) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	if err := env.Client.Delete(ctx, o.DeepCopyObject().(client.Object)); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return d.SubResourceWriter.Patch(ctx, o, p, opts...)
}

func TestDeletedBetweenLookupAndWriteIsUnmanaged(t *testing.T) {
	g := NewWithT(t)
	r := newRigWith(t, func(c client.Client) client.Client { return deletingClient{c} })
	obj := r.newSubscription("sub_gone1")
	code, outcome := r.postOutcome(subEvent("evt_gone1", "customer.subscription.deleted", r.now.Unix(), obj, "canceled", 1, true, "2023-10-16"))
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(outcome).To(Equal(OutcomeIgnored))
}

func findCond(obj *billingv1alpha1.StripeSubscription, typ string) *metav1.Condition {
	for i := range obj.Status.Conditions {
		if obj.Status.Conditions[i].Type == typ {
			return &obj.Status.Conditions[i]
		}
	}
	return nil
}

// TestEventsAgainstTheOperatorsRead: status written from a read of Stripe
// (status.readAt) is newer than any event created before that read, so such
// an event never overwrites it; an event from the read's second that would
// change status may be older or newer, so it is recorded for the operator
// to read again (status.deferredEvent) and not applied; one that agrees
// with the read moves the marker; a later event applies.
func TestEventsAgainstTheOperatorsRead(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_read1")
	t0 := r.now.Unix()
	// The operator read the subscription at t0: active, quantity 2.
	obj = r.get(obj)
	obj.Status.StripeStatus = "active"
	obj.Status.CustomerID = "cus_test1"
	obj.Status.Items = []billingv1alpha1.ObservedItem{{ItemID: "si_1", PriceID: "price_test1", Quantity: 2}}
	obj.Status.CurrentPeriodStart, obj.Status.CurrentPeriodEnd = billing.UnixTime(1700000000), billing.UnixTime(1702592000)
	readAt := metav1.NewTime(time.Unix(t0, 0))
	obj.Status.ReadAt = &readAt
	g.Expect(env.Client.Status().Update(context.Background(), obj)).To(Succeed())
	r.waitCached(obj)
	before := r.c.writes.Load()

	// Created two seconds before the read, and it would change status:
	// whether the read's snapshot holds it is not known (its Date is the
	// answer's time, not the snapshot's), so it is recorded, not applied
	// and not dropped; the operator reads Stripe.
	_, outcome := r.postOutcome(subEvent("evt_r0", "customer.subscription.updated", t0-2, obj, "incomplete", 1, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeDeferred))
	g.Expect(r.c.writes.Load()).To(Equal(before+1), "one status write records it")
	got := r.get(obj)
	g.Expect(got.Status.StripeStatus).To(Equal("active"))
	g.Expect(got.Status.DeferredEvent.ID).To(Equal("evt_r0"))

	// Created in the read's second, and it would change status: recorded, not applied.
	r.waitCached(obj)
	_, outcome = r.postOutcome(subEvent("evt_r1", "customer.subscription.created", t0, obj, "incomplete", 1, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeDeferred))
	got = r.get(obj)
	g.Expect(got.Status.StripeStatus).To(Equal("active"))
	g.Expect(got.Status.Items[0].Quantity).To(Equal(int64(2)))
	g.Expect(got.Status.LastEvent).To(BeNil())
	g.Expect(got.Status.DeferredEvent).To(Equal(&billingv1alpha1.EventRef{ID: "evt_r1", Type: "customer.subscription.created", Created: t0}))
	r.waitCached(obj)
	_, outcome = r.postOutcome(subEvent("evt_r1", "customer.subscription.created", t0, obj, "incomplete", 1, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeDuplicate))

	// Created before the read and agreeing with it: applied, the marker
	// moves, status is unchanged.
	_, outcome = r.postOutcome(subEvent("evt_r2", "customer.subscription.updated", t0-1, obj, "active", 2, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeApplied))
	got = r.get(obj)
	g.Expect(got.Status.StripeStatus).To(Equal("active"))
	g.Expect(got.Status.LastEvent.ID).To(Equal("evt_r2"))

	// Created after the read: newer, applied.
	r.waitCached(obj)
	_, outcome = r.postOutcome(subEvent("evt_r3", "customer.subscription.updated", t0+1, obj, "past_due", 3, true, "2023-10-16"))
	g.Expect(outcome).To(Equal(OutcomeApplied))
	got = r.get(obj)
	g.Expect(got.Status.StripeStatus).To(Equal("past_due"))
	g.Expect(got.Status.Items[0].Quantity).To(Equal(int64(3)))
}
