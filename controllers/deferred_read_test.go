package controllers

import (
	"context"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// TestDeferredEventIsFollowedByARead: when the webhook server records an
// event it could not order (status.deferredEvent), the reconciler is woken
// and reads the subscription from Stripe within seconds (not from a list
// that would otherwise serve an unchanged resync, nor from status), which
// clears deferredEvent and moves readAt.
func TestDeferredEventIsFollowedByARead(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	m := newDirectStripe(t, -1)
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{Scheme: testClient().Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}})
	g.Expect(err).NotTo(HaveOccurred())
	lists := &ResyncLists{MinRefresh: time.Hour}
	r := &StripeSubscriptionReconciler{Client: mgr.GetClient(), Stripe: m.api, ResyncPeriod: time.Hour, SkipNameValidation: true, Lists: lists}
	g.Expect(r.SetupWithManager(mgr)).To(Succeed())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	c := testClient()
	obj := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deferred"},
		Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerID: m.customerID,
			Items: []billingv1alpha1.SubscriptionItem{{PriceID: m.price["basic"], Quantity: 1}}}}
	g.Expect(c.Create(ctx, obj)).To(Succeed())
	key := types.NamespacedName{Namespace: ns, Name: "deferred"}
	get := func() *billingv1alpha1.StripeSubscription {
		o := &billingv1alpha1.StripeSubscription{}
		g.Expect(c.Get(ctx, key, o)).To(Succeed())
		return o
	}
	g.Eventually(func() bool {
		return meta.IsStatusConditionTrue(get().Status.Conditions, billingv1alpha1.ConditionReady)
	},
		30*time.Second, 100*time.Millisecond).Should(BeTrue())
	id := get().Status.SubscriptionID

	// A whole list, newer than every observation, showing nothing new: an
	// unchanged resync would take the subscription from it.
	time.Sleep(1100 * time.Millisecond)
	sub, err := m.api.GetSubscription(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	lists.Publish(time.Now(), []*stripe.Subscription{sub})
	reads := m.requests("GET /v1/subscriptions/{id}")

	// The webhook server defers an event.
	o := get()
	g.Expect(c.Status().Patch(ctx, o, client.RawPatch(types.MergePatchType,
		[]byte(`{"status":{"deferredEvent":{"id":"evt_deferred1","type":"customer.subscription.updated","created":`+
			strconv.FormatInt(time.Now().Unix(), 10)+`}}}`)))).To(Succeed())

	g.Eventually(func() *billingv1alpha1.EventRef { return get().Status.DeferredEvent }, 30*time.Second, 100*time.Millisecond).Should(BeNil(),
		"a read settles the deferred event")
	g.Expect(m.requests("GET /v1/subscriptions/{id}")).To(BeNumerically(">", reads), "the subscription was read from Stripe, not from the list")
	g.Expect(get().Status.ReadAt).NotTo(BeNil())
}
