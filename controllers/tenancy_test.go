package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// TestTenantsCannotTakeOverEachOther: resources of namespace b that name
// namespace a's Stripe objects (subscription, customer, product) are
// Stalled OwnedElsewhere, the message names only the owner, and Stripe sees
// no write at all. An object made outside the operator is adopted only once
// the namespace is labelled for adoption.
func TestTenantsCannotTakeOverEachOther(t *testing.T) {
	g := NewWithT(t)
	a := startHarness(t, harnessOptions{instance: "shared"})
	cus := a.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	sub := newSub("s", nil, planItem("pro", 1))
	a.create(sub)
	a.waitReady(sub)
	var plan billingv1alpha1.StripePlan
	g.Expect(a.c.Get(context.Background(), client.ObjectKey{Namespace: a.ns, Name: "pro"}, &plan)).To(Succeed())

	b := startHarness(t, harnessOptions{instance: "shared", fake: a.fake})
	writes := a.fake.Stats().Writes
	steal := []conditioned{
		newSub("steal-sub", func(s *billingv1alpha1.StripeSubscriptionSpec) {
			s.SubscriptionID, s.CustomerRef, s.CustomerID = sub.Status.SubscriptionID, nil, cus.Status.CustomerID
		}, billingv1alpha1.SubscriptionItem{PriceID: plan.Status.PriceID, Quantity: 1}),
		newSub("bill-theirs", func(s *billingv1alpha1.StripeSubscriptionSpec) {
			s.CustomerRef, s.CustomerID = nil, cus.Status.CustomerID
		}, billingv1alpha1.SubscriptionItem{PriceID: plan.Status.PriceID, Quantity: 1}),
		newCustomer("steal-cus", func(s *billingv1alpha1.StripeCustomerSpec) { s.CustomerID = cus.Status.CustomerID }),
		newPlan("steal-plan", 2000, func(s *billingv1alpha1.StripePlanSpec) { s.ProductID = plan.Status.ProductID }),
	}
	for _, obj := range steal {
		b.create(obj)
	}
	// Each claim's Stalled condition for its generation is the sign that
	// its pass ran (and wrote status) before the count is read.
	for _, obj := range steal {
		b.waitCondition(obj, billingv1alpha1.ConditionStalled, "True", ReasonOwnedElsewhere)
		msg := condOf(obj, billingv1alpha1.ConditionStalled).Message
		g.Expect(msg).To(ContainSubstring(a.ns+"/"), "%s names the owner", obj.GetName())
		g.Expect(msg).NotTo(ContainSubstring("@"), "no customer details leak")
	}
	g.Expect(a.fake.Stats().Writes).To(Equal(writes), "no Stripe write at all")

	// Made by hand, without identity: refused until the namespace allows it.
	name := "Hand-made"
	prod, err := b.stripe.CreateProduct(context.Background(), stripe.Owner{UID: "by-hand"}, "", stripe.ProductParams{Name: &name})
	g.Expect(err).NotTo(HaveOccurred())
	adopt := newPlan("adopt", 2000, func(s *billingv1alpha1.StripePlanSpec) { s.ProductID, s.Product.Name = prod.ID, name })
	b.create(adopt)
	b.waitCondition(adopt, billingv1alpha1.ConditionStalled, "True", ReasonOwnedElsewhere)
	g.Expect(condOf(adopt, billingv1alpha1.ConditionStalled).Message).To(ContainSubstring("billing.stripe-operator.io/adoption=allowed"))
	b.allowAdoption()
	b.update(adopt, func() { adopt.Spec.Product.Description = "now allowed" }) // any change re-queues
	b.waitReady(adopt)
	g.Expect(adopt.Status.ProductID).To(Equal(prod.ID))
}

// TestDeletionDefaultsCanBeUndone: deleting every subscription of a
// namespace (what deleting the namespace does) sets cancel_at_period_end on
// each and cancels none; re-applying one before the period ends binds to
// it again and resumes it. A customer with deletionPolicy Delete is not
// deleted while Stripe still has a live subscription of it, whoever made
// it, and is once that has ended.
func TestDeletionDefaultsCanBeUndone(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{})
	cus := h.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	var ids []string
	for i := range 10 {
		s := newSub(fmt.Sprintf("s%d", i), nil, planItem("pro", 1))
		h.create(s)
		h.waitReady(s)
		g.Expect(s.Spec.DeletionPolicy).To(Equal(billingv1alpha1.SubscriptionDeletionPolicyCancelAtPeriodEnd), "the default")
		ids = append(ids, s.Status.SubscriptionID)
	}
	g.Expect(h.c.DeleteAllOf(context.Background(), &billingv1alpha1.StripeSubscription{}, client.InNamespace(h.ns))).To(Succeed())
	g.Eventually(func() int {
		var l billingv1alpha1.StripeSubscriptionList
		_ = h.c.List(context.Background(), &l, client.InNamespace(h.ns))
		return len(l.Items)
	}, 30*time.Second).Should(BeZero())
	for _, id := range ids {
		snap, _ := h.fake.Subscription(id)
		g.Expect(snap.Status).To(Equal("active"), "%s is not canceled", id)
		g.Expect(snap.CancelAtPeriodEnd).To(BeTrue(), "%s ends with its period", id)
	}

	// Re-applied a few seconds later: the same subscription, resumed.
	creates := h.fake.Stats().Creates["subscription"]
	again := newSub("s3", nil, planItem("pro", 1))
	h.create(again)
	h.waitReady(again)
	g.Expect(again.Status.SubscriptionID).To(Equal(ids[3]))
	g.Eventually(func() bool { snap, _ := h.fake.Subscription(ids[3]); return snap.CancelAtPeriodEnd }, 20*time.Second).Should(BeFalse())
	g.Expect(h.fake.Stats().Creates["subscription"]).To(Equal(creates))
	h.waitEvent("Adopted")

	// Delete is refused while a live subscription exists, and proceeds once
	// it has ended.
	h.update(cus, func() { cus.Spec.DeletionPolicy = billingv1alpha1.CustomerDeletionPolicyDelete })
	h.waitReady(cus)
	h.delete(again)
	h.waitGone(again)
	h.delete(cus)
	h.waitCondition(cus, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonInUse)
	g.Expect(condOf(cus, billingv1alpha1.ConditionStalled).Message).To(ContainSubstring(ids[0]))
	g.Expect(h.stripeCustomer(cus.Status.CustomerID).Deleted).To(BeFalse())
	for _, id := range ids {
		g.Expect(h.fake.DashboardCancelSubscription(id)).To(Succeed())
	}
	h.waitGone(cus)
	g.Expect(h.stripeCustomer(cus.Status.CustomerID).Deleted).To(BeTrue())
}

// TestUpgradeBackfillsIdentity: Stripe objects made before identities
// existed carry only namespace, name and uid, and their resources' stored
// specs hold the old defaults. The new manager recognises them, backfills
// the instance and kind keys on its next pass without creating anything,
// and leaves each stored deletionPolicy as it is.
func TestUpgradeBackfillsIdentity(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	ctx := e.ctx
	// A customer in today's (old) metadata shape, and its resource.
	cus := newCustomer("old-cus", func(s *billingv1alpha1.StripeCustomerSpec) {
		s.DeletionPolicy, s.DefaultPaymentMethod = billingv1alpha1.CustomerDeletionPolicyDelete, ""
	})
	cus.Namespace = e.ns
	g.Expect(testClient().Create(ctx, cus)).To(Succeed())
	old, err := e.m.api.CreateCustomer(ctx, stripe.Owner{Namespace: e.ns, Name: "old-cus", UID: string(cus.UID)}, "",
		stripe.CustomerParams{Email: &cus.Spec.Email, Name: &cus.Spec.Name, Metadata: cus.Spec.Metadata.Map()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(old.Metadata).NotTo(HaveKey(billingv1alpha1.StripeMetadataInstance))
	// Reconciled before the upgrade: status observed the current generation.
	cus.Status.CustomerID, cus.Status.ObservedGeneration = old.ID, cus.Generation
	g.Expect(testClient().Status().Update(ctx, cus)).To(Succeed())

	// A subscription likewise, with the old default policy Cancel stored.
	sub := e.newSub("old-sub", func(s *billingv1alpha1.StripeSubscription) {
		s.Spec.DeletionPolicy = billingv1alpha1.SubscriptionDeletionPolicyCancel
	})
	oldSub, err := e.m.api.CreateSubscription(ctx, stripe.Owner{Namespace: e.ns, Name: "old-sub", UID: string(sub.UID)}, "", stripe.SubscriptionCreateParams{
		CustomerID: e.m.customerID, Items: []stripe.SubscriptionItemParams{{PriceID: e.m.price["basic"], Quantity: 2}}})
	g.Expect(err).NotTo(HaveOccurred())
	sub.Status.SubscriptionID, sub.Status.CustomerID, sub.Status.ObservedGeneration = oldSub.ID, e.m.customerID, sub.Generation
	g.Expect(testClient().Status().Update(ctx, sub)).To(Succeed())

	creates := e.m.fake.Stats().Creates
	rec := record.NewFakeRecorder(100)
	e.r.Recorder = rec
	cr := &StripeCustomerReconciler{Client: testClient(), Stripe: e.m.api, Recorder: rec, ResyncPeriod: time.Hour}
	_, err = cr.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cus)})
	g.Expect(err).NotTo(HaveOccurred())
	e.mustReconcile("old-sub")

	got, err := e.m.api.GetCustomer(ctx, old.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Metadata).To(And(HaveKeyWithValue(billingv1alpha1.StripeMetadataInstance, DefaultInstance),
		HaveKeyWithValue(billingv1alpha1.StripeMetadataKind, "StripeCustomer")))
	g.Expect(e.m.get(oldSub.ID).Metadata).To(And(HaveKeyWithValue(billingv1alpha1.StripeMetadataInstance, DefaultInstance),
		HaveKeyWithValue(billingv1alpha1.StripeMetadataKind, "StripeSubscription")))
	g.Expect(e.m.fake.Stats().Creates).To(Equal(creates), "nothing created")
	g.Expect(testClient().Get(ctx, client.ObjectKeyFromObject(cus), cus)).To(Succeed())
	g.Expect(cus.Spec.DeletionPolicy).To(Equal(billingv1alpha1.CustomerDeletionPolicyDelete))
	g.Expect(cus.Status.CustomerID).To(Equal(old.ID))
	g.Expect(e.fetch("old-sub").Spec.DeletionPolicy).To(Equal(billingv1alpha1.SubscriptionDeletionPolicyCancel))
	g.Expect(e.fetch("old-sub").Status.SubscriptionID).To(Equal(oldSub.ID))

	// A second pass of each, as after the upgrade's first: the backfill is
	// bookkeeping, never reported as drift.
	_, err = cr.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cus)})
	g.Expect(err).NotTo(HaveOccurred())
	e.mustReconcile("old-sub")
	close(rec.Events)
	for ev := range rec.Events {
		g.Expect(ev).NotTo(ContainSubstring("DriftCorrected"))
	}
	g.Expect(cond(e.fetch("old-sub"), billingv1alpha1.ConditionBillingDrift).Reason).NotTo(Equal(billingv1alpha1.ReasonDriftCorrected))
}
