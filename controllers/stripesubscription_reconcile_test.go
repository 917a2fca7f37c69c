package controllers

// Direct Reconcile calls against envtest and a small in-memory Stripe
// (memStripe): fast, deterministic checks of the subscription reconciler's
// phases and its Stripe call pattern. The end-to-end behaviour against the
// stateful test-mode Stripe over HTTP, with webhooks, is in
// stripesubscription_controller_test.go.

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// memStripe is a minimal in-memory Stripe for subscriptions and prices.
type memStripe struct {
	stripe.API // other methods are not used by the subscription reconciler

	mu     sync.Mutex
	subs   map[string]*stripe.Subscription
	order  []string
	prices map[string]*stripe.Price
	calls  map[string]int
	seq    int
	// fail makes the next call of an operation fail.
	fail map[string]error
	// limiter, when set, paces calls like a rate-limited Stripe.
	limiter *rate.Limiter
}

func (m *memStripe) wait(ctx context.Context) {
	if m.limiter != nil {
		_ = m.limiter.Wait(ctx)
	}
}

func newMemStripe() *memStripe {
	return &memStripe{
		subs:  map[string]*stripe.Subscription{},
		calls: map[string]int{},
		fail:  map[string]error{},
		prices: map[string]*stripe.Price{
			"price_basic": {ID: "price_basic", UnitAmount: 1000, Currency: "usd", Active: true},
			"price_pro":   {ID: "price_pro", UnitAmount: 5000, Currency: "usd", Active: true},
			"price_eur":   {ID: "price_eur", UnitAmount: 900, Currency: "eur", Active: true},
		},
	}
}

func (m *memStripe) call(op string) error {
	m.calls[op]++
	if err, ok := m.fail[op]; ok {
		delete(m.fail, op)
		return err
	}
	return nil
}

func (m *memStripe) count(op string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[op]
}

func (m *memStripe) writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls["create"] + m.calls["update"] + m.calls["cancel"]
}

func (m *memStripe) total() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.calls {
		n += c
	}
	return n
}

func (m *memStripe) edit(id string, f func(*stripe.Subscription)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m.subs[id])
}

func (m *memStripe) get(id string) *stripe.Subscription {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneSub(m.subs[id])
}

func cloneSub(s *stripe.Subscription) *stripe.Subscription {
	if s == nil {
		return nil
	}
	c := *s
	c.Items = append([]stripe.SubscriptionItem(nil), s.Items...)
	c.Metadata = maps.Clone(s.Metadata)
	if s.LatestInvoice != nil {
		inv := *s.LatestInvoice
		c.LatestInvoice = &inv
	}
	return &c
}

func notFound(op string) error {
	return &stripe.Error{Class: stripe.ClassNotFound, HTTPStatus: 404, Code: "resource_missing", Message: "No such object", Op: op}
}

func (m *memStripe) GetSubscription(ctx context.Context, id string) (*stripe.Subscription, error) {
	m.wait(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.call("get"); err != nil {
		return nil, err
	}
	s, ok := m.subs[id]
	if !ok {
		return nil, notFound("get subscription")
	}
	return cloneSub(s), nil
}

func (m *memStripe) FindSubscriptionByOwner(ctx context.Context, owner stripe.Owner, customerID string) (*stripe.Subscription, error) {
	m.wait(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.call("find"); err != nil {
		return nil, err
	}
	for i := len(m.order) - 1; i >= 0; i-- { // newest first, as Stripe lists
		s := m.subs[m.order[i]]
		if s.CustomerID == customerID && s.Metadata[billingv1alpha1.StripeMetadataUID] == owner.UID {
			return cloneSub(s), nil
		}
	}
	return nil, nil
}

func (m *memStripe) priceItem(priceID string, qty int64) stripe.SubscriptionItem {
	m.seq++
	p := m.prices[priceID]
	return stripe.SubscriptionItem{ID: fmt.Sprintf("si_%d", m.seq), PriceID: priceID, Quantity: qty, UnitAmount: p.UnitAmount, Currency: p.Currency}
}

func (m *memStripe) CreateSubscription(ctx context.Context, _ stripe.Owner, p stripe.SubscriptionCreateParams) (*stripe.Subscription, error) {
	m.wait(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.call("create"); err != nil {
		return nil, err
	}
	m.seq++
	s := &stripe.Subscription{
		ID: fmt.Sprintf("sub_%d", m.seq), CustomerID: p.CustomerID, Status: "active", CancelAtPeriodEnd: p.CancelAtPeriodEnd,
		CollectionMethod: p.CollectionMethod, Metadata: maps.Clone(p.Metadata), CurrentPeriodStart: 1_800_000_000, CurrentPeriodEnd: 1_802_592_000,
	}
	if p.TrialPeriodDays != nil {
		s.Status = "trialing"
		s.TrialEnd = s.CurrentPeriodStart + *p.TrialPeriodDays*86400
	}
	for _, it := range p.Items {
		s.Items = append(s.Items, m.priceItem(it.PriceID, it.Quantity))
	}
	s.LatestInvoice = &stripe.Invoice{ID: "in_" + s.ID, Status: "paid", BillingReason: "subscription_create", Currency: "usd"}
	m.subs[s.ID] = s
	m.order = append(m.order, s.ID)
	return cloneSub(s), nil
}

func (m *memStripe) UpdateSubscription(ctx context.Context, _ stripe.Owner, id string, p stripe.SubscriptionUpdateParams) (*stripe.Subscription, error) {
	m.wait(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.call("update"); err != nil {
		return nil, err
	}
	s, ok := m.subs[id]
	if !ok {
		return nil, notFound("update subscription")
	}
	for _, u := range p.Items {
		switch {
		case u.ID == "":
			s.Items = append(s.Items, m.priceItem(u.PriceID, u.Quantity))
		case u.Deleted:
			for i := range s.Items {
				if s.Items[i].ID == u.ID {
					s.Items = append(s.Items[:i], s.Items[i+1:]...)
					break
				}
			}
		default:
			for i := range s.Items {
				if s.Items[i].ID == u.ID {
					pr := m.prices[u.PriceID]
					s.Items[i].PriceID, s.Items[i].Quantity, s.Items[i].UnitAmount, s.Items[i].Currency = u.PriceID, u.Quantity, pr.UnitAmount, pr.Currency
				}
			}
		}
	}
	if p.CancelAtPeriodEnd != nil {
		s.CancelAtPeriodEnd = *p.CancelAtPeriodEnd
	}
	if p.PauseCollection != nil {
		s.PauseCollection = *p.PauseCollection
	}
	if p.CollectionMethod != nil {
		s.CollectionMethod = *p.CollectionMethod
	}
	for k, v := range p.Metadata {
		if v == "" {
			delete(s.Metadata, k)
		} else {
			s.Metadata[k] = v
		}
	}
	return cloneSub(s), nil
}

func (m *memStripe) CancelSubscription(ctx context.Context, _ stripe.Owner, id string, _ stripe.SubscriptionCancelParams) (*stripe.Subscription, error) {
	m.wait(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.call("cancel"); err != nil {
		return nil, err
	}
	s, ok := m.subs[id]
	if !ok || s.Status == "canceled" {
		return nil, notFound("cancel subscription")
	}
	s.Status = "canceled"
	s.CanceledAt = 1_801_000_000
	return cloneSub(s), nil
}

func (m *memStripe) GetPrice(ctx context.Context, id string) (*stripe.Price, error) {
	m.wait(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.call("getPrice"); err != nil {
		return nil, err
	}
	p, ok := m.prices[id]
	if !ok {
		return nil, notFound("get price")
	}
	c := *p
	return &c, nil
}

// statusFailClient fails status writes while failNext is set (a crash after
// the Stripe create and before the ID is recorded: no status write of that
// pass lands).
type statusFailClient struct {
	client.Client
	mu       sync.Mutex
	failNext bool
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
	w.c.mu.Unlock()
	if fail {
		return apierrors.NewServiceUnavailable("injected crash before the status write")
	}
	return w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

type directEnv struct {
	t   *testing.T
	ns  string
	m   *memStripe
	c   *statusFailClient
	r   *StripeSubscriptionReconciler
	ctx context.Context
}

func newDirectEnv(t *testing.T) *directEnv {
	c := &statusFailClient{Client: testClient()}
	m := newMemStripe()
	return &directEnv{t: t, ns: newNamespace(t), m: m, c: c, ctx: context.Background(),
		r: &StripeSubscriptionReconciler{Client: c, Stripe: m, ResyncPeriod: time.Hour}}
}

func (e *directEnv) newSub(name string, mutate func(*billingv1alpha1.StripeSubscription)) *billingv1alpha1.StripeSubscription {
	e.t.Helper()
	obj := &billingv1alpha1.StripeSubscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Spec: billingv1alpha1.StripeSubscriptionSpec{
			CustomerID: "cus_direct",
			Items:      []billingv1alpha1.SubscriptionItem{{PriceID: "price_basic", Quantity: 2}},
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
	g.Expect(e.m.count("create")).To(Equal(1))
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
		s.Items[0].PriceID = "price_pro"
		s.Items[0].Quantity = 3
	})
	e.mustReconcile("s1")
	g.Expect(e.m.count("update")).To(Equal(1))
	g.Expect(e.m.get(subID).Items).To(HaveLen(1))
	g.Expect(e.m.get(subID).Items[0]).To(And(
		HaveField("ID", itemID), HaveField("PriceID", "price_pro"), HaveField("Quantity", int64(3))))
	obj = e.fetch("s1")
	g.Expect(obj.Status.ExpectedAmount.Amount).To(Equal(int64(15000)))
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Reason).To(Equal(billingv1alpha1.ReasonInSync), "a spec change is not drift")

	// Dashboard edit: corrected, and the condition records it.
	e.m.edit(subID, func(s *stripe.Subscription) { s.Items[0].Quantity = 7; s.CancelAtPeriodEnd = true })
	e.mustReconcile("s1")
	g.Expect(e.m.count("update")).To(Equal(2))
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

	// Delete with the default policy Cancel.
	g.Expect(testClient().Delete(e.ctx, e.fetch("s1"))).To(Succeed())
	e.mustReconcile("s1")
	g.Expect(e.m.get(subID).Status).To(Equal("canceled"))
	err := testClient().Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: "s1"}, &billingv1alpha1.StripeSubscription{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
}

func TestSubscriptionDirectCrashBetweenCreateAndStatus(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("crash", nil)
	e.mustReconcile("crash") // finalizer, create, ... (first pass completes)
	g.Expect(e.m.count("create")).To(Equal(1))

	// A second resource whose first create "crashes" before the status write.
	e.newSub("crash2", nil)
	e.c.mu.Lock()
	e.c.failNext = true
	e.c.mu.Unlock()
	_, err := e.reconcile("crash2")
	g.Expect(err).To(HaveOccurred())
	e.c.mu.Lock()
	e.c.failNext = false
	e.c.mu.Unlock()
	g.Expect(e.m.count("create")).To(Equal(2))
	obj := e.fetch("crash2")
	g.Expect(obj.Status.SubscriptionID).To(BeEmpty())
	g.Expect(obj.Annotations).To(HaveKey(billingv1alpha1.AnnotationCreatePending))

	e.mustReconcile("crash2")
	g.Expect(e.m.count("create")).To(Equal(2), "the next pass finds the subscription instead of creating another")
	obj = e.fetch("crash2")
	g.Expect(obj.Status.SubscriptionID).NotTo(BeEmpty())
	g.Expect(obj.Annotations).NotTo(HaveKey(billingv1alpha1.AnnotationCreatePending))
	g.Expect(e.m.get(obj.Status.SubscriptionID).Metadata[billingv1alpha1.StripeMetadataName]).To(Equal("crash2"))
}

func TestSubscriptionDirectStripeErrors(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("err", nil)
	e.m.fail["create"] = &stripe.Error{Class: stripe.ClassRateLimited, HTTPStatus: 429, RetryAfter: time.Second, Op: "create subscription", Message: "Too many requests"}
	res, err := e.reconcile("err")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(BeNumerically(">=", time.Second))
	obj := e.fetch("err")
	g.Expect(cond(obj, billingv1alpha1.ConditionSynced).Reason).To(Equal(billingv1alpha1.ReasonRateLimited))
	g.Expect(cond(obj, billingv1alpha1.ConditionReconciling).Status).To(Equal(metav1.ConditionTrue))

	e.m.fail["create"] = &stripe.Error{Class: stripe.ClassRetryable, HTTPStatus: 500, Op: "create subscription", Message: "An unknown error occurred"}
	_, err = e.reconcile("err")
	g.Expect(err).To(HaveOccurred())
	e.mustReconcile("err")
	g.Expect(e.m.count("create")).To(Equal(3))
	g.Expect(e.m.subs).To(HaveLen(1))
	obj = e.fetch("err")
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond(obj, billingv1alpha1.ConditionReconciling)).To(BeNil())

	// Mixed currencies are an invalid spec.
	e.updateSpec("err", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.Items = append(s.Items, billingv1alpha1.SubscriptionItem{PriceID: "price_eur", Quantity: 1})
	})
	e.mustReconcile("err")
	obj = e.fetch("err")
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled).Reason).To(Equal(billingv1alpha1.ReasonInvalidSpec))
	g.Expect(e.m.count("update")).To(Equal(0))
}

func TestSubscriptionDirectObserveMode(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	existing, _ := e.m.CreateSubscription(e.ctx, stripe.Owner{}, stripe.SubscriptionCreateParams{
		CustomerID: "cus_direct", Items: []stripe.SubscriptionItemParams{{PriceID: "price_basic", Quantity: 2}},
		Metadata: map[string]string{"team": "a"},
	})
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

	e.m.edit(existing.ID, func(s *stripe.Subscription) { s.Items[0].Quantity = 5 })
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
	e.m.edit(oldID, func(s *stripe.Subscription) { s.Status = "canceled"; s.CanceledAt = 1_801_000_000 })
	e.mustReconcile("end")
	e.mustReconcile("end")
	g.Expect(e.m.count("create")).To(Equal(1))
	obj := e.fetch("end")
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled)).To(And(
		HaveField("Status", metav1.ConditionTrue), HaveField("Reason", billingv1alpha1.ReasonSubscriptionEnded)))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Reason).To(Equal(billingv1alpha1.ReasonSubscriptionEnded))
	g.Expect(cond(obj, billingv1alpha1.ConditionBillingDrift).Message).To(ContainSubstring("canceled in Stripe"))
	g.Expect(obj.Status.StripeStatus).To(Equal("canceled"))

	// The recreate annotation on a live subscription is ignored; on an ended
	// one it creates a replacement.
	e.annotate("end", billingv1alpha1.AnnotationRecreate, "true")
	e.mustReconcile("end")
	obj = e.fetch("end")
	g.Expect(e.m.count("create")).To(Equal(2))
	g.Expect(obj.Status.SubscriptionID).NotTo(Equal(oldID))
	g.Expect(obj.Annotations).NotTo(HaveKey(billingv1alpha1.AnnotationRecreate))
	g.Expect(e.m.get(obj.Status.SubscriptionID).Metadata).To(HaveKeyWithValue(metadataReplaces, oldID))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond(obj, billingv1alpha1.ConditionStalled)).To(BeNil())
	// The replaces key is kept on later passes.
	e.mustReconcile("end")
	g.Expect(e.m.count("update")).To(Equal(0))

	e.annotate("end", billingv1alpha1.AnnotationRecreate, "true")
	e.mustReconcile("end")
	g.Expect(e.m.count("create")).To(Equal(2))
	g.Expect(e.fetch("end").Annotations).NotTo(HaveKey(billingv1alpha1.AnnotationRecreate))

	// Deleting a resource whose subscription is already canceled succeeds.
	newID := e.fetch("end").Status.SubscriptionID
	e.m.edit(newID, func(s *stripe.Subscription) { s.Status = "canceled" })
	g.Expect(testClient().Delete(e.ctx, e.fetch("end"))).To(Succeed())
	e.mustReconcile("end")
	g.Expect(e.m.count("cancel")).To(Equal(0))
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

	cust.Status.CustomerID = "cus_ref"
	g.Expect(testClient().Status().Update(e.ctx, cust)).To(Succeed())
	plan := &billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "basic"}, Spec: billingv1alpha1.StripePlanSpec{
		Product: billingv1alpha1.ProductSpec{Name: "Basic"}, Price: billingv1alpha1.PriceSpec{Currency: "usd", UnitAmount: 1000, Interval: "month"}}}
	g.Expect(testClient().Create(e.ctx, plan)).To(Succeed())
	e.mustReconcile("ref")
	g.Expect(cond(e.fetch("ref"), billingv1alpha1.ConditionReconciling).Reason).To(Equal(billingv1alpha1.ReasonWaitingForPlan))

	plan.Status.PriceID = "price_basic"
	g.Expect(testClient().Status().Update(e.ctx, plan)).To(Succeed())
	e.mustReconcile("ref")
	obj = e.fetch("ref")
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	subID := obj.Status.SubscriptionID
	itemID := e.m.get(subID).Items[0].ID

	// Plan price rollover: the item moves to the new price, keeping its ID;
	// it is an update, not drift.
	plan.Status.PriceID = "price_pro"
	plan.Status.PreviousPriceIDs = []string{"price_basic"}
	g.Expect(testClient().Status().Update(e.ctx, plan)).To(Succeed())
	e.mustReconcile("ref")
	g.Expect(e.m.get(subID).Items[0]).To(And(HaveField("ID", itemID), HaveField("PriceID", "price_pro")))
	g.Expect(cond(e.fetch("ref"), billingv1alpha1.ConditionBillingDrift).Reason).To(Equal(billingv1alpha1.ReasonInSync))
}

// TestSubscriptionManagerWatches runs the reconciler in a manager and checks
// that the StripePlan and StripeCustomer watches (through the field indexes)
// reach the subscriptions that reference them.
func TestSubscriptionManagerWatches(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	m := newMemStripe()
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{Scheme: testClient().Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}})
	g.Expect(err).NotTo(HaveOccurred())
	r := &StripeSubscriptionReconciler{Client: mgr.GetClient(), Stripe: m, ResyncPeriod: time.Hour, SkipNameValidation: true}
	g.Expect(r.SetupWithManager(mgr)).To(Succeed())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	c := testClient()
	cust := &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}, Spec: billingv1alpha1.StripeCustomerSpec{Email: "a@example.com"}}
	g.Expect(c.Create(ctx, cust)).To(Succeed())
	plan := &billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "basic"}, Spec: billingv1alpha1.StripePlanSpec{
		Product: billingv1alpha1.ProductSpec{Name: "Basic"}, Price: billingv1alpha1.PriceSpec{Currency: "usd", UnitAmount: 1000, Interval: "month"}}}
	g.Expect(c.Create(ctx, plan)).To(Succeed())
	plan.Status.PriceID = "price_basic"
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
	mk("pinned", billingv1alpha1.SubscriptionItem{PriceID: "price_basic", Quantity: 1})
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
	// 30s wait recheck).
	cust.Status.CustomerID = "cus_acme"
	g.Expect(c.Status().Update(ctx, cust)).To(Succeed())
	for _, name := range []string{"follows", "pinned"} {
		g.Eventually(func() bool {
			return meta.IsStatusConditionTrue(get(name).Status.Conditions, billingv1alpha1.ConditionReady)
		}, 20*time.Second, 100*time.Millisecond).Should(BeTrue(), name)
	}
	follows, pinned := get("follows").Status.SubscriptionID, get("pinned").Status.SubscriptionID

	// A price rollover on the plan reaches the subscription that follows it;
	// the pinned one stays.
	plan.Status.PriceID = "price_pro"
	plan.Status.PreviousPriceIDs = []string{"price_basic"}
	g.Expect(c.Status().Update(ctx, plan)).To(Succeed())
	g.Eventually(func() string { return m.get(follows).Items[0].PriceID }, 20*time.Second, 100*time.Millisecond).Should(Equal("price_pro"))
	g.Eventually(func() int64 {
		if a := get("follows").Status.ExpectedAmount; a != nil {
			return a.Amount
		}
		return 0
	}, 20*time.Second, 100*time.Millisecond).Should(Equal(int64(5000)))
	g.Expect(m.get(pinned).Items[0].PriceID).To(Equal("price_basic"))
	g.Expect(m.count("create")).To(Equal(2))
}

func TestSubscriptionDirectPaymentFailed(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	e.newSub("pay", nil)
	e.mustReconcile("pay")
	id := e.fetch("pay").Status.SubscriptionID

	e.m.edit(id, func(s *stripe.Subscription) {
		s.Status = "past_due"
		s.LatestInvoice = &stripe.Invoice{ID: "in_2", Status: "open", Currency: "usd", AmountDue: 2000, AttemptCount: 1, Attempted: true,
			PaymentError: "card_declined", PaymentIntentStatus: "requires_payment_method", NextPaymentAttempt: 1_802_000_000, BillingReason: "subscription_cycle"}
	})
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

	e.m.edit(id, func(s *stripe.Subscription) {
		s.Status = "active"
		s.LatestInvoice.Status, s.LatestInvoice.AmountPaid, s.LatestInvoice.NextPaymentAttempt, s.LatestInvoice.PaymentError = "paid", 2000, 0, ""
	})
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
