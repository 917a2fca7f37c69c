package stripe_test

import (
	"context"
	"testing"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// listContract sends the whole-list requests (limit=100, status=all, the
// data. expansions) through the real client.
func listContract(t *testing.T, baseURL string) {
	t.Helper()
	c, err := stripe.New(stripe.Config{APIKey: "sk_test_123", BaseURL: baseURL, RateLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, run := range map[string]func() error{
		"list all customers":     func() error { return c.ListAllCustomers(ctx, func(*stripe.Customer) error { return nil }) },
		"list all products":      func() error { return c.ListAllProducts(ctx, func(*stripe.Product) error { return nil }) },
		"list all prices":        func() error { return c.ListAllPrices(ctx, func(*stripe.Price) error { return nil }) },
		"list all subscriptions": func() error { return c.ListAllSubscriptions(ctx, func(*stripe.Subscription) error { return nil }) },
	} {
		if err := run(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestContractListsStripeMock(t *testing.T) { listContract(t, startStripeMock(t)) }

func TestContractListsFake(t *testing.T) {
	listContract(t, stripefake.NewTestServer(t, stripefake.Options{RateLimit: -1}).URL())
}
