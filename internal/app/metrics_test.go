package app

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/controllers"
)

// TestResourceMetricsVisitTheCachedStore: over the manager's cache, the
// resource gauges are counted by visiting the informer's store (no List,
// which would copy every object into a new array), and they count what is
// there: resources of each kind and those Ready for their generation.
func TestResourceMetricsVisitTheCachedStore(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := cache.New(env.Config, cache.Options{Scheme: scheme.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	for _, o := range []client.Object{&billingv1alpha1.StripeCustomer{}, &billingv1alpha1.StripePlan{}, &billingv1alpha1.StripeSubscription{}} {
		_, err := c.GetInformer(ctx, o)
		g.Expect(err).NotTo(HaveOccurred())
	}
	go func() { _ = c.Start(ctx) }()
	g.Expect(c.WaitForCacheSync(ctx)).To(BeTrue())

	ns := "metrics-" + rand.String(5)
	g.Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	for i, ready := range []bool{true, true, false} {
		s := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s" + string(rune('a'+i))},
			Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerID: "cus_1", Items: []billingv1alpha1.SubscriptionItem{{PriceID: "price_1", Quantity: 1}}}}
		g.Expect(env.Client.Create(ctx, s)).To(Succeed())
		if ready {
			s.Status.Conditions = []metav1.Condition{{Type: billingv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Active",
				ObservedGeneration: s.Generation, LastTransitionTime: metav1.Now()}}
			g.Expect(env.Client.Status().Update(ctx, s)).To(Succeed())
		}
	}

	lists := &countingLists{readOnlyLists: readOnlyLists{c}}
	reg := prometheus.NewPedanticRegistry()
	g.Expect(reg.Register(controllers.MetricCollectors(lists)[0])).To(Succeed())
	gauge := func(name, kind, condition string) float64 {
		mfs, err := reg.Gather()
		g.Expect(err).NotTo(HaveOccurred())
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if label(m, "kind") == kind && label(m, "condition") == condition {
					return m.GetGauge().GetValue()
				}
			}
		}
		return -1
	}
	g.Eventually(func() float64 { return gauge("stripe_operator_resources", "StripeSubscription", "") }).Should(BeNumerically(">=", 3))
	var all billingv1alpha1.StripeSubscriptionList
	g.Expect(env.Client.List(ctx, &all)).To(Succeed())
	ready := 0
	for _, s := range all.Items {
		for _, cond := range s.Status.Conditions {
			if cond.Type == billingv1alpha1.ConditionReady && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == s.Generation {
				ready++
			}
		}
	}
	g.Eventually(func() []float64 {
		return []float64{gauge("stripe_operator_resources", "StripeSubscription", ""), gauge("stripe_operator_resources_condition_true", "StripeSubscription", "Ready")}
	}).Should(Equal([]float64{float64(len(all.Items)), float64(ready)}))
	g.Expect(lists.lists).To(BeZero(), "the collector listed instead of visiting the store")
}

type countingLists struct {
	readOnlyLists
	lists int
}

func (c *countingLists) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c.lists++
	return c.readOnlyLists.List(ctx, list, opts...)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
