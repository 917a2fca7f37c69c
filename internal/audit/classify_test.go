package audit

import (
	"reflect"
	"testing"
	"time"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

const (
	managed     = billingv1alpha1.BillingClassManaged
	expected    = billingv1alpha1.BillingClassOrphanedExpected
	unexplained = billingv1alpha1.BillingClassOrphanedUnexplained
	missing     = billingv1alpha1.BillingClassMissing
	duplicate   = billingv1alpha1.BillingClassDuplicate
	drifted     = billingv1alpha1.BillingClassDrifted
)

// md is today's identity metadata.
func md(ns, name string, extra ...string) map[string]string {
	m := map[string]string{
		billingv1alpha1.StripeMetadataNamespace: ns,
		billingv1alpha1.StripeMetadataName:      name,
		billingv1alpha1.StripeMetadataUID:       "uid-" + name,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func sub(id string, m map[string]string, status string, created int64) Object {
	ended := status == "canceled" || status == "incomplete_expired"
	return Object{Kind: KindSubscription, ID: id, Metadata: m, Live: !ended, Ended: ended, Status: status, Created: created}
}

func endedBy(o Object, by string) Object {
	o.EndedBy = by
	return o
}

func subRes(ns, name, id string) Resource {
	return Resource{ID: Identity{ResourceStripeSubscription, ns, name}, Refs: []Ref{{Kind: KindSubscription, ID: id}}}
}

// got is a finding reduced to what the table compares.
type got struct {
	ID    string
	Class billingv1alpha1.BillingClass
}

func TestIdentityOf(t *testing.T) {
	for _, tc := range []struct {
		name     string
		instance string
		kind     string
		md       map[string]string
		want     Identity
		ok       bool
	}{
		{"today's metadata", "default", KindCustomer, md("a", "acme"), Identity{ResourceStripeCustomer, "a", "acme"}, true},
		{"price belongs to a plan", "default", KindPrice, md("a", "pro"), Identity{ResourceStripePlan, "a", "pro"}, true},
		{"no identity", "default", KindCustomer, map[string]string{"team": "x"}, Identity{}, false},
		// A broken identity (one key of the two) is one no resource has: the
		// audit reports it. It used to be passed over, while the
		// reconcilers refused to adopt the same object (owned elsewhere).
		{"name without namespace", "default", KindCustomer, map[string]string{billingv1alpha1.StripeMetadataName: "x"}, Identity{ResourceStripeCustomer, "", "x"}, true},
		{"namespace without name", "default", KindCustomer, map[string]string{billingv1alpha1.StripeMetadataNamespace: "a"}, Identity{ResourceStripeCustomer, "a", ""}, true},
		{"no instance key: any instance", "b", KindCustomer, md("a", "acme"), Identity{ResourceStripeCustomer, "a", "acme"}, true},
		{"empty kind key: the implied kind", "default", KindPrice, md("a", "pro", MetadataKind, ""), Identity{ResourceStripePlan, "a", "pro"}, true},
		{"this instance", "b", KindCustomer, md("a", "acme", MetadataInstance, "b"), Identity{ResourceStripeCustomer, "a", "acme"}, true},
		{"another instance", "b", KindCustomer, md("a", "acme", MetadataInstance, "a"), Identity{}, false},
		{"kind key wins", "default", KindSubscription, md("a", "x", MetadataKind, "StripeOther"), Identity{"StripeOther", "a", "x"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := IdentityOf(tc.instance, tc.kind, tc.md)
			if id != tc.want || ok != tc.ok {
				t.Errorf("IdentityOf = %v, %v; want %v, %v", id, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	orphanedAt := "2026-01-02T03:04:05Z"
	driftSince := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		instance  string
		objs      []Object
		res       []Resource
		findings  []got
		managed   map[string]int64
		wantSince map[string]time.Time
		// counts are the subscription counts of classes that are counted,
		// not listed.
		counts map[billingv1alpha1.BillingClass]int64
	}{
		{
			name:    "recorded and live is Managed",
			objs:    []Object{sub("sub_1", md("a", "s1"), "active", 1)},
			res:     []Resource{subRes("a", "s1", "sub_1")},
			managed: map[string]int64{KindSubscription: 1},
		},
		{
			name:    "recorded without identity (Observe mode) is Managed",
			objs:    []Object{sub("sub_1", nil, "active", 1)},
			res:     []Resource{subRes("a", "s1", "sub_1")},
			managed: map[string]int64{KindSubscription: 1},
		},
		{
			name:     "identity without resource and without marker is Unexplained",
			objs:     []Object{sub("sub_1", md("a", "gone"), "active", 1)},
			findings: []got{{"sub_1", unexplained}},
		},
		{
			// The reconcilers refuse to adopt such an object (owned
			// elsewhere); the audit must not pass it over either.
			name:     "a broken identity (name without namespace) is Unexplained",
			objs:     []Object{sub("sub_1", map[string]string{billingv1alpha1.StripeMetadataName: "s1"}, "active", 1), sub("sub_2", md("a", "s1"), "active", 2)},
			res:      []Resource{subRes("a", "s1", "sub_2")},
			managed:  map[string]int64{KindSubscription: 1},
			findings: []got{{"sub_1", unexplained}},
		},
		{
			name:      "identity without resource with the Orphan marker is Expected",
			objs:      []Object{sub("sub_1", md("a", "gone", MetadataOrphaned, orphanedAt), "active", 1)},
			findings:  []got{{"sub_1", expected}},
			wantSince: map[string]time.Time{"sub_1": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		},
		{
			name: "ended or archived without resource is history, not classified",
			objs: []Object{sub("sub_1", md("a", "gone"), "canceled", 1),
				{Kind: KindProduct, ID: "prod_1", Metadata: md("a", "gone"), Live: false}},
		},
		{
			name:     "recorded but not listed is Missing",
			res:      []Resource{{ID: Identity{ResourceStripeCustomer, "a", "c"}, Refs: []Ref{{Kind: KindCustomer, ID: "cus_1"}}}},
			findings: []got{{"cus_1", missing}},
		},
		{
			name:     "recorded and canceled outside the operator is Missing",
			objs:     []Object{sub("sub_1", md("a", "s1"), "canceled", 1)},
			res:      []Resource{subRes("a", "s1", "sub_1")},
			findings: []got{{"sub_1", missing}},
		},
		{
			name: "recorded and ended as declared is CanceledByOperator",
			objs: []Object{sub("sub_1", md("a", "s1"), "canceled", 1)},
			res: []Resource{{ID: Identity{ResourceStripeSubscription, "a", "s1"},
				Refs: []Ref{{Kind: KindSubscription, ID: "sub_1", MayEnd: true}}}},
			counts: map[billingv1alpha1.BillingClass]int64{billingv1alpha1.BillingClassCanceledByOperator: 1},
		},
		{
			name:   "recorded and canceled by Stripe for non-payment is CanceledForNonPayment, not Missing",
			objs:   []Object{endedBy(sub("sub_1", md("a", "s1"), "canceled", 1), billingv1alpha1.ReasonCanceledForNonPayment)},
			res:    []Resource{subRes("a", "s1", "sub_1")},
			counts: map[billingv1alpha1.BillingClass]int64{billingv1alpha1.BillingClassCanceledForNonPayment: 1},
		},
		{
			name:   "recorded and canceled with the operator's comment is CanceledByOperator",
			objs:   []Object{endedBy(sub("sub_1", md("a", "s1"), "canceled", 1), billingv1alpha1.ReasonCanceledByOperator)},
			res:    []Resource{subRes("a", "s1", "sub_1")},
			counts: map[billingv1alpha1.BillingClass]int64{billingv1alpha1.BillingClassCanceledByOperator: 1},
		},
		{
			name:     "a second live object for a resource is a Duplicate",
			objs:     []Object{sub("sub_1", md("a", "s1"), "active", 1), sub("sub_2", md("a", "s1"), "active", 2)},
			res:      []Resource{subRes("a", "s1", "sub_1")},
			findings: []got{{"sub_2", duplicate}},
			managed:  map[string]int64{KindSubscription: 1},
		},
		{
			name:    "an ended predecessor is history",
			objs:    []Object{sub("sub_1", md("a", "s1"), "canceled", 1), sub("sub_2", md("a", "s1"), "active", 2)},
			res:     []Resource{subRes("a", "s1", "sub_2")},
			managed: map[string]int64{KindSubscription: 1},
		},
		{
			name:     "a create in flight: oldest claimant Managed, the next Duplicate",
			objs:     []Object{sub("sub_2", md("a", "s1"), "active", 2), sub("sub_1", md("a", "s1"), "active", 1)},
			res:      []Resource{subRes("a", "s1", "")},
			findings: []got{{"sub_2", duplicate}},
			managed:  map[string]int64{KindSubscription: 1},
		},
		{
			name:     "a live claimant while the recorded object is gone is Unexplained",
			objs:     []Object{sub("sub_2", md("a", "s1"), "active", 2)},
			res:      []Resource{subRes("a", "s1", "sub_1")},
			findings: []got{{"sub_1", missing}, {"sub_2", unexplained}},
		},
		{
			name: "drift is reported once per resource",
			objs: []Object{{Kind: KindProduct, ID: "prod_1", Metadata: md("a", "p"), Live: true},
				{Kind: KindPrice, ID: "price_1", Metadata: md("a", "p"), Live: true}},
			res: []Resource{{ID: Identity{ResourceStripePlan, "a", "p"}, Drifted: true, DriftSince: driftSince, DriftMessage: "quantity",
				Refs: []Ref{{Kind: KindProduct, ID: "prod_1"}, {Kind: KindPrice, ID: "price_1"}}}},
			findings:  []got{{"prod_1", drifted}},
			managed:   map[string]int64{KindPrice: 1},
			wantSince: map[string]time.Time{"prod_1": driftSince},
		},
		{
			name: "previous prices are Managed while they exist and never Missing",
			objs: []Object{{Kind: KindPrice, ID: "price_old", Metadata: md("a", "p"), Live: false},
				{Kind: KindPrice, ID: "price_new", Metadata: md("a", "p"), Live: true}},
			res: []Resource{{ID: Identity{ResourceStripePlan, "a", "p"},
				Refs: []Ref{{Kind: KindPrice, ID: "price_new"}, {Kind: KindPrice, ID: "price_old", Previous: true}, {Kind: KindPrice, ID: "price_gone", Previous: true}}}},
			managed: map[string]int64{KindPrice: 2},
		},
		{
			name:     "another instance's objects are left out",
			instance: "b",
			objs: []Object{sub("sub_a", md("a", "s1", MetadataInstance, "a"), "active", 1),
				sub("sub_b", md("a", "s1", MetadataInstance, "b"), "active", 2)},
			findings: []got{{"sub_b", unexplained}},
		},
		{
			name: "objects without identity that nothing records are not ours",
			objs: []Object{sub("sub_x", map[string]string{"team": "x"}, "active", 1)},
		},
		{
			name:    "a resource re-created with a new UID still owns its object",
			objs:    []Object{sub("sub_1", md("a", "s1"), "active", 1)},
			res:     []Resource{subRes("a", "s1", "sub_1")},
			managed: map[string]int64{KindSubscription: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := tc.instance
			if inst == "" {
				inst = "default"
			}
			r := Classify(inst, tc.objs, tc.res)
			var findings []got
			for _, f := range r.Findings {
				findings = append(findings, got{f.StripeID, f.Class})
				if want, ok := tc.wantSince[f.StripeID]; ok && !f.Since.Equal(want) {
					t.Errorf("%s since %v, want %v", f.StripeID, f.Since, want)
				}
				if f.Message == "" {
					t.Errorf("%s has no message", f.StripeID)
				}
			}
			if !reflect.DeepEqual(findings, tc.findings) {
				t.Errorf("findings = %v, want %v", findings, tc.findings)
			}
			for _, k := range Kinds {
				if n := r.Counts[k][managed]; n != tc.managed[k] {
					t.Errorf("managed %s = %d, want %d", k, n, tc.managed[k])
				}
			}
			for c, want := range tc.counts {
				if n := r.Counts[KindSubscription][c]; n != want {
					t.Errorf("%s = %d, want %d", c, n, want)
				}
			}
			// Every finding is counted in its class.
			var total int64
			for _, byClass := range r.Counts {
				for c, n := range byClass {
					if c != managed && c != billingv1alpha1.BillingClassCanceledForNonPayment && c != billingv1alpha1.BillingClassCanceledByOperator {
						total += n
					}
				}
			}
			if total != int64(len(r.Findings)) {
				t.Errorf("counted %d non-Managed, listed %d", total, len(r.Findings))
			}
		})
	}
}

func TestNeedsAttention(t *testing.T) {
	for c, want := range map[billingv1alpha1.BillingClass]bool{
		managed: false, expected: false, unexplained: true, missing: true, duplicate: true, drifted: true,
	} {
		if NeedsAttention(c) != want {
			t.Errorf("NeedsAttention(%s) = %v", c, !want)
		}
	}
}
