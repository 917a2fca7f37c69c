package webhookserver

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

// realisticEvent is a ~3 KiB customer.subscription.updated event.
func realisticEvent() []byte {
	items := make([]string, 0, 3)
	for i := range 3 {
		items = append(items, fmt.Sprintf(`{"id":"si_Ox%dabcdefghijk","object":"subscription_item","billing_thresholds":null,"created":1700000000,"metadata":{},"price":{"id":"price_1Ox%dabcdefghij","object":"price","active":true,"billing_scheme":"per_unit","created":1700000000,"currency":"usd","custom_unit_amount":null,"livemode":false,"lookup_key":"pro-%d","metadata":{},"nickname":null,"product":"prod_Ox%dabcdef","recurring":{"aggregate_usage":null,"interval":"month","interval_count":1,"trial_period_days":null,"usage_type":"licensed"},"tax_behavior":"unspecified","tiers_mode":null,"transform_quantity":null,"type":"recurring","unit_amount":2000,"unit_amount_decimal":"2000"},"quantity":%d,"subscription":"sub_1OxBench","tax_rates":[]}`, i, i, i, i, i+1))
	}
	return []byte(`{"id":"evt_1OxBenchEvent00001","object":"event","api_version":"2023-10-16","created":1700000000,"data":{"object":{"id":"sub_1OxBench","object":"subscription","application":null,"application_fee_percent":null,"automatic_tax":{"enabled":false},"billing_cycle_anchor":1700000000,"billing_thresholds":null,"cancel_at":null,"cancel_at_period_end":false,"canceled_at":null,"cancellation_details":{"comment":null,"feedback":null,"reason":null},"collection_method":"charge_automatically","created":1700000000,"currency":"usd","current_period_end":1702592000,"current_period_start":1700000000,"customer":"cus_OxBench","days_until_due":null,"default_payment_method":null,"default_source":null,"default_tax_rates":[],"description":null,"discount":null,"ended_at":null,"items":{"object":"list","data":[` +
		strings.Join(items, ",") +
		`],"has_more":false,"total_count":3,"url":"/v1/subscription_items?subscription=sub_1OxBench"},"latest_invoice":"in_1OxBench","livemode":false,"metadata":{"stripe-operator.io/namespace":"default","stripe-operator.io/name":"acme-pro","stripe-operator.io/uid":"6a1b2c3d-0000-4000-8000-000000000001"},"next_pending_invoice_item_invoice":null,"on_behalf_of":null,"pause_collection":null,"payment_settings":{"payment_method_options":null,"payment_method_types":null,"save_default_payment_method":"off"},"pending_invoice_item_interval":null,"pending_setup_intent":null,"pending_update":null,"schedule":null,"start_date":1700000000,"status":"active","test_clock":null,"transfer_data":null,"trial_end":null,"trial_settings":{"end_behavior":{"missing_payment_method":"create_invoice"}},"trial_start":null},"previous_attributes":{"items":{"data":[{"quantity":1}]}}},"livemode":false,"pending_webhooks":1,"request":{"id":"req_bench","idempotency_key":"so-bench"},"type":"customer.subscription.updated"}`)
}

// BenchmarkVerifyAndDecode measures, side by side in one run on the same
// payload and header, (1) HMAC-SHA256 of the signed payload alone (the
// floor), (2) this package's verification plus decoding of every field the
// operator reads, and (3) stripe-go's webhook.ConstructEvent. It reports
// ours/constructevent (goal <= 0.1) and ours/hmac (goal <= 5). The three
// are timed in rotating order within each iteration, so load on the machine
// affects them alike. The payload is a 3.8 KiB customer.subscription.updated
// with three items.
func BenchmarkVerifyAndDecode(b *testing.B) {
	payload := realisticEvent()
	secrets := [][]byte{[]byte(secretA)}
	now := time.Now()
	header := stripefake.Sign(payload, secretA, now)
	ts := []byte(strconv.FormatInt(now.Unix(), 10) + ".")
	var t [3]time.Duration
	run := [3]func(){
		func() { // HMAC-SHA256 alone
			mac := hmac.New(sha256.New, secrets[0])
			mac.Write(ts)
			mac.Write(payload)
			sink = mac.Sum(sink[:0])
		},
		func() { // ours
			if r := verify(payload, header, secrets, now, 300*time.Second); r != "" {
				b.Fatal(r)
			}
			ev, err := decodeEvent(payload)
			if err != nil || ev.Sub == nil || len(ev.Sub.Items) != 3 {
				b.Fatal("decode", err)
			}
		},
		func() { // stripe-go
			if err := stripe.ConstructEventStripeGo(payload, header, secretA); err != nil {
				b.Fatal(err)
			}
		},
	}
	// Garbage is collected between iterations, outside the timed calls,
	// so that one contender's garbage (ConstructEvent makes the most) does
	// not slow another's timed call.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%32 == 0 {
			runtime.GC()
		}
		for k := range 3 {
			j := (i + k) % 3
			s := time.Now()
			run[j]()
			t[j] += time.Since(s)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(len(payload)), "payload-bytes")
	b.ReportMetric(float64(t[0].Nanoseconds())/n, "hmac-ns/op")
	b.ReportMetric(float64(t[1].Nanoseconds())/n, "ours-ns/op")
	b.ReportMetric(float64(t[2].Nanoseconds())/n, "constructevent-ns/op")
	b.ReportMetric(float64(t[1])/float64(t[2]), "ours/constructevent")
	b.ReportMetric(float64(t[1])/float64(t[0]), "ours/hmac")
}

var sink []byte

// BenchmarkHandlerEndToEnd measures the webhook path against its limits,
// side by side on the same envtest API server in the same run, at 1
// connection and at 8 connections over 8 distinct subscriptions:
//
//   - raw: a bare merge-PATCH of one subscription's status, the API
//     server's own ceiling for one write: the same write a fresh event
//     makes (its lastEvent and item quantity), on a subscription whose
//     status has the same shape (one event was applied to it first);
//   - fresh: signed events through the handler, each applied (a status
//     write, then the event-ID annotation write: two requests); every API
//     request the server makes is counted, giving
//     req/event, and the ceiling for fresh events is raw/s ÷ req/event;
//   - bare: a handler that only reads the body and verifies the signature,
//     the floor for a duplicate;
//   - duplicate: an event already applied, recognised from the cache (on
//     subscriptions of their own, so fresh events never supersede them).
//
// The four run in two interleaved rounds so that load from elsewhere on
// the machine falls on all of them alike. It reports events/s, p50 and
// p99 of each, and the ratios fresh/ceiling (goal >= 0.8), p99/ceiling
// (fresh p99 over raw p99 × req/event, goal <= 1.5) and dup/bare (goal
// >= 0.8); hack/benchratios prints them next to their limits.
func BenchmarkHandlerEndToEnd(b *testing.B) {
	t := &testing.T{}
	ctx := context.Background()
	r := newRig(t)
	const conns = 8
	var objs, rawObjs, dupObjs [conns]*billingv1alpha1.StripeSubscription
	stamp := time.Now().UnixNano() % 1e6
	for w := range conns {
		objs[w] = r.newSubscription(fmt.Sprintf("sub_bench%d_%d", stamp, w))
		rawObjs[w] = r.newSubscription(fmt.Sprintf("sub_benchraw%d_%d", stamp, w))
		dupObjs[w] = r.newSubscription(fmt.Sprintf("sub_benchdup%d_%d", stamp, w))
	}

	// Every API request the webhook server makes goes through this
	// transport; reads are served by the manager's cache.
	var apiRequests atomic.Int64
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			apiRequests.Add(1)
			return rt.RoundTrip(req)
		})
	}
	writer, err := client.New(cfg, client.Options{Scheme: scheme.Scheme, Cache: &client.CacheOptions{Reader: mgr.GetCache()}})
	if err != nil {
		b.Fatal(err)
	}
	direct, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	ours := httptest.NewServer(New(Options{Secrets: staticSecrets{[]byte(secretA)}, Client: writer, Cache: mgr.GetCache(), APIReader: direct,
		Recorder: &record.FakeRecorder{}}).Handler())
	defer ours.Close()
	secrets := [][]byte{[]byte(secretA)}
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 512<<10))
		if err != nil || verify(body, req.Header.Get("Stripe-Signature"), secrets, time.Now(), 300*time.Second) != "" {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{\"received\":true}\n")
	}))
	defer bare.Close()
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * conns}}
	post := func(url string, body []byte) error {
		req, _ := http.NewRequest(http.MethodPost, url+Path, bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", stripefake.Sign(body, secretA, time.Now()))
		resp, err := httpc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST %s: %s", url, resp.Status)
		}
		return nil
	}

	base := time.Now().Unix()
	var seq [conns]int64
	fresh := func(w int) error {
		seq[w]++
		n := seq[w]
		return post(ours.URL, subEvent(fmt.Sprintf("evt_bench%d_%d_%d", stamp, w, n), "customer.subscription.updated",
			base+n, objs[w], "active", n%5+1, true, "2023-10-16"))
	}
	var dups [conns][]byte
	for w := range conns {
		dups[w] = subEvent(fmt.Sprintf("evt_benchdup%d_%d", stamp, w), "customer.subscription.updated", base, dupObjs[w], "active", 1, true, "2023-10-16")
	}
	raw := func(w int) error {
		seq[w]++
		n := seq[w]
		patch := fmt.Sprintf(`{"status":{"items":[{"itemID":"si_1","priceID":"price_test1","quantity":%d}],"lastEvent":{"id":"evt_raw%d_%d","created":%d}}}`,
			n%5+1, w, n, base+n)
		return writer.Status().Patch(ctx, rawObjs[w].DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))
	}
	// The raw subscriptions get the status shape an applied event gives.
	for w := range conns {
		if err := post(ours.URL, subEvent(fmt.Sprintf("evt_benchrawinit%d_%d", stamp, w), "customer.subscription.updated", base, rawObjs[w], "active", 1, true, "2023-10-16")); err != nil {
			b.Fatal(err)
		}
	}

	for i := 0; i < b.N; i++ {
		var res [2]map[string]*phase
		for c := range res {
			res[c] = map[string]*phase{}
		}
		var freshRequests, freshEvents int64
		for round := range 2 {
			for ci, n := range []int{1, conns} {
				add := func(name string, op func(w int) error) {
					p := res[ci][name]
					if p == nil {
						p = &phase{}
						res[ci][name] = p
					}
					if err := p.drive(n, 1500*time.Millisecond, op); err != nil {
						b.Fatal(err)
					}
				}
				add("raw", raw)
				before := apiRequests.Load()
				add("fresh", fresh)
				freshRequests += apiRequests.Load() - before
				if round == 0 && ci == 0 {
					// The duplicates were applied once, and the cache
					// has seen them, before they are measured.
					for w := range conns {
						if err := post(ours.URL, dups[w]); err != nil {
							b.Fatal(err)
						}
					}
					time.Sleep(200 * time.Millisecond)
				}
				add("bare", func(w int) error { return post(bare.URL, dups[w]) })
				add("duplicate", func(w int) error { return post(ours.URL, dups[w]) })
			}
		}
		for ci := range res {
			freshEvents += int64(len(res[ci]["fresh"].lat))
		}
		perEvent := float64(freshRequests) / float64(freshEvents)
		b.ReportMetric(perEvent, "req/event")
		for ci, label := range []string{"1conn", "8conn"} {
			p := res[ci]
			for _, name := range []string{"raw", "fresh", "bare", "duplicate"} {
				b.ReportMetric(p[name].rate(), name+"-"+label+"-ops/s")
				b.ReportMetric(p[name].quantile(0.99), name+"-"+label+"-p99-ms")
			}
			b.ReportMetric(p["fresh"].quantile(0.5), "fresh-"+label+"-p50-ms")
			b.ReportMetric(p["fresh"].rate()/(p["raw"].rate()/perEvent), "fresh/ceiling-"+label)
			b.ReportMetric(p["fresh"].quantile(0.99)/(p["raw"].quantile(0.99)*perEvent), "p99/ceiling-"+label)
			b.ReportMetric(p["duplicate"].rate()/p["bare"].rate(), "dup/bare-"+label)
		}
	}
}

// phase accumulates the latencies and time of one kind of operation.
type phase struct {
	lat     []time.Duration
	elapsed time.Duration
}

// drive runs op on n goroutines (worker w uses op(w)) for about d.
func (p *phase) drive(n int, d time.Duration, op func(w int) error) error {
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for time.Now().Before(deadline) {
				s := time.Now()
				if err := op(w); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					return
				}
				lat = append(lat, time.Since(s))
			}
			mu.Lock()
			p.lat = append(p.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	p.elapsed += time.Since(start)
	return firstErr
}

func (p *phase) rate() float64 { return float64(len(p.lat)) / p.elapsed.Seconds() }

// quantile is the q-quantile latency in milliseconds.
func (p *phase) quantile(q float64) float64 {
	sort.Slice(p.lat, func(i, j int) bool { return p.lat[i] < p.lat[j] })
	return float64(p.lat[int(q*float64(len(p.lat)-1))].Microseconds()) / 1000
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
