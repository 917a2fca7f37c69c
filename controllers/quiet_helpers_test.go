package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// Helpers for tests that assert that nothing happened. Such a test first
// waits for a positive sign that the pass it expects has run (a count of
// Stripe reads, a condition's observedGeneration, an Event) and only then
// asserts that nothing was written; a sleep proves nothing on a slow machine
// and wastes time on a fast one.

// stripeReads is the number of GET requests the test's test-mode Stripe has
// answered on routes that start with route, such as "GET /v1/customers"
// (one customer's reads, lists and searches alike).
func (h *harness) stripeReads(route string) int { return readsOf(h.fake.Stats(), route) }

// readsOf is stripeReads of a snapshot of the test-mode Stripe's counts.
func readsOf(st stripefake.Stats, route string) int {
	n := 0
	for r, c := range st.Requests {
		if strings.HasPrefix(r, route) {
			n += c
		}
	}
	return n
}

// waitStripeReads waits until Stripe has answered at least more GETs under
// route than from, and returns the count. Passes of one object never
// overlap (the work queue hands a key to one worker at a time), so two more
// reads by an object's passes mean that at least one whole pass ran after
// from was counted, its writes included.
func (h *harness) waitStripeReads(route string, from, more int) int {
	h.t.Helper()
	var n int
	NewWithT(h.t).Eventually(func() int {
		n = h.stripeReads(route)
		return n
	}, 60*time.Second, 20*time.Millisecond).Should(BeNumerically(">=", from+more), "%d more reads under %q", more, route)
	return n
}

// waitPassOfGeneration waits until a pass has reported on obj's current
// generation, whatever it found: its Ready condition carries that
// observedGeneration.
func (h *harness) waitPassOfGeneration(obj conditioned) {
	h.t.Helper()
	NewWithT(h.t).Eventually(func() error {
		if err := h.c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(obj.GetConditions(), billingv1alpha1.ConditionReady)
		if c == nil || c.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("no pass has reported on generation %d yet: %+v", obj.GetGeneration(), obj.GetConditions())
		}
		return nil
	}, 45*time.Second, 20*time.Millisecond).Should(Succeed())
}
