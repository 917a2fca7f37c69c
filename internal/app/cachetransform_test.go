package app

import (
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// decodedSubscription builds a subscription whose strings are all fresh
// allocations, as the informer's JSON decoder makes them.
func decodedSubscription(name string) *billingv1alpha1.StripeSubscription {
	fresh := func(s string) string { return string([]byte(s)) }
	return &billingv1alpha1.StripeSubscription{
		TypeMeta: metav1.TypeMeta{APIVersion: fresh("billing.stripe-operator.io/v1alpha1"), Kind: fresh("StripeSubscription")},
		ObjectMeta: metav1.ObjectMeta{Namespace: fresh("tenant-a"), Name: name,
			Finalizers:    []string{fresh("billing.stripe-operator.io/finalizer")},
			Labels:        map[string]string{fresh("team"): fresh("growth")},
			Annotations:   map[string]string{fresh(corev1.LastAppliedConfigAnnotation): "{}", fresh("note"): fresh("x")},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: billingv1alpha1.StripeSubscriptionSpec{DeletionPolicy: billingv1alpha1.SubscriptionDeletionPolicy(fresh("CancelAtPeriodEnd")), CustomerRef: &billingv1alpha1.LocalObjectReference{Name: fresh("acme")},
			Items: []billingv1alpha1.SubscriptionItem{{PlanRef: &billingv1alpha1.LocalObjectReference{Name: fresh("basic")}, Quantity: 1}}},
		Status: billingv1alpha1.StripeSubscriptionStatus{SubscriptionID: fresh("sub_" + name), StripeStatus: fresh("active"),
			LatestInvoice: &billingv1alpha1.InvoiceStatus{Status: fresh("paid"), Currency: fresh("usd")},
			CommonStatus: billingv1alpha1.CommonStatus{Conditions: []metav1.Condition{{Type: fresh("Ready"), Status: metav1.ConditionStatus(fresh("True")),
				Reason: fresh("Synced"), Message: fresh("The subscription matches Stripe.")}}}},
	}
}

func sameBytes(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// TestSlimCachedObjectSharesRepeatedStrings checks that the transform drops
// managedFields and last-applied, keeps every other value equal, and makes
// two objects share their repeated strings (one copy in the cache) but not
// their own names and IDs.
func TestSlimCachedObjectSharesRepeatedStrings(t *testing.T) {
	a, b := decodedSubscription("one"), decodedSubscription("two")
	wantA := a.DeepCopy()
	wantA.ManagedFields = nil
	delete(wantA.Annotations, corev1.LastAppliedConfigAnnotation)
	for _, o := range []*billingv1alpha1.StripeSubscription{a, b} {
		if _, err := slimCachedObject(o); err != nil {
			t.Fatal(err)
		}
	}
	if !equality.Semantic.DeepEqual(a, wantA) {
		t.Fatalf("the transform changed a value:\n got %+v\nwant %+v", a, wantA)
	}
	shared := map[string][2]string{
		"apiVersion":        {a.APIVersion, b.APIVersion},
		"namespace":         {a.Namespace, b.Namespace},
		"finalizer":         {a.Finalizers[0], b.Finalizers[0]},
		"label value":       {a.Labels["team"], b.Labels["team"]},
		"customerRef":       {a.Spec.CustomerRef.Name, b.Spec.CustomerRef.Name},
		"planRef":           {a.Spec.Items[0].PlanRef.Name, b.Spec.Items[0].PlanRef.Name},
		"stripeStatus":      {a.Status.StripeStatus, b.Status.StripeStatus},
		"invoice currency":  {a.Status.LatestInvoice.Currency, b.Status.LatestInvoice.Currency},
		"condition type":    {a.Status.Conditions[0].Type, b.Status.Conditions[0].Type},
		"condition status":  {string(a.Status.Conditions[0].Status), string(b.Status.Conditions[0].Status)},
		"condition reason":  {a.Status.Conditions[0].Reason, b.Status.Conditions[0].Reason},
		"condition message": {a.Status.Conditions[0].Message, b.Status.Conditions[0].Message},
	}
	for what, pair := range shared {
		if !sameBytes(pair[0], pair[1]) {
			t.Errorf("%s %q: two copies in the cache, want one shared", what, pair[0])
		}
	}
	if sameBytes(a.Status.SubscriptionID, b.Status.SubscriptionID) {
		t.Error("distinct values share memory")
	}
}

// TestSlimCachedObjectDropsEmptyMaps checks that an object left with no
// annotations (only last-applied) keeps none, as one decoded without any.
func TestSlimCachedObjectDropsEmptyMaps(t *testing.T) {
	o := decodedSubscription("one")
	delete(o.Annotations, "note")
	o.Labels = map[string]string{}
	if _, err := slimCachedObject(o); err != nil {
		t.Fatal(err)
	}
	if o.Annotations != nil || o.Labels != nil {
		t.Errorf("annotations %#v, labels %#v; want nil", o.Annotations, o.Labels)
	}
}

// TestInternerIsBounded checks that a stream of distinct strings never
// grows the table past its bound.
func TestInternerIsBounded(t *testing.T) {
	it := &interner{}
	for i := range 3 * maxInterned {
		s := string(rune('a'+i%26)) + string(rune(i))
		it.intern(&s)
		if len(it.m) > maxInterned {
			t.Fatalf("%d strings held, bound %d", len(it.m), maxInterned)
		}
	}
	long := string(make([]byte, maxInternedLen+1))
	before := len(it.m)
	it.intern(&long)
	if len(it.m) != before {
		t.Error("a string longer than maxInternedLen was held")
	}
}
