package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// patchMeta applies mutate to obj's metadata (finalizers, annotations) and
// persists it at once with an optimistic lock. It is used where the order
// of writes matters (the create-pending annotation must be stored before the
// Stripe create call) and for finalizers.
func patchMeta(ctx context.Context, c client.Client, obj client.Object, mutate func()) error {
	before := obj.DeepCopyObject().(client.Object)
	mutate()
	if equality.Semantic.DeepEqual(before.GetAnnotations(), obj.GetAnnotations()) &&
		equality.Semantic.DeepEqual(before.GetFinalizers(), obj.GetFinalizers()) {
		return nil
	}
	if err := c.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patching metadata: %w", err)
	}
	return nil
}

// patchStatus writes obj's status when it differs from original's, as a
// merge patch carrying obj's resourceVersion (optimistic lock): a concurrent
// write by the webhook server makes it fail with a conflict and the pass is
// retried, instead of one writer erasing the other's conditions.
// getStatus extracts the status struct for comparison.
func patchStatus(ctx context.Context, c client.Client, obj client.Object, originalStatus any, getStatus func(client.Object) any, setOriginal func(client.Object)) error {
	if o, ok := obj.(conditioned); ok {
		if orig, ok := originalStatus.(interface{ GetConditions() []metav1.Condition }); ok {
			o.SetConditions(keepTransitionTimes(orig.GetConditions(), o.GetConditions()))
		}
	}
	if equality.Semantic.DeepEqual(originalStatus, getStatus(obj)) {
		return nil
	}
	base := obj.DeepCopyObject().(client.Object)
	setOriginal(base)
	if err := c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patching status: %w", err)
	}
	return nil
}

// keepTransitionTimes gives every condition whose status is the same as at
// the start of the pass its original lastTransitionTime. A pass may remove
// and re-add a condition on its way (Reconciling while working, Stalled on
// the same error again); the written status must still be identical to the
// last one when nothing changed, or each pass would trigger the next.
func keepTransitionTimes(orig, cur []metav1.Condition) []metav1.Condition {
	for i := range cur {
		for _, o := range orig {
			if o.Type == cur[i].Type && o.Status == cur[i].Status {
				cur[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return cur
}

// metadataDiff returns the metadata update that makes observed equal to
// desired (keys not desired are removed with ""), or nil when equal.
func metadataDiff(desired, observed map[string]string) map[string]string {
	var diff map[string]string
	set := func(k, v string) {
		if diff == nil {
			diff = map[string]string{}
		}
		diff[k] = v
	}
	for k, v := range desired {
		if ov, ok := observed[k]; !ok || ov != v {
			set(k, v)
		}
	}
	for k := range observed {
		if _, ok := desired[k]; !ok {
			set(k, "")
		}
	}
	return diff
}

// releaseFinalizer removes the finalizer so the API server can delete obj.
func releaseFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	return patchMeta(ctx, c, obj, func() { controllerutil.RemoveFinalizer(obj, billingv1alpha1.Finalizer) })
}
