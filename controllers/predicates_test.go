package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

func TestAnnotationsChangedByOthers(t *testing.T) {
	pending := billingv1alpha1.AnnotationCreatePending
	cases := []struct {
		name     string
		old, new map[string]string
		want     bool
	}{
		{"create-pending removed", map[string]string{pending: "x"}, nil, false},
		{"create-pending set", nil, map[string]string{pending: "x"}, false},
		{"create-pending replaced", map[string]string{pending: "x"}, map[string]string{pending: "y"}, false},
		{"recreate requested", nil, map[string]string{billingv1alpha1.AnnotationRecreate: "true"}, true},
		{"recreate removed", map[string]string{billingv1alpha1.AnnotationRecreate: "true"}, nil, true},
		{"event recorded", map[string]string{billingv1alpha1.AnnotationLastEventID: "evt_1"}, map[string]string{billingv1alpha1.AnnotationLastEventID: "evt_2"}, false},
		{"recent events recorded", nil, map[string]string{billingv1alpha1.AnnotationRecentEventIDs: "evt_1", billingv1alpha1.AnnotationLastEventID: "evt_1"}, false},
		{"event recorded and recreate requested", nil, map[string]string{billingv1alpha1.AnnotationLastEventID: "evt_1", billingv1alpha1.AnnotationRecreate: "true"}, true},
		{"nothing", map[string]string{"a": "b"}, map[string]string{"a": "b"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Annotations: tc.old}}
			n := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Annotations: tc.new}}
			if got := annotationsChangedByOthers().Update(event.UpdateEvent{ObjectOld: o, ObjectNew: n}); got != tc.want {
				t.Errorf("got %t, want %t", got, tc.want)
			}
		})
	}
}

func TestWebhookEventApplied(t *testing.T) {
	ev := func(id string) *billingv1alpha1.EventRef { return &billingv1alpha1.EventRef{ID: id, Created: 1} }
	cases := []struct {
		name     string
		old, new billingv1alpha1.StripeSubscriptionStatus
		want     bool
	}{
		{"subscription event applied", billingv1alpha1.StripeSubscriptionStatus{}, billingv1alpha1.StripeSubscriptionStatus{LastEvent: ev("evt_1")}, true},
		{"invoice event applied", billingv1alpha1.StripeSubscriptionStatus{}, billingv1alpha1.StripeSubscriptionStatus{LatestInvoice: &billingv1alpha1.InvoiceStatus{ID: "in_1", LastEvent: ev("evt_2")}}, true},
		{"event deferred", billingv1alpha1.StripeSubscriptionStatus{}, billingv1alpha1.StripeSubscriptionStatus{DeferredEvent: ev("evt_3")}, true},
		{"another event deferred", billingv1alpha1.StripeSubscriptionStatus{DeferredEvent: ev("evt_3")}, billingv1alpha1.StripeSubscriptionStatus{DeferredEvent: ev("evt_4")}, true},
		{"the reconciler's read settled it", billingv1alpha1.StripeSubscriptionStatus{DeferredEvent: ev("evt_3")}, billingv1alpha1.StripeSubscriptionStatus{}, false},
		{"the reconciler's own write", billingv1alpha1.StripeSubscriptionStatus{StripeStatus: "active"}, billingv1alpha1.StripeSubscriptionStatus{StripeStatus: "past_due"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &billingv1alpha1.StripeSubscription{Status: tc.old}
			n := &billingv1alpha1.StripeSubscription{Status: tc.new}
			if got := webhookEventApplied().Update(event.UpdateEvent{ObjectOld: o, ObjectNew: n}); got != tc.want {
				t.Errorf("got %t, want %t", got, tc.want)
			}
		})
	}
}
