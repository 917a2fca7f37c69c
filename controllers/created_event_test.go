package controllers

import (
	"context"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// webhookFirstClient records, as the webhook server does from the
// subscription's created event, the subscription ID in status just before
// the reconciler's own first write of it, so that write conflicts.
type webhookFirstClient struct {
	client.Client
	once sync.Once
}

func (c *webhookFirstClient) Status() client.SubResourceWriter {
	return &webhookFirstWriter{SubResourceWriter: c.Client.Status(), c: c}
}

type webhookFirstWriter struct {
	client.SubResourceWriter
	c *webhookFirstClient
}

func (w *webhookFirstWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if s, ok := obj.(*billingv1alpha1.StripeSubscription); ok && s.Status.SubscriptionID != "" {
		w.c.once.Do(func() {
			fresh := &billingv1alpha1.StripeSubscription{}
			if err := testClient().Get(ctx, client.ObjectKeyFromObject(s), fresh); err == nil && fresh.Status.SubscriptionID == "" {
				fresh.Status.SubscriptionID = s.Status.SubscriptionID
				fresh.Status.StripeStatus = "incomplete"
				_ = testClient().Status().Update(ctx, fresh)
			}
		})
	}
	return w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// TestCreatedEventWhenTheWebhookServerRecordsTheIDFirst: the webhook
// server records the new subscription's ID before the reconciler, whose
// write then conflicts; the resource still gets exactly one Created Event
// naming the Stripe ID.
func TestCreatedEventWhenTheWebhookServerRecordsTheIDFirst(t *testing.T) {
	g := NewWithT(t)
	e := newDirectEnv(t)
	rec := record.NewFakeRecorder(1000)
	e.r.Client = &webhookFirstClient{Client: e.c}
	e.r.Recorder = rec
	e.newSub("first", nil)
	for range 5 {
		_, _ = e.reconcile("first")
		if c := cond(e.fetch("first"), billingv1alpha1.ConditionReady); c != nil && c.Status == "True" {
			break
		}
	}
	obj := e.fetch("first")
	g.Expect(obj.Status.SubscriptionID).NotTo(BeEmpty())
	g.Expect(e.m.creates()).To(Equal(1))
	g.Expect(cond(obj, billingv1alpha1.ConditionReady).Status).To(BeEquivalentTo("True"), "the passes ran to the end")
	var created []string
	for {
		select {
		case ev := <-rec.Events:
			if strings.Contains(ev, " Created ") {
				created = append(created, ev)
			}
			continue
		default:
		}
		break
	}
	g.Expect(created).To(HaveLen(1), "one Created Event")
	g.Expect(created[0]).To(ContainSubstring(obj.Status.SubscriptionID))
}
