package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

func newCustomer(name string, mutate func(*billingv1alpha1.StripeCustomerSpec)) *billingv1alpha1.StripeCustomer {
	c := &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: billingv1alpha1.StripeCustomerSpec{Email: name + "@example.com", Name: "Customer " + name,
			DefaultPaymentMethod: "pm_card_visa", Metadata: billingv1alpha1.Metadata{"team": "a"}}}
	if mutate != nil {
		mutate(&c.Spec)
	}
	return c
}

func (h *harness) stripeCustomer(id string) *stripe.Customer {
	h.t.Helper()
	c, err := h.stripe.GetCustomer(context.Background(), id)
	NewWithT(h.t).Expect(err).NotTo(HaveOccurred())
	return c
}

// defaultPMToken is the test PaymentMethod (pm_card_visa, ...) that the
// Stripe customer's default PaymentMethod was attached from, "" if none.
func (h *harness) defaultPMToken(customerID string) string {
	h.t.Helper()
	pm, ok := h.fake.PaymentMethodOf(h.stripeCustomer(customerID).DefaultPaymentMethod)
	if !ok {
		return ""
	}
	return pm.Token
}

func TestCustomerCreateUpdateDriftDelete(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{})
	cus := newCustomer("acme", func(s *billingv1alpha1.StripeCustomerSpec) {
		s.DeletionPolicy = billingv1alpha1.CustomerDeletionPolicyDelete
	})
	h.create(cus)
	h.waitReady(cus)
	g.Expect(cus.Status.CustomerID).To(HavePrefix("cus_"))
	g.Expect(condOf(cus, billingv1alpha1.ConditionSynced).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(condOf(cus, billingv1alpha1.ConditionReconciling)).To(BeNil(), "kstatus: Reconciling is removed when done")
	sc := h.stripeCustomer(cus.Status.CustomerID)
	g.Expect(sc.Email).To(Equal("acme@example.com"))
	g.Expect(h.defaultPMToken(sc.ID)).To(Equal("pm_card_visa"))
	g.Expect(cus.Status.DefaultPaymentMethod).To(Equal(&billingv1alpha1.PaymentMethodStatus{ID: sc.DefaultPaymentMethod, Source: "pm_card_visa"}))
	g.Expect(sc.Metadata).To(HaveKeyWithValue(billingv1alpha1.StripeMetadataUID, string(cus.UID)))
	g.Expect(sc.Metadata).To(HaveKeyWithValue("team", "a"))

	// Identical passes do not change status (no flapping) and write nothing
	// to Stripe. Two more reads of the customer are the sign that at least
	// one whole resync pass ran before anything is compared.
	rv := h.get(cus).GetResourceVersion()
	writes := h.fake.Stats().Writes
	h.waitStripeReads("GET /v1/customers", h.stripeReads("GET /v1/customers"), 2)
	g.Expect(h.get(cus).GetResourceVersion()).To(Equal(rv), "an identical pass changed status")
	g.Expect(h.fake.Stats().Writes).To(Equal(writes), "an identical pass wrote to Stripe")

	// Update in place.
	h.update(cus, func() { cus.Spec.Email = "new@example.com"; cus.Spec.Metadata = billingv1alpha1.Metadata{"team": "b"} })
	g.Eventually(func() string { return h.stripeCustomer(cus.Status.CustomerID).Email }, 20*time.Second).Should(Equal("new@example.com"))
	g.Eventually(func() map[string]string { return h.stripeCustomer(cus.Status.CustomerID).Metadata }, 20*time.Second).Should(HaveKeyWithValue("team", "b"))
	h.waitReady(cus)

	// A Dashboard edit is reverted in Manage mode, with an Event.
	g.Expect(h.fake.DashboardUpdateCustomer(cus.Status.CustomerID, map[string]string{"name": "Someone Else"})).To(Succeed())
	g.Eventually(func() string { return h.stripeCustomer(cus.Status.CustomerID).Name }, 20*time.Second).Should(Equal("Customer acme"))
	h.waitEvent("DriftCorrected")
	g.Expect(h.fake.Stats().Creates["customer"]).To(Equal(1))

	// Delete (policy Delete): the Stripe customer is deleted.
	id := cus.Status.CustomerID
	h.delete(cus)
	h.waitGone(cus)
	g.Expect(h.stripeCustomer(id).Deleted).To(BeTrue())
}

func condOf(obj conditioned, t string) *metav1.Condition {
	for _, c := range obj.GetConditions() {
		if c.Type == t {
			c := c
			return &c
		}
	}
	return nil
}

func TestCustomerStripeFailuresConvergeToOneObject(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{})
	h.fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/customers", Status: 500, Count: 2})
	h.fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/customers", Status: 429, RetryAfter: time.Second, Count: 2})
	cus := newCustomer("flaky", nil)
	h.create(cus)
	h.waitReady(cus)
	g.Expect(h.fake.Stats().Creates["customer"]).To(Equal(1))
	// While failing, the conditions named the problem without request IDs.
	g.Expect(h.events()).NotTo(ContainElement(ContainSubstring("req_")))
}

func TestCustomerCrashBetweenCreateAndStatusWrite(t *testing.T) {
	g := NewWithT(t)
	var crash *crashingClient
	h := startHarness(t, harnessOptions{wrapClient: func(c client.Client) client.Client {
		crash = &crashingClient{Client: c, failures: 2, match: func(o client.Object) bool {
			cus, ok := o.(*billingv1alpha1.StripeCustomer)
			return ok && cus.Status.CustomerID != ""
		}}
		return crash
	}})
	cus := newCustomer("crashy", nil)
	h.create(cus)
	h.waitReady(cus)
	g.Expect(crash.didCrash()).To(BeTrue(), "the status write after the create failed once")
	g.Expect(h.fake.Stats().Creates["customer"]).To(Equal(1), "exactly one Stripe customer")
	g.Expect(cus.Annotations).NotTo(HaveKey(billingv1alpha1.AnnotationCreatePending))
}

func TestCustomerAdoptionAndObserveMode(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{})
	ctx := context.Background()
	other := stripe.Owner{UID: "not-ours"} // no identity: made outside the operator
	h.allowAdoption()
	email := "existing@example.com"
	existing, err := h.stripe.CreateCustomer(ctx, other, "", stripe.CustomerParams{Email: &email})
	g.Expect(err).NotTo(HaveOccurred())

	// Manage: adopt and write the operator's metadata.
	adopt := newCustomer("adopted", func(s *billingv1alpha1.StripeCustomerSpec) {
		s.CustomerID, s.Email, s.DefaultPaymentMethod = existing.ID, email, ""
	})
	h.create(adopt)
	h.waitReady(adopt)
	g.Expect(adopt.Status.CustomerID).To(Equal(existing.ID))
	g.Expect(h.stripeCustomer(existing.ID).Metadata).To(HaveKeyWithValue(billingv1alpha1.StripeMetadataUID, string(adopt.UID)))

	// Observe: never writes; a Dashboard edit is reported, not reverted.
	// (The same owner and parameters would be the same intent: Stripe would
	// replay the first customer. Another email makes another customer.)
	email = "observed@example.com"
	observed, err := h.stripe.CreateCustomer(ctx, other, "", stripe.CustomerParams{Email: &email})
	g.Expect(err).NotTo(HaveOccurred())
	writes := h.fake.Stats().Writes
	obs := newCustomer("observed", func(s *billingv1alpha1.StripeCustomerSpec) {
		s.CustomerID, s.Email, s.Name, s.DefaultPaymentMethod, s.Metadata = observed.ID, email, "", "", nil
		s.ManagementPolicy = billingv1alpha1.ManagementPolicyObserve
	})
	h.create(obs)
	h.waitReady(obs)
	g.Expect(h.fake.DashboardUpdateCustomer(observed.ID, map[string]string{"email": "changed@example.com"})).To(Succeed())
	h.waitCondition(obs, billingv1alpha1.ConditionReady, "False", billingv1alpha1.ReasonDrifted)
	g.Expect(condOf(obs, billingv1alpha1.ConditionReady).Message).To(ContainSubstring("email"))
	g.Expect(h.stripeCustomer(observed.ID).Email).To(Equal("changed@example.com"))
	h.delete(obs)
	h.waitGone(obs)
	g.Expect(h.fake.Stats().Writes).To(Equal(writes), "Observe mode wrote nothing to Stripe")
	g.Expect(h.stripeCustomer(observed.ID).Deleted).To(BeFalse())
}

func TestCustomerDeletionPolicies(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{})

	// Orphan leaves the Stripe customer.
	orphan := newCustomer("orphan", func(s *billingv1alpha1.StripeCustomerSpec) {
		s.DeletionPolicy = billingv1alpha1.CustomerDeletionPolicyOrphan
	})
	h.create(orphan)
	h.waitReady(orphan)
	id := orphan.Status.CustomerID
	h.delete(orphan)
	h.waitGone(orphan)
	g.Expect(h.stripeCustomer(id).Deleted).To(BeFalse())

	// Delete succeeds when the Stripe customer is already gone.
	deletePolicy := func(s *billingv1alpha1.StripeCustomerSpec) {
		s.DeletionPolicy = billingv1alpha1.CustomerDeletionPolicyDelete
	}
	gone := newCustomer("gone", deletePolicy)
	h.create(gone)
	h.waitReady(gone)
	g.Expect(h.stripe.DeleteCustomer(context.Background(), stripe.Owner{UID: "test"}, gone.Status.CustomerID)).To(Succeed())
	h.delete(gone)
	h.waitGone(gone)

	// A customer referenced by a subscription waits for it.
	used := newCustomer("used", deletePolicy)
	h.create(used)
	h.waitReady(used)
	sub := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Name: "user"},
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerRef: &billingv1alpha1.LocalObjectReference{Name: "used"},
			Items: []billingv1alpha1.SubscriptionItem{{PlanRef: &billingv1alpha1.LocalObjectReference{Name: "no-such-plan"}, Quantity: 1}}}}
	h.create(sub)
	h.delete(used)
	h.waitCondition(used, billingv1alpha1.ConditionReconciling, "True", billingv1alpha1.ReasonInUse)
	g.Expect(condOf(used, billingv1alpha1.ConditionReconciling).Message).To(ContainSubstring("user"))
	g.Expect(h.stripeCustomer(used.Status.CustomerID).Deleted).To(BeFalse())
	h.delete(sub)
	h.waitGone(sub)
	h.waitGone(used)
	g.Expect(h.stripeCustomer(used.Status.CustomerID).Deleted).To(BeTrue())
}
