package controllers

// Direct Reconcile calls against envtest and the stateful test-mode Stripe
// over HTTP (through the real internal/stripe client): step-by-step checks of
// the subscription reconciler's phases, its conditions and its Stripe call
// pattern, one pass at a time. The same behaviour driven by a running manager
// with signed webhooks is in stripesubscription_test.go.

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// directStripe is a test-mode Stripe with one customer (paying with
// pm_card_visa) and three monthly prices: basic (10.00 USD), pro (50.00 USD)
// and eur (9.00 EUR). api is an unthrottled client used for the setup.
type directStripe struct {
	t          testing.TB
	fake       *stripefake.Server
	api        stripe.API
	customerID string
	price      map[string]string
	// setupWrites is the number of writes the setup made.
	setupWrites int
}

// newDirectStripe starts the fake with the given rate limit (negative:
// none) and sets it up.
func newDirectStripe(t testing.TB, rateLimit float64) *directStripe {
	t.Helper()
	fake := stripefake.NewTestServer(t, stripefake.Options{RateLimit: rateLimit})
	api, err := stripe.New(stripe.Config{APIKey: "sk_test_direct", BaseURL: fake.URL(), RateLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	d := &directStripe{t: t, fake: fake, api: api, price: map[string]string{}}
	ctx := context.Background()
	owner := stripe.Owner{UID: "direct-setup"} // no identity: objects made outside the operator
	var pm string
	cus, err := api.CreateCustomer(ctx, owner, "", stripe.CustomerParams{})
	if err == nil {
		pm, err = api.AttachPaymentMethod(ctx, owner, "pm_card_visa", cus.ID)
	}
	if err == nil {
		_, err = api.UpdateCustomer(ctx, owner, cus.ID, stripe.CustomerParams{DefaultPaymentMethod: &pm})
	}
	if err != nil {
		t.Fatalf("setting up the customer: %v", err)
	}
	d.customerID = cus.ID
	for _, p := range []struct {
		key, currency string
		amount        int64
	}{{"basic", "usd", 1000}, {"pro", "usd", 5000}, {"eur", "eur", 900}} {
		name := p.key
		prod, err := api.CreateProduct(ctx, owner, "", stripe.ProductParams{Name: &name})
		if err != nil {
			t.Fatalf("setting up product %s: %v", p.key, err)
		}
		price, err := api.CreatePrice(ctx, owner, stripe.PriceCreateParams{ProductID: prod.ID, Currency: p.currency, UnitAmount: p.amount, Interval: "month", IntervalCount: 1})
		if err != nil {
			t.Fatalf("setting up price %s: %v", p.key, err)
		}
		d.price[p.key] = price.ID
	}
	d.setupWrites = fake.Stats().Writes
	return d
}

func (d *directStripe) requests(route string) int { return d.fake.Stats().Requests[route] }

// creates, updates and cancels count the subscription calls that reached
// Stripe.
func (d *directStripe) creates() int { return d.fake.Stats().Creates["subscription"] }
func (d *directStripe) updates() int { return d.requests("POST /v1/subscriptions/{id}") }
func (d *directStripe) cancels() int { return d.requests("DELETE /v1/subscriptions/{id}") }

// writes counts the POSTs and DELETEs that reached Stripe after the setup.
func (d *directStripe) writes() int { return d.fake.Stats().Writes - d.setupWrites }

func (d *directStripe) total() int { return d.fake.Stats().TotalRequests() }

func (d *directStripe) get(id string) stripefake.SubscriptionSnapshot {
	d.t.Helper()
	snap, ok := d.fake.Subscription(id)
	if !ok {
		d.t.Fatalf("no subscription %s in Stripe", id)
	}
	return snap
}

// statusFailClient fails status writes while failNext is set (a crash after
// the Stripe create and before the ID is recorded: no status write of that
// pass lands).
type statusFailClient struct {
	client.Client
	mu       sync.Mutex
	failNext bool
	// pass lets that many status writes through before failNext applies
	// (the charge-attempt record written before a create).
	pass int
}

func (c *statusFailClient) Status() client.SubResourceWriter {
	return &statusFailWriter{SubResourceWriter: c.Client.Status(), c: c}
}

type statusFailWriter struct {
	client.SubResourceWriter
	c *statusFailClient
}

func (w *statusFailWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	w.c.mu.Lock()
	fail := w.c.failNext
	if fail && w.c.pass > 0 {
		w.c.pass--
		fail = false
	}
	w.c.mu.Unlock()
	if fail {
		return apierrors.NewServiceUnavailable("injected crash before the status write")
	}
	return w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

type directEnv struct {
	t   *testing.T
	ns  string
	m   *directStripe
	c   *statusFailClient
	r   *StripeSubscriptionReconciler
	ctx context.Context
}

func newDirectEnv(t *testing.T) *directEnv {
	requireEnv(t)
	c := &statusFailClient{Client: testClient()}
	m := newDirectStripe(t, -1)
	return &directEnv{t: t, ns: newNamespace(t), m: m, c: c, ctx: context.Background(),
		r: &StripeSubscriptionReconciler{Client: c, Stripe: m.api, ResyncPeriod: time.Hour, Now: m.fake.Now}}
}

func (e *directEnv) newSub(name string, mutate func(*billingv1alpha1.StripeSubscription)) *billingv1alpha1.StripeSubscription {
	e.t.Helper()
	obj := &billingv1alpha1.StripeSubscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Spec: billingv1alpha1.StripeSubscriptionSpec{
			CustomerID: e.m.customerID,
			Items:      []billingv1alpha1.SubscriptionItem{{PriceID: e.m.price["basic"], Quantity: 2}},
		},
	}
	if mutate != nil {
		mutate(obj)
	}
	if err := testClient().Create(e.ctx, obj); err != nil {
		e.t.Fatalf("creating StripeSubscription: %v", err)
	}
	return obj
}

func (e *directEnv) reconcile(name string) (ctrl.Result, error) {
	return e.r.Reconcile(e.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: e.ns, Name: name}})
}

func (e *directEnv) mustReconcile(name string) {
	e.t.Helper()
	if _, err := e.reconcile(name); err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
}

func (e *directEnv) fetch(name string) *billingv1alpha1.StripeSubscription {
	e.t.Helper()
	obj := &billingv1alpha1.StripeSubscription{}
	if err := testClient().Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: name}, obj); err != nil {
		e.t.Fatalf("get: %v", err)
	}
	return obj
}

func (e *directEnv) updateSpec(name string, f func(*billingv1alpha1.StripeSubscriptionSpec)) {
	e.t.Helper()
	obj := e.fetch(name)
	f(&obj.Spec)
	if err := testClient().Update(e.ctx, obj); err != nil {
		e.t.Fatalf("update: %v", err)
	}
}

func (e *directEnv) annotate(name, key, value string) {
	e.t.Helper()
	obj := e.fetch(name)
	base := obj.DeepCopy()
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[key] = value
	obj.SetAnnotations(ann)
	if err := testClient().Patch(e.ctx, obj, client.MergeFrom(base)); err != nil {
		e.t.Fatalf("annotate: %v", err)
	}
}

// markCustomerReady records, as the customer reconciler would, that cust
// exists in Stripe with its spec applied.
func markCustomerReady(g Gomega, cust *billingv1alpha1.StripeCustomer) {
	meta.SetStatusCondition(&cust.Status.Conditions, metav1.Condition{Type: billingv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: billingv1alpha1.ReasonAvailable, Message: "test", ObservedGeneration: cust.Generation})
	g.Expect(testClient().Status().Update(context.Background(), cust)).To(Succeed())
}

func cond(obj *billingv1alpha1.StripeSubscription, t string) *metav1.Condition {
	return findCondition(obj.Status.Conditions, t)
}

func TestSubscriptionDirectLifecycle(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("s1", nil)

	// Create.
	e.mustReconcile("s1")
	obj := e.fetch("s1")
	g.Expect(e.m.creates()).To(Equal(1))
	g.Expect(obj.Status.SubscriptionID).NotTo(BeEmpty())
	g.Expect(obj.Finalizers).To(ContainElement(billingv1alpha1.Finalizer))
	g.Expect(obj.Annotations).NotTo(HaveKey(billingv1alpha1.AnnotationCreatePending))
	g.Expect(obj.Status.StripeStatus).To(Equal("active"))
	g.Expect(obj.Status.ExpectedAmount).To(Equal(&billingv1alpha1.Amount{Amount: 2000, Currency: "usd"}))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Reason).To(Equal(billingv1alpha1.ReasonInSync))
	g.Expect(cond(obj, billingv1alpha1.ConditionPaymentFailed).Status).To(Equal(metav1.ConditionFalse))
	g.Expect(obj.Status.ObservedGeneration).To(Equal(obj.Generation))
	subID := obj.Status.SubscriptionID
	md := e.m.get(subID).Metadata
	g.Expect(md).To(HaveKeyWithValue(billingv1alpha1.StripeMetadataUID, string(obj.UID)))
	g.Expect(md).To(HaveKeyWithValue(billingv1alpha1.StripeMetadataName, "s1"))

	// An unchanged resync: one Stripe call, no write, identical status.
	before := e.m.total()
	rv := obj.ResourceVersion
	e.mustReconcile("s1")
	g.Expect(e.m.total() - before).To(Equal(1))
	g.Expect(e.fetch("s1").ResourceVersion).To(Equal(rv), "identical passes write nothing")

	// Upgrade: the item keeps its ID.
	itemID := e.m.get(subID).Items[0].ID
	e.updateSpec("s1", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.Items[0].PriceID = e.m.price["pro"]
		s.Items[0].Quantity = 3
	})
	e.mustReconcile("s1")
	g.Expect(e.m.updates()).To(Equal(1))
	g.Expect(e.m.get(subID).Items).To(HaveLen(1))
	g.Expect(e.m.get(subID).Items[0]).To(And(
		HaveField("ID", itemID), HaveField("Price", e.m.price["pro"]), HaveField("Quantity", int64(3))))
	obj = e.fetch("s1")
	g.Expect(obj.Status.ExpectedAmount.Amount).To(Equal(int64(15000)))
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Reason).To(Equal(billingv1alpha1.ReasonInSync), "a spec change is not drift")

	// Dashboard edit: corrected, and the condition records it.
	g.Expect(e.m.fake.DashboardSetItemQuantity(subID, itemID, 7)).To(Succeed())
	g.Expect(e.m.fake.DashboardSetCancelAtPeriodEnd(subID, true)).To(Succeed())
	e.mustReconcile("s1")
	g.Expect(e.m.updates()).To(Equal(2))
	g.Expect(e.m.get(subID).Items[0].Quantity).To(Equal(int64(3)))
	g.Expect(e.m.get(subID).CancelAtPeriodEnd).To(BeFalse())
	obj = e.fetch("s1")
	drift := cond(obj, billingv1alpha1.ConditionBillingDrift)
	g.Expect(drift.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(drift.Reason).To(Equal(billingv1alpha1.ReasonDriftCorrected))
	g.Expect(drift.Message).To(And(ContainSubstring("quantity 7 in Stripe, 3 declared"), ContainSubstring("cancel_at_period_end")))
	// The record of the correction stays on identical passes.
	rv = obj.ResourceVersion
	e.mustReconcile("s1")
	g.Expect(e.fetch("s1").ResourceVersion).To(Equal(rv))

	// Cancel at period end, then resume; pause then unpause.
	e.updateSpec("s1", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.CancelAtPeriodEnd = true
		s.PauseCollection = &billingv1alpha1.PauseCollection{Behavior: "keep_as_draft"}
	})
	e.mustReconcile("s1")
	g.Expect(e.m.get(subID)).To(And(HaveField("CancelAtPeriodEnd", true), HaveField("PauseCollection", "keep_as_draft")))
	obj = e.fetch("s1")
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Message).To(ContainSubstring("paused"))
	g.Expect(obj.Status.CancelAtPeriodEnd).To(BeTrue())
	e.updateSpec("s1", func(s *billingv1alpha1.StripeSubscriptionSpec) { s.CancelAtPeriodEnd = false; s.PauseCollection = nil })
	e.mustReconcile("s1")
	g.Expect(e.m.get(subID)).To(And(HaveField("CancelAtPeriodEnd", false), HaveField("PauseCollection", "")))

	// Delete with the default policy CancelAtPeriodEnd: the paid period
	// runs out, nothing is canceled now.
	g.Expect(testClient().Delete(e.ctx, e.fetch("s1"))).To(Succeed())
	e.mustReconcile("s1")
	g.Expect(e.m.get(subID)).To(And(HaveField("Status", "active"), HaveField("CancelAtPeriodEnd", true)))
	err := testClient().Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: "s1"}, &billingv1alpha1.StripeSubscription{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
}

func TestSubscriptionDirectCrashBetweenCreateAndStatus(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("crash", nil)
	e.mustReconcile("crash") // finalizer, create, ... (first pass completes)
	g.Expect(e.m.creates()).To(Equal(1))

	// A second resource whose first create "crashes" before the status write
	// (after the write that records the charge attempt, which precedes the
	// create).
	e.newSub("crash2", nil)
	e.c.mu.Lock()
	e.c.failNext, e.c.pass = true, 1
	e.c.mu.Unlock()
	_, err := e.reconcile("crash2")
	g.Expect(err).To(HaveOccurred())
	e.c.mu.Lock()
	e.c.failNext = false
	e.c.mu.Unlock()
	g.Expect(e.m.creates()).To(Equal(2))
	obj := e.fetch("crash2")
	g.Expect(obj.Status.SubscriptionID).To(BeEmpty())
	g.Expect(obj.Annotations).To(HaveKey(billingv1alpha1.AnnotationCreatePending))

	e.mustReconcile("crash2")
	g.Expect(e.m.creates()).To(Equal(2), "the next pass finds the subscription instead of creating another")
	obj = e.fetch("crash2")
	g.Expect(obj.Status.SubscriptionID).NotTo(BeEmpty())
	g.Expect(obj.Annotations).NotTo(HaveKey(billingv1alpha1.AnnotationCreatePending))
	g.Expect(e.m.get(obj.Status.SubscriptionID).Metadata[billingv1alpha1.StripeMetadataName]).To(Equal("crash2"))
}

func TestSubscriptionDirectStripeErrors(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("err", nil)
	e.m.fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/subscriptions", Status: 429, RetryAfter: time.Second, Count: 1})
	res, err := e.reconcile("err")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(BeNumerically(">=", time.Second))
	obj := e.fetch("err")
	g.Expect(cond(obj, billingv1alpha1.ConditionSynced).Reason).To(Equal(billingv1alpha1.ReasonRateLimited))
	g.Expect(cond(obj, billingv1alpha1.ConditionReconciling).Status).To(Equal(metav1.ConditionTrue))

	e.m.fake.InjectFault(stripefake.Fault{Method: "POST", Path: "/v1/subscriptions", Status: 500, Count: 1})
	_, err = e.reconcile("err")
	g.Expect(err).To(HaveOccurred())
	e.mustReconcile("err")
	g.Expect(e.m.creates()).To(Equal(1), "the rejected attempts created nothing")
	g.Expect(e.m.fake.SubscriptionIDs()).To(HaveLen(1))
	obj = e.fetch("err")
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond(obj, billingv1alpha1.ConditionReconciling)).To(BeNil())

	// Mixed currencies are an invalid spec.
	e.updateSpec("err", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.Items = append(s.Items, billingv1alpha1.SubscriptionItem{PriceID: e.m.price["eur"], Quantity: 1})
	})
	e.mustReconcile("err")
	obj = e.fetch("err")
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled).Reason).To(Equal(billingv1alpha1.ReasonInvalidSpec))
	g.Expect(e.m.updates()).To(Equal(0))
}

func TestSubscriptionDirectObserveMode(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	allowAdoption(t, e.ns)
	existing, err := e.m.api.CreateSubscription(e.ctx, stripe.Owner{UID: "legacy-uid"}, "", stripe.SubscriptionCreateParams{
		CustomerID: e.m.customerID, Items: []stripe.SubscriptionItemParams{{PriceID: e.m.price["basic"], Quantity: 2}},
		Metadata: map[string]string{"team": "a"},
	})
	g.Expect(err).NotTo(HaveOccurred())
	writes := e.m.writes()
	e.newSub("obs", func(s *billingv1alpha1.StripeSubscription) {
		s.Spec.ManagementPolicy = billingv1alpha1.ManagementPolicyObserve
		s.Spec.SubscriptionID = existing.ID
		s.Spec.Metadata = billingv1alpha1.Metadata{"team": "a"}
	})
	e.mustReconcile("obs")
	obj := e.fetch("obs")
	g.Expect(obj.Status.SubscriptionID).To(Equal(existing.ID))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond(obj, billingv1alpha1.ConditionSynced).Reason).To(Equal(billingv1alpha1.ReasonObserved))
	g.Expect(obj.Finalizers).To(BeEmpty())

	g.Expect(e.m.fake.DashboardSetItemQuantity(existing.ID, existing.Items[0].ID, 5)).To(Succeed())
	e.mustReconcile("obs")
	obj = e.fetch("obs")
	drift := cond(obj, billingv1alpha1.ConditionBillingDrift)
	g.Expect(drift.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(drift.Reason).To(Equal(billingv1alpha1.ReasonDrifted))
	g.Expect(drift.Message).To(ContainSubstring("quantity 5 in Stripe, 2 declared"))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Reason).To(Equal(billingv1alpha1.ReasonDrifted))
	g.Expect(e.m.writes()).To(Equal(writes), "Observe mode never writes to Stripe")

	// Deletion in Observe mode leaves Stripe alone.
	g.Expect(testClient().Delete(e.ctx, obj)).To(Succeed())
	e.mustReconcile("obs")
	g.Expect(e.m.writes()).To(Equal(writes))
	g.Expect(e.m.get(existing.ID).Status).To(Equal("active"))
}

func TestSubscriptionDirectEndedAndRecreate(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("end", nil)
	e.mustReconcile("end")
	oldID := e.fetch("end").Status.SubscriptionID

	// Canceled outside the operator: reported, not recreated.
	g.Expect(e.m.fake.DashboardCancelSubscription(oldID)).To(Succeed())
	e.mustReconcile("end")
	e.mustReconcile("end")
	g.Expect(e.m.creates()).To(Equal(1))
	obj := e.fetch("end")
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled)).To(And(
		HaveField("Status", metav1.ConditionTrue), HaveField("Reason", billingv1alpha1.ReasonCanceledOutsideOperator)))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Reason).To(Equal(billingv1alpha1.ReasonCanceledOutsideOperator))
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Message).To(ContainSubstring("canceled outside the operator"))
	g.Expect(obj.Status.Cancellation).To(HaveField("Reason", "cancellation_requested"))
	g.Expect(obj.Status.StripeStatus).To(Equal("canceled"))

	// The recreate annotation on a live subscription is ignored; on an ended
	// one it creates a replacement.
	e.annotate("end", billingv1alpha1.AnnotationRecreate, "true")
	e.mustReconcile("end")
	obj = e.fetch("end")
	g.Expect(e.m.creates()).To(Equal(2))
	g.Expect(obj.Status.SubscriptionID).NotTo(Equal(oldID))
	g.Expect(obj.Annotations).NotTo(HaveKey(billingv1alpha1.AnnotationRecreate))
	g.Expect(e.m.get(obj.Status.SubscriptionID).Metadata).To(HaveKeyWithValue(metadataReplaces, oldID))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled)).To(BeNil())
	// The replaces key is kept on later passes.
	e.mustReconcile("end")
	g.Expect(e.m.updates()).To(Equal(0))

	e.annotate("end", billingv1alpha1.AnnotationRecreate, "true")
	e.mustReconcile("end")
	g.Expect(e.m.creates()).To(Equal(2))
	g.Expect(e.fetch("end").Annotations).NotTo(HaveKey(billingv1alpha1.AnnotationRecreate))

	// Deleting a resource whose subscription is already canceled succeeds.
	newID := e.fetch("end").Status.SubscriptionID
	g.Expect(e.m.fake.DashboardCancelSubscription(newID)).To(Succeed())
	g.Expect(testClient().Delete(e.ctx, e.fetch("end"))).To(Succeed())
	e.mustReconcile("end")
	g.Expect(e.m.cancels()).To(Equal(0))
	err := testClient().Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: "end"}, &billingv1alpha1.StripeSubscription{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
}

func TestSubscriptionDirectDeletionPolicies(t *testing.T) {
	for _, policy := range []billingv1alpha1.SubscriptionDeletionPolicy{
		billingv1alpha1.SubscriptionDeletionPolicyCancel,
		billingv1alpha1.SubscriptionDeletionPolicyCancelAtPeriodEnd,
		billingv1alpha1.SubscriptionDeletionPolicyOrphan,
	} {
		t.Run(string(policy), func(t *testing.T) {
			g := NewWithT(t)
			e := newDirectEnv(t)
			e.newSub("del", func(s *billingv1alpha1.StripeSubscription) { s.Spec.DeletionPolicy = policy })
			e.mustReconcile("del")
			id := e.fetch("del").Status.SubscriptionID
			g.Expect(testClient().Delete(e.ctx, e.fetch("del"))).To(Succeed())
			e.mustReconcile("del")
			err := testClient().Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: "del"}, &billingv1alpha1.StripeSubscription{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
			sub := e.m.get(id)
			switch policy {
			case billingv1alpha1.SubscriptionDeletionPolicyCancel:
				g.Expect(sub.Status).To(Equal("canceled"))
			case billingv1alpha1.SubscriptionDeletionPolicyCancelAtPeriodEnd:
				g.Expect(sub.Status).To(Equal("active"))
				g.Expect(sub.CancelAtPeriodEnd).To(BeTrue())
			default:
				g.Expect(sub.Status).To(Equal("active"))
				g.Expect(sub.CancelAtPeriodEnd).To(BeFalse())
			}
		})
	}
}

func TestSubscriptionDirectReferences(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("ref", func(s *billingv1alpha1.StripeSubscription) {
		s.Spec.CustomerID = ""
		s.Spec.CustomerRef = &billingv1alpha1.LocalObjectReference{Name: "acme"}
		s.Spec.Items = []billingv1alpha1.SubscriptionItem{{PlanRef: &billingv1alpha1.LocalObjectReference{Name: "basic"}, Quantity: 1}}
	})
	e.mustReconcile("ref")
	obj := e.fetch("ref")
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled).Reason).To(Equal(billingv1alpha1.ReasonReferenceNotFound))

	cust := &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "acme"}, Spec: billingv1alpha1.StripeCustomerSpec{Email: "a@example.com"}}
	g.Expect(testClient().Create(e.ctx, cust)).To(Succeed())
	res, err := e.reconcile("ref")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(Equal(waitRecheck))
	obj = e.fetch("ref")
	g.Expect(cond(obj, billingv1alpha1.ConditionReconciling).Reason).To(Equal(billingv1alpha1.ReasonWaitingForCustomer))
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled)).To(BeNil())

	cust.Status.CustomerID = e.m.customerID
	g.Expect(testClient().Status().Update(e.ctx, cust)).To(Succeed())
	plan := &billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "basic"}, Spec: billingv1alpha1.StripePlanSpec{
		Product: billingv1alpha1.ProductSpec{Name: "Basic"}, Price: billingv1alpha1.PriceSpec{Currency: "usd", UnitAmount: 1000, Interval: "month"},
		PriceChangePolicy: billingv1alpha1.PriceChangePolicyImmediately}}
	g.Expect(testClient().Create(e.ctx, plan)).To(Succeed())
	e.mustReconcile("ref")
	g.Expect(cond(e.fetch("ref"), billingv1alpha1.ConditionReconciling).Reason).To(Equal(billingv1alpha1.ReasonWaitingForPlan))

	plan.Status.PriceID = e.m.price["basic"]
	g.Expect(testClient().Status().Update(e.ctx, plan)).To(Succeed())
	// A customer ID alone is not enough to create: the customer's payment
	// method may not be in place until it is Ready.
	e.mustReconcile("ref")
	g.Expect(cond(e.fetch("ref"), billingv1alpha1.ConditionReconciling)).To(And(
		HaveField("Reason", billingv1alpha1.ReasonWaitingForCustomer), HaveField("Message", ContainSubstring("to be Ready"))))
	g.Expect(e.m.creates()).To(Equal(0))
	markCustomerReady(g, cust)
	e.mustReconcile("ref")
	obj = e.fetch("ref")
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	subID := obj.Status.SubscriptionID
	itemID := e.m.get(subID).Items[0].ID

	// Plan price rollover under priceChangePolicy Immediately: the item
	// moves to the new price, keeping its ID; it is an update, not drift.
	plan.Status.PriceID = e.m.price["pro"]
	plan.Status.PreviousPriceIDs = []string{e.m.price["basic"]}
	g.Expect(testClient().Status().Update(e.ctx, plan)).To(Succeed())
	e.mustReconcile("ref")
	g.Expect(e.m.get(subID).Items[0]).To(And(HaveField("ID", itemID), HaveField("Price", e.m.price["pro"])))
	g.Expect(cond(e.fetch("ref"), billingv1alpha1.ConditionBillingDrift).Reason).To(Equal(billingv1alpha1.ReasonInSync))
}

// TestSubscriptionManagerWatches runs the reconciler in a manager and checks
// that the StripePlan and StripeCustomer watches (through the field indexes)
// reach the subscriptions that reference them.
func TestSubscriptionManagerWatches(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	m := newDirectStripe(t, -1)
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{Scheme: testClient().Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}})
	g.Expect(err).NotTo(HaveOccurred())
	r := &StripeSubscriptionReconciler{Client: mgr.GetClient(), Stripe: m.api, ResyncPeriod: time.Hour, SkipNameValidation: true}
	g.Expect(r.SetupWithManager(mgr)).To(Succeed())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	c := testClient()
	cust := &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}, Spec: billingv1alpha1.StripeCustomerSpec{Email: "a@example.com"}}
	g.Expect(c.Create(ctx, cust)).To(Succeed())
	plan := &billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "basic"}, Spec: billingv1alpha1.StripePlanSpec{
		Product: billingv1alpha1.ProductSpec{Name: "Basic"}, Price: billingv1alpha1.PriceSpec{Currency: "usd", UnitAmount: 1000, Interval: "month"},
		PriceChangePolicy: billingv1alpha1.PriceChangePolicyImmediately}}
	g.Expect(c.Create(ctx, plan)).To(Succeed())
	plan.Status.PriceID = m.price["basic"]
	g.Expect(c.Status().Update(ctx, plan)).To(Succeed())

	mk := func(name string, item billingv1alpha1.SubscriptionItem) {
		g.Expect(c.Create(ctx, &billingv1alpha1.StripeSubscription{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: billingv1alpha1.StripeSubscriptionSpec{
				CustomerRef: &billingv1alpha1.LocalObjectReference{Name: "acme"},
				Items:       []billingv1alpha1.SubscriptionItem{item},
			},
		})).To(Succeed())
	}
	mk("follows", billingv1alpha1.SubscriptionItem{PlanRef: &billingv1alpha1.LocalObjectReference{Name: "basic"}, Quantity: 1})
	mk("pinned", billingv1alpha1.SubscriptionItem{PriceID: m.price["basic"], Quantity: 1})
	get := func(name string) *billingv1alpha1.StripeSubscription {
		obj := &billingv1alpha1.StripeSubscription{}
		g.Expect(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj)).To(Succeed())
		return obj
	}
	g.Eventually(func() string {
		if cd := cond(get("follows"), billingv1alpha1.ConditionReady); cd != nil {
			return cd.Reason
		}
		return ""
	}, 20*time.Second, 100*time.Millisecond).Should(Equal(billingv1alpha1.ReasonWaitingForCustomer))

	// The customer getting its ID wakes both subscriptions (well before the
	// 30s wait recheck); they now wait for it to be Ready.
	cust.Status.CustomerID = m.customerID
	g.Expect(c.Status().Update(ctx, cust)).To(Succeed())
	for _, name := range []string{"follows", "pinned"} {
		g.Eventually(func() string {
			if cd := cond(get(name), billingv1alpha1.ConditionReconciling); cd != nil {
				return cd.Message
			}
			return ""
		}, 20*time.Second, 100*time.Millisecond).Should(ContainSubstring("to be Ready"), name)
	}
	// The customer becoming Ready wakes them again, and they are created.
	markCustomerReady(g, cust)
	for _, name := range []string{"follows", "pinned"} {
		g.Eventually(func() bool {
			return meta.IsStatusConditionTrue(get(name).Status.Conditions, billingv1alpha1.ConditionReady)
		}, 20*time.Second, 100*time.Millisecond).Should(BeTrue(), name)
	}
	follows, pinned := get("follows").Status.SubscriptionID, get("pinned").Status.SubscriptionID

	// A price rollover on the plan reaches the subscription that follows it;
	// the pinned one stays.
	plan.Status.PriceID = m.price["pro"]
	plan.Status.PreviousPriceIDs = []string{m.price["basic"]}
	g.Expect(c.Status().Update(ctx, plan)).To(Succeed())
	g.Eventually(func() string { return m.get(follows).Items[0].Price }, 20*time.Second, 100*time.Millisecond).Should(Equal(m.price["pro"]))
	g.Eventually(func() int64 {
		if a := get("follows").Status.ExpectedAmount; a != nil {
			return a.Amount
		}
		return 0
	}, 20*time.Second, 100*time.Millisecond).Should(Equal(int64(5000)))
	g.Expect(m.get(pinned).Items[0].Price).To(Equal(m.price["basic"]))
	g.Expect(m.creates()).To(Equal(2))
}

func TestSubscriptionDirectPaymentFailed(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("pay", nil)
	e.mustReconcile("pay")
	id := e.fetch("pay").Status.SubscriptionID

	// The card starts declining (changed in the Dashboard) and the renewal
	// a month later fails.
	_, err := e.m.fake.DashboardSetDefaultPaymentMethod(e.m.customerID, "pm_card_chargeCustomerFail")
	g.Expect(err).NotTo(HaveOccurred())
	e.m.fake.AdvanceClock(32 * 24 * time.Hour)
	g.Expect(e.m.get(id).Status).To(Equal("past_due"))
	e.mustReconcile("pay")
	obj := e.fetch("pay")
	pf := cond(obj, billingv1alpha1.ConditionPaymentFailed)
	g.Expect(pf.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(pf.Reason).To(Equal(billingv1alpha1.ReasonPaymentDeclined))
	g.Expect(pf.Message).To(And(ContainSubstring("1 attempt"), ContainSubstring("next attempt at")))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Reason).To(Equal(billingv1alpha1.ReasonPaymentDeclined))
	g.Expect(obj.Status.LatestInvoice).To(HaveField("PaymentError", "card_declined"))
	rv := obj.ResourceVersion
	e.mustReconcile("pay")
	g.Expect(e.fetch("pay").ResourceVersion).To(Equal(rv), "identical passes write nothing")

	// The card is fixed; Stripe's next automatic retry pays the invoice.
	_, err = e.m.fake.DashboardSetDefaultPaymentMethod(e.m.customerID, "pm_card_visa")
	g.Expect(err).NotTo(HaveOccurred())
	e.m.fake.AdvanceClock(4 * 24 * time.Hour)
	g.Expect(e.m.get(id).Status).To(Equal("active"))
	e.mustReconcile("pay")
	obj = e.fetch("pay")
	g.Expect(cond(obj, billingv1alpha1.ConditionPaymentFailed)).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", billingv1alpha1.ReasonPaid)))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
}

func TestSubscriptionDirectObserveWithoutSubscription(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("obs-none", func(s *billingv1alpha1.StripeSubscription) {
		s.Spec.ManagementPolicy = billingv1alpha1.ManagementPolicyObserve
	})
	e.mustReconcile("obs-none")
	obj := e.fetch("obs-none")
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled).Reason).To(Equal(billingv1alpha1.ReasonNotFound))
	g.Expect(e.m.writes()).To(Equal(0))
	g.Expect(obj.Annotations).NotTo(HaveKey(billingv1alpha1.AnnotationCreatePending))
}
