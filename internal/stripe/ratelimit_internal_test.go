package stripe

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestLimiterReservesInClockOrder: a caller can be preempted between reading
// the clock and reserving. If reservations could then be made out of clock
// order, the token bucket would move its clock back and credit the same
// interval twice. Here callers start a millisecond apart and every clock
// read is followed by a random pause of up to 20 ms. 60 callers at 100/s
// with burst 1 must still take at least 59/100 s (less 1 ms for the bucket's
// float arithmetic) from the first clock read to the last grant. Timers
// never fire early, so a busy machine can only make this longer. Reading the
// clock outside the limiter's lock lets them through in about 0.42 s.
func TestLimiterReservesInClockOrder(t *testing.T) {
	l := newLimiter(100, 1)
	var once sync.Once
	var first time.Time
	l.now = func() time.Time {
		n := time.Now()
		once.Do(func() { first = n })
		time.Sleep(time.Duration(rand.IntN(20000)) * time.Microsecond)
		return n
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last time.Time
	for range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.wait(context.Background()); err != nil {
				t.Error(err)
			}
			done := time.Now()
			mu.Lock()
			if done.After(last) {
				last = done
			}
			mu.Unlock()
		}()
		time.Sleep(time.Millisecond) // spread the clock reads
	}
	wg.Wait()
	if got, want := last.Sub(first), 589*time.Millisecond; got < want {
		t.Fatalf("60 grants at 100/s (burst 1) took %v from the first clock read; want at least %v", got, want)
	}
}
