package stripe

import (
	"context"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
)

var _ TestClocks = (*Client)(nil)

func toTestClock(t *stripego.TestHelpersTestClock) *TestClock {
	return &TestClock{ID: t.ID, Name: t.Name, FrozenTime: t.FrozenTime, Status: string(t.Status)}
}

// CreateTestClock implements TestClocks.
func (c *Client) CreateTestClock(ctx context.Context, name string, frozenTime time.Time) (*TestClock, error) {
	var out *TestClock
	err := c.call(ctx, "create test clock", func(ctx context.Context) error {
		p := &stripego.TestHelpersTestClockParams{FrozenTime: stripego.Int64(frozenTime.Unix())}
		if name != "" {
			p.Name = stripego.String(name)
		}
		setup(ctx, &p.Params, attemptKey(Owner{UID: "testclock"}, "test-clock-create"))
		t, err := c.sc().TestHelpersTestClocks.New(p)
		if err != nil {
			return err
		}
		out = toTestClock(t)
		return nil
	})
	return out, err
}

// GetTestClock implements TestClocks.
func (c *Client) GetTestClock(ctx context.Context, id string) (*TestClock, error) {
	var out *TestClock
	err := c.call(ctx, "get test clock", func(ctx context.Context) error {
		p := &stripego.TestHelpersTestClockParams{}
		setup(ctx, &p.Params, "")
		t, err := c.sc().TestHelpersTestClocks.Get(id, p)
		if err != nil {
			return err
		}
		out = toTestClock(t)
		return nil
	})
	return out, err
}

// AdvanceTestClock implements TestClocks. Stripe advances asynchronously:
// the clock is "advancing" until every object on it has caught up, so a
// caller polls GetTestClock until Status is "ready".
func (c *Client) AdvanceTestClock(ctx context.Context, id string, to time.Time) (*TestClock, error) {
	var out *TestClock
	err := c.call(ctx, "advance test clock", func(ctx context.Context) error {
		p := &stripego.TestHelpersTestClockAdvanceParams{FrozenTime: stripego.Int64(to.Unix())}
		setup(ctx, &p.Params, attemptKey(Owner{UID: "testclock"}, "test-clock-advance"))
		t, err := c.sc().TestHelpersTestClocks.Advance(id, p)
		if err != nil {
			return err
		}
		out = toTestClock(t)
		return nil
	})
	return out, err
}

// DeleteTestClock implements TestClocks. Stripe deletes the clock's
// customers (and so their subscriptions) with it.
func (c *Client) DeleteTestClock(ctx context.Context, id string) error {
	return c.call(ctx, "delete test clock", func(ctx context.Context) error {
		p := &stripego.TestHelpersTestClockParams{}
		setup(ctx, &p.Params, attemptKey(Owner{UID: "testclock"}, "test-clock-delete"))
		_, err := c.sc().TestHelpersTestClocks.Del(id, p)
		return err
	})
}
