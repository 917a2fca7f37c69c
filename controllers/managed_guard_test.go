package controllers

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// stripeWriteCall matches a call of a Stripe client write method on a
// reconciler's client (r.Stripe.UpdateSubscription, x.r.Stripe.Delete...).
var stripeWriteCall = regexp.MustCompile(`\.Stripe\.(Create|Update|Delete|Cancel|Attach|Release)[A-Za-z]*\(`)

// backendWriteCall matches a write through the guard's own backend.
var backendWriteCall = regexp.MustCompile(`\.b\.(api|endpoints)\.(Create|Update|Delete|Cancel|Attach|Release)[A-Za-z]*\(`)

// TestStripeWritesGoThroughTheGuard: no code of this package writes to
// Stripe except through a pass's guardedWrites (managed_guard.go), so no
// kind can reach an unbound or foreign Stripe object for a write.
func TestStripeWritesGoThroughTheGuard(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for i, line := range strings.Split(string(src), "\n") {
			if stripeWriteCall.MatchString(line) {
				t.Errorf("%s:%d writes to Stripe around the core's guard (use the pass's writes): %s", f, i+1, strings.TrimSpace(line))
			}
			if f != "managed_guard.go" && backendWriteCall.MatchString(line) {
				t.Errorf("%s:%d writes through the guard's backend directly: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d files; run from the controllers package", checked)
	}
}
