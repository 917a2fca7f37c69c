package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// listingExternal observes one customer through readListed, as the kinds
// do, and counts its reads of its own.
type listingExternal struct {
	external
	p     *pass[*billingv1alpha1.StripeCustomer]
	stock *stripe.Customer // what a read of its own returns
	gets  *int
	from  *string // what the last observation read: "list" or "get"
}

func (x *listingExternal) Observe(ctx context.Context) (observation, error) {
	read := false
	cus, err := readListed(ctx, x.p, customerListing, x.p.obj.Status.CustomerID, func(context.Context, string) (*stripe.Customer, error) {
		*x.gets++
		read = true
		return x.stock, nil
	})
	if err != nil {
		return observation{}, err
	}
	*x.from = "list"
	if read {
		*x.from = "get"
	}
	var diff []string
	if cus.Email != x.p.obj.Spec.Email {
		diff = append(diff, "email")
	}
	return observation{bound: true, diff: diff}, nil
}

// TestResyncListingRules: the core's listing rules, for any kind: a resync
// observes from the list when that changes nothing, and from a read of its
// own otherwise.
func TestResyncListingRules(t *testing.T) {
	ctx := context.Background()
	same := &stripe.Customer{ID: "cus_1", Email: "a@example.com"}
	changed := &stripe.Customer{ID: "cus_1", Email: "changed@example.com"}
	for _, tc := range []struct {
		name   string
		listed []*stripe.Customer
		mutate func(obj *billingv1alpha1.StripeCustomer, rl *ResyncLists, listedAt time.Time)
		// stock is what a read of its own returns (default: same).
		stock *stripe.Customer
		// from is what the pass's final observation read; gets how many
		// reads of its own it made.
		from string
		gets int
	}{
		{name: "unchanged resync observes from the list", listed: []*stripe.Customer{same}, from: "list"},
		{name: "the listed copy differs from the spec: observed again from a read", listed: []*stripe.Customer{changed}, stock: changed, from: "get", gets: 1},
		{name: "the listed copy differs but a read agrees with the spec", listed: []*stripe.Customer{changed}, from: "get", gets: 1},
		{name: "not in the list: read on its own (absence is no deletion)", listed: []*stripe.Customer{{ID: "cus_other"}}, from: "get", gets: 1},
		{name: "a spec change is not a resync", listed: []*stripe.Customer{same}, from: "get", gets: 1,
			mutate: func(obj *billingv1alpha1.StripeCustomer, _ *ResyncLists, _ time.Time) { obj.Generation = 3 }},
		{name: "a pending create is not a resync", listed: []*stripe.Customer{same}, from: "get", gets: 1,
			mutate: func(obj *billingv1alpha1.StripeCustomer, _ *ResyncLists, _ time.Time) {
				obj.Annotations = map[string]string{billingv1alpha1.AnnotationCreatePending: "x"}
			}},
		{name: "observed after the list was started: read on its own", listed: []*stripe.Customer{same}, from: "get", gets: 1,
			mutate: func(obj *billingv1alpha1.StripeCustomer, rl *ResyncLists, at time.Time) {
				rl.note(obj.UID, at.Add(time.Second))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := &ResyncLists{}
			rl.startOnce.Do(func() { rl.observed.start.Store(time.Now().Add(-time.Hour).UnixNano()) })
			at := time.Now().Add(-time.Minute)
			publish(rl, customerListing, at, tc.listed)
			obj := &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "uid-c", Generation: 2},
				Spec: billingv1alpha1.StripeCustomerSpec{Email: "a@example.com"}}
			obj.Status.CustomerID, obj.Status.ObservedGeneration = "cus_1", 2
			if tc.mutate != nil {
				tc.mutate(obj, rl, at)
			}
			gets, from := 0, ""
			stock := tc.stock
			if stock == nil {
				stock = same
			}
			m := &managedReconciler[*billingv1alpha1.StripeCustomer]{lists: rl}
			p := &pass[*billingv1alpha1.StripeCustomer]{obj: obj, core: m}
			m.kind.connect = func(p *pass[*billingv1alpha1.StripeCustomer]) external {
				return &listingExternal{p: p, stock: stock, gets: &gets, from: &from}
			}
			p.ext = m.kind.connect(p)
			obs, err := m.observe(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if from != tc.from || gets != tc.gets {
				t.Errorf("observed from %s with %d reads of its own; want %s with %d", from, gets, tc.from, tc.gets)
			}
			if want := stock == changed; len(obs.diff) > 0 != want {
				t.Errorf("diff %v; want a difference: %v", obs.diff, want)
			}
			// The observation is noted: a later list must be newer than it.
			if last := rl.last(obj.UID); !last.After(at) && !(from == "list" && last.Equal(at)) {
				t.Errorf("observation noted at %v, list at %v", last, at)
			}
		})
	}
}

// TestResyncByListingEndToEnd: with the resync by listing on (as in the
// manager), quiet resyncs of a customer and a plan read whole lists and no
// single object, and a Dashboard edit made after a list is still found and
// corrected: the next list shows it, and the pass reads the object on its
// own before it writes.
func TestResyncByListingEndToEnd(t *testing.T) {
	g := NewWithT(t)
	h := startHarness(t, harnessOptions{lists: true, resync: time.Second})
	cus := newCustomer("listed", nil)
	plan := newPlan("listed", 1500, nil)
	h.create(cus)
	h.create(plan)
	h.waitReady(cus)
	h.waitReady(plan)
	lists := func() int {
		st := h.fake.Stats()
		return min(st.Requests["GET /v1/customers"], st.Requests["GET /v1/products"], st.Requests["GET /v1/prices"])
	}
	gets := func() int {
		st := h.fake.Stats()
		return st.Requests["GET /v1/customers/{id}"] + st.Requests["GET /v1/products/{id}"] + st.Requests["GET /v1/prices/{id}"]
	}
	// The positive sign that resyncs run: lists are fetched.
	start := lists()
	g.Eventually(lists, 30*time.Second).Should(BeNumerically(">=", start+2), "resyncs list")
	before, listed := gets(), lists()
	g.Eventually(lists, 30*time.Second).Should(BeNumerically(">=", listed+2), "resyncs list")
	g.Expect(gets()).To(Equal(before), "quiet resyncs by listing read no single object")

	// A Dashboard edit: found through the next list, corrected after a read
	// of its own.
	h.get(cus)
	g.Expect(h.fake.DashboardUpdateCustomer(cus.Status.CustomerID, map[string]string{"name": "Someone Else"})).To(Succeed())
	h.waitEvent("DriftCorrected")
	g.Expect(gets()).To(BeNumerically(">", before), "the correction followed a read of its own")
	g.Expect(h.stripeCustomer(cus.Status.CustomerID).Name).To(Equal(cus.Spec.Name))
}

// TestForgetDropsTheLists: after new credentials (perhaps another Stripe
// account's) no list from before is used, not even one published late.
func TestForgetDropsTheLists(t *testing.T) {
	ctx := context.Background()
	rl := &ResyncLists{}
	rl.startOnce.Do(func() { rl.observed.start.Store(time.Now().Add(-time.Hour).UnixNano()) })
	at := time.Now().Add(-time.Minute)
	publish(rl, customerListing, at, []*stripe.Customer{{ID: "cus_1"}})
	if _, _, ok := lookup(ctx, rl, customerListing, "cus_1", rl.last("uid-1")); !ok {
		t.Fatal("the list is not used before Forget")
	}
	rl.note("uid-2", at.Add(-time.Minute))
	rl.Forget()
	for _, uid := range []string{"uid-1", "uid-2"} {
		if _, _, ok := lookup(ctx, rl, customerListing, "cus_1", rl.last(types.UID(uid))); ok {
			t.Errorf("%s: a list from before Forget was used", uid)
		}
	}
	// A list started before Forget and published after it (the audit's).
	publish(rl, customerListing, at, []*stripe.Customer{{ID: "cus_1"}})
	if _, _, ok := lookup(ctx, rl, customerListing, "cus_1", rl.last("uid-2")); ok {
		t.Error("a list started before Forget was used")
	}
}
