package webhookserver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// TestStormOfDuplicatedShuffledEvents sends 30 events about one
// subscription three times each, shuffled, 20 at a time, as Stripe's
// unordered, duplicated delivery can. Every delivery is answered 2xx (a
// conflict is retried within the budget, never a 503), the final status is
// the newest event's, and a watch on the object sees status never move
// backwards. Nothing here is timed: the retry budget is the only clock.
func TestStormOfDuplicatedShuffledEvents(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_storm1")
	t0 := r.now.Unix()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wc, err := client.NewWithWatch(env.Config, client.Options{})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := wc.Watch(ctx, &billingv1alpha1.StripeSubscriptionList{}, client.InNamespace(obj.Namespace))
	g.Expect(err).NotTo(HaveOccurred())
	defer w.Stop()
	type seen struct{ created, qty int64 }
	var (
		mu       sync.Mutex
		observed []seen
	)
	go func() {
		for e := range w.ResultChan() {
			if e.Type != watch.Modified && e.Type != watch.Added {
				continue
			}
			s, ok := e.Object.(*billingv1alpha1.StripeSubscription)
			if !ok || s.Status.LastEvent == nil || len(s.Status.Items) == 0 {
				continue
			}
			mu.Lock()
			observed = append(observed, seen{s.Status.LastEvent.Created, s.Status.Items[0].Quantity})
			mu.Unlock()
		}
	}()

	const events, copies, concurrency = 30, 3, 20
	var bodies [][]byte
	for i := 1; i <= events; i++ {
		body := subEvent(fmt.Sprintf("evt_storm%02d", i), "customer.subscription.updated", t0+int64(i), obj, "active", int64(i), true, "2023-10-16")
		for range copies {
			bodies = append(bodies, body)
		}
	}
	rand.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	work := make(chan []byte)
	var non2xx atomic.Int64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				if code := r.post(b); code < 200 || code > 299 {
					non2xx.Add(1)
					t.Errorf("delivery answered %d", code)
				}
			}
		}()
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	t.Logf("storm: %d deliveries, %d non-2xx", len(bodies), non2xx.Load())
	g.Expect(non2xx.Load()).To(BeZero())

	got := r.get(obj)
	g.Expect(got.Status.LastEvent.ID).To(Equal(fmt.Sprintf("evt_storm%02d", events)), "the newest event's state")
	g.Expect(got.Status.Items[0].Quantity).To(Equal(int64(events)))

	// The watch has seen the final state; status never moved backwards.
	g.Eventually(func() int64 {
		mu.Lock()
		defer mu.Unlock()
		if len(observed) == 0 {
			return 0
		}
		return observed[len(observed)-1].qty
	}, 30*time.Second).Should(Equal(int64(events)))
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(observed); i++ {
		if observed[i].created < observed[i-1].created || observed[i].qty < observed[i-1].qty {
			t.Fatalf("status moved backwards: %+v then %+v", observed[i-1], observed[i])
		}
	}
	t.Logf("storm: the watch saw %d status states, each newer than the last", len(observed))
}
