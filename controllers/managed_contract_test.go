package controllers

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stripe-operator/stripe-operator/internal/kinds"
)

// statusWriteCall matches a persisted write of a resource's status or
// metadata: the core's own steps, or the API server client's.
var statusWriteCall = regexp.MustCompile(`\.(persistStatus|patchMeta|setCreatePending|clearCreatePending)\(|\bpatchMeta\(ctx|Status\(\)\.(Patch|Update)\(`)

// statusWriters are the files that may persist status or metadata: the
// core, and the writers of what no kind's pass owns (a plan's subscription
// count, the billing report, a billing preview's answer: neither is a
// managed kind).
var statusWriters = []string{"managed.go", "shared_create.go", "shared_patch.go", "stripeplan_counts.go", "audit_controller.go", "stripebillingpreview_controller.go"}

// TestKindsWriteStatusOnlyThroughTheCore: a kind's external client never
// persists status or annotations itself. What it records goes through the
// core's one deferred write, its create and replacement steps, its
// dropAnnotation, or recordBeforeWrite (a charge attempt counted before
// the request that can charge).
func TestKindsWriteStatusOnlyThroughTheCore(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || slices.Contains(statusWriters, f) {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for i, line := range strings.Split(string(src), "\n") {
			if statusWriteCall.MatchString(line) {
				t.Errorf("%s:%d persists status or metadata outside the core (use the deferred write, dropAnnotation or recordBeforeWrite): %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d files; run from the controllers package", checked)
	}
}

// TestNoAnonymousCapabilities: the core asks for a kind's optional
// capabilities by their names (managed.go), never by an anonymous
// interface, and reaches status without reflection.
func TestNoAnonymousCapabilities(t *testing.T) {
	src, err := os.ReadFile("managed.go")
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(src), "\n") {
		if strings.Contains(line, ".(interface{") || strings.Contains(line, "reflect.") {
			t.Errorf("managed.go:%d: %s", i+1, strings.TrimSpace(line))
		}
	}
}

// TestEveryKindIsAttached: every kind of the table (internal/kinds) has
// its controllers-side attachment (kinds.go): a reconciler setup, and the
// Stripe calls of each of its object types that the guard, the Orphan
// marker and the audit use.
func TestEveryKindIsAttached(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range kinds.All {
		seen[k.Name] = true
		a, ok := attachments[k.Name]
		if !ok || a.setup == nil {
			t.Errorf("kind %s has no reconciler setup in controllers/kinds.go", k.Name)
			continue
		}
		if len(k.StripeTypes) == 0 {
			t.Errorf("kind %s records no Stripe object type", k.Name)
		}
		for _, st := range k.StripeTypes {
			c, ok := a.stripe[st]
			if !ok || c.read == nil {
				t.Errorf("kind %s: Stripe %s has no metadata read", k.Name, st)
				continue
			}
			if k.Refs != nil && (c.updateMetadata == nil || c.list == nil || c.exists == nil) {
				t.Errorf("kind %s is audited: Stripe %s needs updateMetadata, list and exists", k.Name, st)
			}
		}
		if o := k.New(); kindOf(o) != k.Name {
			t.Errorf("kindOf(%T) = %q, want %q", o, kindOf(o), k.Name)
		}
	}
	for name := range attachments {
		if !seen[name] {
			t.Errorf("controllers/kinds.go attaches %s, which is not in the table of kinds", name)
		}
	}
}
