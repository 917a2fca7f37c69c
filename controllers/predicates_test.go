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
