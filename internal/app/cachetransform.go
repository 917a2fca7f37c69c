package app

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// slimCachedObject is the cache's transform, applied once to every object
// the informers receive, before it is stored:
//
//   - it drops what the operator never reads: managedFields and kubectl's
//     last-applied-configuration annotation (a full copy of the manifest).
//     Every write from a cached object is a patch or a status update, so
//     neither is ever written back without them;
//   - it shares the strings that thousands of objects repeat (namespace,
//     finalizers, label and annotation keys, condition types, reasons and
//     messages, Stripe statuses, references) instead of keeping one copy per
//     object. Strings are immutable in Go, so sharing them changes no value
//     a reader sees, and reads still get their own deep copy of the object.
func slimCachedObject(obj any) (any, error) {
	o, err := cache.TransformStripManagedFields()(obj)
	if err != nil {
		return nil, err
	}
	m, ok := o.(metav1.Object)
	if !ok {
		return o, nil
	}
	if ann := m.GetAnnotations(); ann != nil {
		if _, has := ann[corev1.LastAppliedConfigAnnotation]; has {
			delete(ann, corev1.LastAppliedConfigAnnotation)
			m.SetAnnotations(ann)
		}
	}
	cachedStrings.object(o)
	return o, nil
}

// maxInterned bounds the shared strings; past it the table starts again,
// so a stream of distinct values cannot grow it without limit.
const maxInterned = 1 << 14

// maxInternedLen is the longest string worth sharing: longer values are
// rarely repeated (URLs, IDs with payloads).
const maxInternedLen = 256

// interner hands out one shared copy of each string it has seen.
type interner struct {
	mu sync.Mutex
	m  map[string]string
}

var cachedStrings = &interner{}

// intern returns the shared copy of s, recording s when it is new.
func (t *interner) intern(s *string) {
	if *s == "" || len(*s) > maxInternedLen {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.m[*s]; ok {
		*s = c
		return
	}
	if t.m == nil || len(t.m) >= maxInterned {
		t.m = make(map[string]string, 256)
	}
	t.m[*s] = *s
}

// value shares a string-typed field (an enum such as a policy).
func value[S ~string](t *interner, v *S) {
	s := string(*v)
	t.intern(&s)
	*v = S(s)
}

func (t *interner) strings(ss []string) {
	for i := range ss {
		t.intern(&ss[i])
	}
}

// stringMap shares a map's keys, and its values when shareValues is set,
// by rebuilding it (map keys cannot be replaced in place).
func (t *interner) stringMap(in map[string]string, shareValues bool) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		t.intern(&k)
		if shareValues {
			t.intern(&v)
		}
		out[k] = v
	}
	return out
}

func (t *interner) conditions(cs []metav1.Condition) {
	for i := range cs {
		t.intern(&cs[i].Type)
		value(t, &cs[i].Status)
		t.intern(&cs[i].Reason)
		t.intern(&cs[i].Message)
	}
}

func (t *interner) ref(r *billingv1alpha1.LocalObjectReference) {
	if r != nil {
		t.intern(&r.Name)
	}
}

// object shares the repeated strings of obj's metadata and, for the
// billing kinds, of their status.
func (t *interner) object(obj any) {
	if m, ok := obj.(metav1.Object); ok {
		ns := m.GetNamespace()
		t.intern(&ns)
		m.SetNamespace(ns)
		fin := m.GetFinalizers()
		t.strings(fin)
		// An empty map is kept as nil, as an object without any decodes:
		// it still holds its buckets.
		if l := m.GetLabels(); l != nil {
			m.SetLabels(t.stringMap(l, true))
		}
		if a := m.GetAnnotations(); a != nil {
			m.SetAnnotations(t.stringMap(a, false))
		}
		refs := m.GetOwnerReferences()
		for i := range refs {
			t.intern(&refs[i].APIVersion)
			t.intern(&refs[i].Kind)
		}
	}
	switch o := obj.(type) {
	case *billingv1alpha1.StripeSubscription:
		t.intern(&o.APIVersion)
		t.intern(&o.Kind)
		t.ref(o.Spec.CustomerRef)
		t.intern(&o.Spec.CustomerID)
		value(t, &o.Spec.ProrationBehavior)
		value(t, &o.Spec.CollectionMethod)
		value(t, &o.Spec.PaymentBehavior)
		value(t, &o.Spec.DeletionPolicy)
		value(t, &o.Spec.ManagementPolicy)
		for i := range o.Spec.Items {
			t.ref(o.Spec.Items[i].PlanRef)
			t.intern(&o.Spec.Items[i].PriceID)
		}
		st := &o.Status
		t.intern(&st.CustomerID)
		t.intern(&st.StripeStatus)
		t.intern(&st.PauseCollection)
		for i := range st.Items {
			t.intern(&st.Items[i].PriceID)
		}
		if inv := st.LatestInvoice; inv != nil {
			t.intern(&inv.Status)
			t.intern(&inv.Currency)
			t.intern(&inv.BillingReason)
			t.intern(&inv.PaymentError)
			t.intern(&inv.PaymentIntentStatus)
		}
		if a := st.ExpectedAmount; a != nil {
			t.intern(&a.Currency)
		}
		if e := st.LastEvent; e != nil {
			t.intern(&e.Type)
		}
		if e := st.DeferredEvent; e != nil {
			t.intern(&e.Type)
		}
		t.conditions(st.Conditions)
	case *billingv1alpha1.StripeCustomer:
		t.intern(&o.APIVersion)
		t.intern(&o.Kind)
		t.intern(&o.Spec.DefaultPaymentMethod)
		value(t, &o.Spec.DeletionPolicy)
		value(t, &o.Spec.ManagementPolicy)
		if pm := o.Status.DefaultPaymentMethod; pm != nil {
			t.intern(&pm.Source)
		}
		t.conditions(o.Status.Conditions)
	case *billingv1alpha1.StripePlan:
		t.intern(&o.APIVersion)
		t.intern(&o.Kind)
		value(t, &o.Spec.DeletionPolicy)
		value(t, &o.Spec.ManagementPolicy)
		t.conditions(o.Status.Conditions)
	}
}
