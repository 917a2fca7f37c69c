package stripefake

import "time"

// Test clocks (https://docs.stripe.com/billing/testing/test-clocks and
// https://docs.stripe.com/api/test_clocks). A customer created with
// test_clock belongs to that clock; advancing the clock runs everything due
// on its objects (renewals, payment retries, trial ends); deleting it
// deletes its customers and so ends their subscriptions. Advancing is
// asynchronous in Stripe: the advance call answers status "advancing" and the
// clock reads "ready" once done.
//
// Known difference: the fake has one clock for everything. Advancing any test
// clock by d moves the whole fake (and every other test clock) by d; Stripe
// keeps each clock's objects separate. Stripe's limit on how far one advance
// may go (two intervals of the shortest subscription on the clock) is not
// modelled.
type testClock struct {
	id, name   string
	frozenTime int64
	created    int64
	deleted    bool
}

func (t *testClock) json(status string) map[string]any {
	return map[string]any{"id": t.id, "object": "test_helpers.test_clock", "created": t.created,
		"deletes_after": t.created + 30*24*3600, "frozen_time": t.frozenTime, "livemode": false,
		"name": nullable(t.name), "status": status}
}

func (s *Server) createTestClock(r *request) (any, *apiError) {
	ft, ok, err := r.int("frozen_time")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalid("frozen_time", "Missing required param: frozen_time.")
	}
	name, _ := r.str("name")
	t := &testClock{id: s.newID("clock"), name: name, frozenTime: ft, created: s.now.Unix()}
	s.testClocks[t.id] = t
	return t.json("ready"), nil
}

func (s *Server) getTestClock(id string) (any, *apiError) {
	t, ok := s.testClocks[id]
	if !ok || t.deleted {
		return nil, missing("test_helpers.test_clock", id)
	}
	return t.json("ready"), nil
}

func (s *Server) advanceTestClock(r *request, id string) (any, *apiError) {
	t, ok := s.testClocks[id]
	if !ok || t.deleted {
		return nil, missing("test_helpers.test_clock", id)
	}
	to, ok, err := r.int("frozen_time")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalid("frozen_time", "Missing required param: frozen_time.")
	}
	if to <= t.frozenTime {
		return nil, invalid("frozen_time", "The frozen_time must be after the test clock's current frozen_time (%d).", t.frozenTime)
	}
	d := time.Duration(to-t.frozenTime) * time.Second
	for _, other := range s.testClocks {
		other.frozenTime += int64(d / time.Second)
	}
	s.advanceLocked(d)
	return t.json("advancing"), nil
}

func (s *Server) deleteTestClock(r *request, id string) (any, *apiError) {
	t, ok := s.testClocks[id]
	if !ok || t.deleted {
		return nil, missing("test_helpers.test_clock", id)
	}
	for _, cid := range s.order["customer"] {
		if c := s.customers[cid]; c.testClock == id && !c.deleted {
			if _, err := s.deleteCustomer(r, cid); err != nil {
				return nil, err
			}
		}
	}
	t.deleted = true
	return map[string]any{"id": id, "object": "test_helpers.test_clock", "deleted": true}, nil
}

// TestClockIDs lists the test clocks that have not been deleted.
func (s *Server) TestClockIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, t := range s.testClocks {
		if !t.deleted {
			out = append(out, id)
		}
	}
	return out
}
