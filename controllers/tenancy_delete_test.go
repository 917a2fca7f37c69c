package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// The deletion matrix of the tenancy rule: nothing is written to a Stripe
// object a resource has not bound and does not own, on deletion included.
// For every kind and deletion policy:
//
//   - a claim refused as OwnedElsewhere makes no Stripe write, and deleting
//     it makes none;
//   - a spec ID that does not exist, then deleted: no write;
//   - a claim that was bound, then taken by another instance: no write on
//     delete (nor before it: the update that would take it back is
//     refused).
//
// Writes are counted by the test-mode Stripe (every POST and DELETE that
// reached a handler), not by the operator.

// deletionCase is one resource of the matrix.
type deletionCase struct {
	obj conditioned
	// stripeID is the Stripe object it names or bound.
	stripeID string
}

func customerPolicies() []billingv1alpha1.CustomerDeletionPolicy {
	return []billingv1alpha1.CustomerDeletionPolicy{billingv1alpha1.CustomerDeletionPolicyOrphan, billingv1alpha1.CustomerDeletionPolicyDelete}
}

func planPolicies() []billingv1alpha1.PlanDeletionPolicy {
	return []billingv1alpha1.PlanDeletionPolicy{billingv1alpha1.PlanDeletionPolicyArchive, billingv1alpha1.PlanDeletionPolicyOrphan}
}

func subscriptionPolicies() []billingv1alpha1.SubscriptionDeletionPolicy {
	return []billingv1alpha1.SubscriptionDeletionPolicy{billingv1alpha1.SubscriptionDeletionPolicyCancelAtPeriodEnd,
		billingv1alpha1.SubscriptionDeletionPolicyCancel, billingv1alpha1.SubscriptionDeletionPolicyOrphan}
}

// claims returns one resource per kind and deletion policy whose spec
// names the given Stripe objects (customer, product, subscription).
func claims(prefix, customerID, productID, subscriptionID, priceID string) []deletionCase {
	var out []deletionCase
	for _, p := range customerPolicies() {
		out = append(out, deletionCase{stripeID: customerID, obj: newCustomer(strings.ToLower(prefix+"-cus-"+string(p)), func(s *billingv1alpha1.StripeCustomerSpec) {
			s.CustomerID, s.DeletionPolicy, s.DefaultPaymentMethod = customerID, p, ""
		})})
	}
	for _, p := range planPolicies() {
		out = append(out, deletionCase{stripeID: productID, obj: newPlan(strings.ToLower(prefix+"-plan-"+string(p)), 2000, func(s *billingv1alpha1.StripePlanSpec) {
			s.ProductID, s.DeletionPolicy = productID, p
		})})
	}
	for _, p := range subscriptionPolicies() {
		out = append(out, deletionCase{stripeID: subscriptionID, obj: newSub(strings.ToLower(prefix+"-sub-"+string(p)), func(s *billingv1alpha1.StripeSubscriptionSpec) {
			s.SubscriptionID, s.CustomerRef, s.CustomerID, s.DeletionPolicy = subscriptionID, nil, customerID, p
		}, billingv1alpha1.SubscriptionItem{PriceID: priceID, Quantity: 1})})
	}
	return out
}

// TestDeletingARefusedClaimWritesNothing: namespace b claims namespace a's
// customer, product and subscription under every deletion policy, and
// names Stripe objects that do not exist. Each claim is refused with no
// Stripe write; deleting it makes no Stripe write either, leaves a's
// objects as they were, and records that the object was left alone.
func TestDeletingARefusedClaimWritesNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	a := startHarness(t, harnessOptions{instance: "shared"})
	cus := a.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	victim := newSub("acme-pro", nil, planItem("pro", 1))
	a.create(victim)
	a.waitReady(victim)
	var plan billingv1alpha1.StripePlan
	g.Expect(a.c.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: "pro"}, &plan)).To(Succeed())
	before := a.snapshot(victim)

	// b has a customer of its own (for the claims on objects that do not
	// exist: a subscription is resolved against a live customer first).
	b := startHarness(t, harnessOptions{instance: "shared", fake: a.fake})
	own := newCustomer("own", nil)
	b.create(own)
	b.waitReady(own)

	writes := a.fake.Stats().Writes
	refused := claims("taken", cus.Status.CustomerID, plan.Status.ProductID, victim.Status.SubscriptionID, plan.Status.PriceID)
	missing := claims("missing", "cus_doesnotexist", "prod_doesnotexist", "sub_doesnotexist", plan.Status.PriceID)
	for _, c := range missing {
		if s, ok := c.obj.(*billingv1alpha1.StripeSubscription); ok {
			s.Spec.CustomerID = own.Status.CustomerID
		}
	}
	for _, c := range append(refused, missing...) {
		b.create(c.obj)
	}
	// The positive sign that each claim's pass ran: its Stalled condition
	// for the current generation.
	for _, c := range refused {
		b.waitCondition(c.obj, billingv1alpha1.ConditionStalled, "True", ReasonOwnedElsewhere)
	}
	for _, c := range missing {
		b.waitCondition(c.obj, billingv1alpha1.ConditionStalled, "True", billingv1alpha1.ReasonNotFound)
	}
	g.Expect(a.fake.Stats().Writes).To(Equal(writes), "a refused claim makes no Stripe write")

	for _, c := range append(refused, missing...) {
		b.delete(c.obj)
	}
	for _, c := range append(refused, missing...) {
		b.waitGone(c.obj)
	}
	g.Expect(a.fake.Stats().Writes).To(Equal(writes), "deleting a refused claim makes no Stripe write")
	after := a.snapshot(victim)
	g.Expect(after.Status).To(Equal("active"))
	g.Expect(after.CancelAtPeriodEnd).To(Equal(before.CancelAtPeriodEnd), "a's subscription is not set to cancel")
	g.Expect(a.stripeCustomer(cus.Status.CustomerID).Deleted).To(BeFalse())
	g.Expect(a.stripeProduct(plan.Status.ProductID).Active).To(BeTrue())
	g.Expect(a.stripePrice(plan.Status.PriceID).Active).To(BeTrue())
	for _, c := range refused {
		b.waitEvent(fmt.Sprintf("%s named by", c.stripeID))
	}
	events := strings.Join(b.events(), "\n")
	g.Expect(events).To(ContainSubstring("refused: OwnedElsewhere"))
	g.Expect(events).To(ContainSubstring("refused: NotFound"))
	a.waitReady(victim)
}

// takeOver rewrites the identity of a Stripe object as another operator
// instance's, as if that instance had taken it.
func takeOver(md map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range md {
		out[k] = v
	}
	out[billingv1alpha1.StripeMetadataInstance] = "other-instance"
	return out
}

// TestDeletingAnObjectTakenByAnotherInstanceWritesNothing: resources bind
// their own Stripe objects under every deletion policy; then another
// operator instance takes those objects. The update that would take them
// back is refused (Stalled OwnedElsewhere), and deleting the resources
// writes nothing to Stripe.
func TestDeletingAnObjectTakenByAnotherInstanceWritesNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := startHarness(t, harnessOptions{instance: "shared"})
	// The payer and the plan the subscriptions bill (not taken over).
	h.billingSetup("pm_card_visa", map[string]int64{"base": 1000})
	var cases []deletionCase
	for _, p := range customerPolicies() {
		cases = append(cases, deletionCase{obj: newCustomer(strings.ToLower("cus-"+string(p)), func(s *billingv1alpha1.StripeCustomerSpec) { s.DeletionPolicy = p })})
	}
	for _, p := range planPolicies() {
		cases = append(cases, deletionCase{obj: newPlan(strings.ToLower("plan-"+string(p)), 3000, func(s *billingv1alpha1.StripePlanSpec) { s.DeletionPolicy = p })})
	}
	for _, p := range subscriptionPolicies() {
		cases = append(cases, deletionCase{obj: newSub(strings.ToLower("sub-"+string(p)), func(s *billingv1alpha1.StripeSubscriptionSpec) { s.DeletionPolicy = p }, planItem("base", 1))})
	}
	for _, c := range cases {
		h.create(c.obj)
	}
	for _, c := range cases {
		h.waitReady(c.obj)
	}

	// Another instance takes every one of them.
	for _, c := range cases {
		switch o := h.get(c.obj).(type) {
		case *billingv1alpha1.StripeCustomer:
			cur := h.stripeCustomer(o.Status.CustomerID)
			_, err := h.stripe.UpdateCustomer(ctx, stripe.Owner{}, cur.ID, stripe.CustomerParams{Metadata: takeOver(cur.Metadata)})
			g.Expect(err).NotTo(HaveOccurred())
		case *billingv1alpha1.StripePlan:
			prod := h.stripeProduct(o.Status.ProductID)
			_, err := h.stripe.UpdateProduct(ctx, stripe.Owner{}, prod.ID, stripe.ProductParams{Metadata: takeOver(prod.Metadata)})
			g.Expect(err).NotTo(HaveOccurred())
			price := h.stripePrice(o.Status.PriceID)
			_, err = h.stripe.UpdatePrice(ctx, stripe.Owner{}, price.ID, stripe.PriceUpdateParams{Metadata: takeOver(price.Metadata)})
			g.Expect(err).NotTo(HaveOccurred())
		case *billingv1alpha1.StripeSubscription:
			sub, err := h.stripe.GetSubscription(ctx, o.Status.SubscriptionID)
			g.Expect(err).NotTo(HaveOccurred())
			_, err = h.stripe.UpdateSubscription(ctx, stripe.Owner{}, sub.ID, stripe.SubscriptionUpdateParams{Metadata: takeOver(sub.Metadata)})
			g.Expect(err).NotTo(HaveOccurred())
		}
	}
	writes := h.fake.Stats().Writes
	// The next pass of each sees another owner: the metadata update that
	// would take the object back is refused.
	for _, c := range cases {
		h.update(c.obj, func() {
			ann := c.obj.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann["test/poke"] = "1" // a pass now, not at the resync
			c.obj.SetAnnotations(ann)
		})
	}
	for _, c := range cases {
		h.waitCondition(c.obj, billingv1alpha1.ConditionStalled, "True", ReasonOwnedElsewhere)
		g.Expect(condOf(c.obj, billingv1alpha1.ConditionStalled).Message).To(ContainSubstring("belongs to"))
	}
	g.Expect(h.fake.Stats().Writes).To(Equal(writes), "no write takes an object back")

	for _, c := range cases {
		h.delete(c.obj)
	}
	for _, c := range cases {
		h.waitGone(c.obj)
	}
	g.Expect(h.fake.Stats().Writes).To(Equal(writes), "deleting a resource whose object another instance took makes no Stripe write")
	h.waitEvent("alone on deletion")
}

// TestDeletingAnEndpointTakenByAnotherInstanceWritesNothing: a webhook
// endpoint bound to a resource and then taken by another instance is
// neither deleted nor disabled when the resource goes.
func TestDeletingAnEndpointTakenByAnotherInstanceWritesNothing(t *testing.T) {
	for _, policy := range []billingv1alpha1.WebhookEndpointDeletionPolicy{billingv1alpha1.WebhookEndpointDeletionPolicyDelete,
		billingv1alpha1.WebhookEndpointDeletionPolicyDisable, billingv1alpha1.WebhookEndpointDeletionPolicyOrphan} {
		t.Run(string(policy), func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			ns := newNamespace(t)
			fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1})
			sc, err := stripe.New(stripe.Config{APIKey: "sk_test_endpoints", BaseURL: fake.URL(), RateLimit: 1000})
			g.Expect(err).NotTo(HaveOccurred())
			c := testClient()
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stripe-webhook-secrets"}}
			g.Expect(c.Create(ctx, secret)).To(Succeed())
			startEndpointManager(t, ns, sc)
			ep := &billingv1alpha1.StripeWebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"},
				Spec: billingv1alpha1.StripeWebhookEndpointSpec{URL: "https://billing.example.com/webhooks/stripe", DeletionPolicy: policy,
					SecretRef: billingv1alpha1.SecretKeySelector{Name: "stripe-webhook-secrets"}}}
			g.Expect(c.Create(ctx, ep)).To(Succeed())
			g.Eventually(func() bool {
				g.Expect(c.Get(ctx, client.ObjectKeyFromObject(ep), ep)).To(Succeed())
				r := findCondition(ep.Status.Conditions, billingv1alpha1.ConditionReady)
				return r != nil && r.Status == metav1.ConditionTrue
			}, 30*time.Second, 100*time.Millisecond).Should(BeTrue())
			cur, err := sc.GetWebhookEndpoint(ctx, ep.Status.EndpointID)
			g.Expect(err).NotTo(HaveOccurred())
			_, err = sc.UpdateWebhookEndpoint(ctx, stripe.Owner{}, cur.ID, stripe.WebhookEndpointParams{URL: cur.URL, EnabledEvents: cur.EnabledEvents,
				Metadata: takeOver(cur.Metadata)})
			g.Expect(err).NotTo(HaveOccurred())

			writes := fake.Stats().Writes
			g.Expect(c.Delete(ctx, ep)).To(Succeed())
			g.Eventually(func() error { return c.Get(ctx, client.ObjectKeyFromObject(ep), ep) }, 30*time.Second).ShouldNot(Succeed())
			g.Expect(fake.Stats().Writes).To(Equal(writes), "no Stripe write")
			got, err := sc.GetWebhookEndpoint(ctx, cur.ID)
			g.Expect(err).NotTo(HaveOccurred(), "the endpoint is still there")
			g.Expect(got.Status).To(Equal("enabled"))
		})
	}
}

// TestLookupKeyOfAnotherTenantIsNotTaken: a plan in namespace b that
// declares the lookup key of namespace a's price does not move it
// (transfer_lookup_key writes to the price that holds it): b's plan is
// Stalled OwnedElsewhere naming the key, and a's price keeps it.
func TestLookupKeyOfAnotherTenantIsNotTaken(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	a := startHarness(t, harnessOptions{instance: "shared"})
	a.billingSetup("pm_card_visa", map[string]int64{"pro": 2000})
	var plan billingv1alpha1.StripePlan
	g.Expect(a.c.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: "pro"}, &plan)).To(Succeed())
	g.Expect(a.stripePrice(plan.Status.PriceID).LookupKey).To(Equal("pro-key"))

	b := startHarness(t, harnessOptions{instance: "shared", fake: a.fake})
	mine := newPlan("mine", 2500, func(s *billingv1alpha1.StripePlanSpec) { s.Price.LookupKey = "pro-key" })
	b.create(mine)
	b.waitCondition(mine, billingv1alpha1.ConditionStalled, "True", ReasonOwnedElsewhere)
	g.Expect(condOf(mine, billingv1alpha1.ConditionStalled).Message).To(ContainSubstring(`Lookup key "pro-key"`))
	g.Expect(a.stripePrice(plan.Status.PriceID).LookupKey).To(Equal("pro-key"), "a's price keeps its lookup key")
	a.waitReady(&plan)
}
