package stripe_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

const customerJSON = `{"id":"cus_bench","object":"customer","email":"a@example.com","name":"Acme","metadata":{"stripe-operator.io/uid":"u"},"invoice_settings":{"default_payment_method":"pm_card_visa"},"created":1700000000}`

// BenchmarkClientOverhead measures a GetCustomer through internal/stripe
// (limiter, metrics, error mapping, domain conversion) against a bare
// stripe-go call to the same local server, alternating the two in one run,
// and reports ours/bare as a ratio.
func BenchmarkClientOverhead(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, customerJSON)
	}))
	defer srv.Close()
	ours, err := stripe.New(stripe.Config{APIKey: "sk_test_bench", BaseURL: srv.URL, RateLimit: 1e9, Burst: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	bare := client.New("sk_test_bench", stripego.NewBackendsWithConfig(&stripego.BackendConfig{
		URL: stripego.String(srv.URL), LeveledLogger: &stripego.LeveledLogger{Level: stripego.LevelNull}, EnableTelemetry: stripego.Bool(false)}))
	ctx := context.Background()
	var tOurs, tBare time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := time.Now()
		if _, err := bare.Customers.Get("cus_bench", &stripego.CustomerParams{Params: stripego.Params{Context: ctx}}); err != nil {
			b.Fatal(err)
		}
		tBare += time.Since(s)
		s = time.Now()
		if _, err := ours.GetCustomer(ctx, "cus_bench"); err != nil {
			b.Fatal(err)
		}
		tOurs += time.Since(s)
	}
	b.ReportMetric(float64(tOurs.Nanoseconds())/float64(b.N), "ours-ns/op")
	b.ReportMetric(float64(tBare.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(tOurs)/float64(tBare), "ours/bare")
}
