// Package memory measures the manager's resident memory with many
// resources cached (make bench). It builds the real manager binary as the
// Dockerfile does, runs it with the Go runtime settings config/manager
// ships (GOGC, GOMEMLIMIT) against envtest and the test-mode Stripe, waits
// until every resource has been reconciled once (Ready for its
// generation), and reads the process's RSS from /proc. BENCH_MEM_N is the
// number of StripeSubscriptions (default 10,000), with one StripeCustomer
// per ten subscriptions; BENCH_MEM_GOMEMLIMIT replaces the shipped
// GOMEMLIMIT (a larger deployment gets a larger memory limit);
// BENCH_MEM_PROFILE names a file for the manager's heap profile.
package memory

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

func benchN() int {
	if v, err := strconv.Atoi(os.Getenv("BENCH_MEM_N")); err == nil && v > 0 {
		return v
	}
	return 10000
}

// lastApplied makes each object carry what `kubectl apply` leaves on it,
// which the manager's cache drops.
func lastApplied(obj client.Object) {
	obj.SetAnnotations(map[string]string{corev1.LastAppliedConfigAnnotation: strings.Repeat(`{"apiVersion":"billing.stripe-operator.io/v1alpha1"}`, 12)})
}

func rssMiB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func procStatus(b *testing.B, pid int, keys ...string) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		for _, k := range keys {
			if strings.HasPrefix(l, k) {
				out = append(out, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	return out
}

// shippedRuntimeEnv returns the Go runtime environment (GO*) that
// config/manager gives the manager container, resolving a value taken from
// the container's resources as the kubelet does, so the benchmark runs the
// binary exactly as deployed. The chart ships the same (test/chart).
func shippedRuntimeEnv(b *testing.B) []string {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "manager", "manager.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			b.Fatal(err)
		}
		if d.Kind != "Deployment" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name != "manager" {
				continue
			}
			for _, e := range c.Env {
				if !strings.HasPrefix(e.Name, "GO") {
					continue
				}
				switch {
				case e.ValueFrom == nil:
					out = append(out, e.Name+"="+e.Value)
				case e.ValueFrom.ResourceFieldRef != nil:
					q, ok := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits."))]
					if !ok || !strings.HasPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits.") {
						b.Fatalf("config/manager: %s from %s, which the benchmark cannot resolve", e.Name, e.ValueFrom.ResourceFieldRef.Resource)
					}
					divisor := int64(1)
					if d := e.ValueFrom.ResourceFieldRef.Divisor; !d.IsZero() {
						divisor = d.Value()
					}
					out = append(out, fmt.Sprintf("%s=%d", e.Name, q.Value()/divisor))
				default:
					b.Fatalf("config/manager: %s has a source the benchmark cannot resolve", e.Name)
				}
			}
		}
	}
	return out
}

// scrape reads one gauge from a Prometheus text endpoint.
func scrape(b *testing.B, url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				b.Fatal(err)
			}
			return v
		}
	}
	b.Fatalf("no %s at %s", name, url)
	return 0
}

// scrapeSum adds up the samples of a Prometheus metric whose labels
// contain match; 0 while the endpoint is not up yet.
func scrapeSum(b *testing.B, url, name, match string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	sum := 0.0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, match) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			b.Fatal(err)
		}
		sum += v
	}
	return sum
}

// countReady counts, page by page, the subscriptions and customers that are
// Ready for their generation.
func countReady(b *testing.B, k client.Client, ready func([]metav1.Condition, int64) bool) int {
	ctx := context.Background()
	done := 0
	for _, list := range []client.ObjectList{&billingv1alpha1.StripeSubscriptionList{}, &billingv1alpha1.StripeCustomerList{}} {
		cont := ""
		for {
			if err := k.List(ctx, list, client.Limit(1000), client.Continue(cont)); err != nil {
				b.Fatal(err)
			}
			switch l := list.(type) {
			case *billingv1alpha1.StripeSubscriptionList:
				for i := range l.Items {
					if ready(l.Items[i].Status.Conditions, l.Items[i].Generation) {
						done++
					}
				}
			case *billingv1alpha1.StripeCustomerList:
				for i := range l.Items {
					if ready(l.Items[i].Status.Conditions, l.Items[i].Generation) {
						done++
					}
				}
			}
			if cont = list.GetContinue(); cont == "" {
				break
			}
		}
	}
	return done
}

func BenchmarkManagerRSS(b *testing.B) {
	n := benchN()
	customers := max(1, n/10)
	env, err := testenv.StartForScale()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx := context.Background()
	k := env.Client
	dir := b.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := env.WriteKubeconfig(kubeconfig); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "manager")
	// Built as the Dockerfile builds it.
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/manager")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the manager: %v\n%s", err, out)
	}
	fake := stripefake.New(stripefake.Options{RateLimit: -1})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "mem"}}
	if err := k.Create(ctx, ns); err != nil {
		b.Fatal(err)
	}
	plan := &billingv1alpha1.StripePlan{ObjectMeta: metav1.ObjectMeta{Namespace: "mem", Name: "basic"},
		Spec: billingv1alpha1.StripePlanSpec{Product: billingv1alpha1.ProductSpec{Name: "Basic"},
			Price: billingv1alpha1.PriceSpec{Currency: "usd", UnitAmount: 1000, Interval: "month", IntervalCount: 1}}}
	lastApplied(plan)
	if err := k.Create(ctx, plan); err != nil {
		b.Fatal(err)
	}
	create := func(total int, mk func(i int) client.Object) {
		var wg sync.WaitGroup
		var next atomic.Int64
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < total; i = int(next.Add(1)) - 1 {
					obj := mk(i)
					lastApplied(obj)
					if err := k.Create(ctx, obj); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	start := time.Now()
	create(customers, func(i int) client.Object {
		return &billingv1alpha1.StripeCustomer{ObjectMeta: metav1.ObjectMeta{Namespace: "mem", Name: fmt.Sprintf("c%05d", i)},
			Spec: billingv1alpha1.StripeCustomerSpec{Email: fmt.Sprintf("c%05d@example.com", i), DefaultPaymentMethod: "pm_card_visa"}}
	})
	create(n, func(i int) client.Object {
		return &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: "mem", Name: fmt.Sprintf("s%06d", i)},
			Spec: billingv1alpha1.StripeSubscriptionSpec{CustomerRef: &billingv1alpha1.LocalObjectReference{Name: fmt.Sprintf("c%05d", i%customers)},
				Items: []billingv1alpha1.SubscriptionItem{{PlanRef: &billingv1alpha1.LocalObjectReference{Name: "basic"}, Quantity: 1}}}}
	})
	b.Logf("created %d subscriptions and %d customers in %s", n, customers, time.Since(start).Round(time.Second))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	_ = l.Close()
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	pprofAddr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(bin, "--metrics-bind-address="+metricsAddr, "--metrics-secure=false", "--pprof-bind-address="+pprofAddr, "--health-probe-bind-address=0", "--webhook-bind-address=0",
		"--stripe-api-url="+srv.URL, "--stripe-rate-limit=2000", "--resync-period=1h", "--max-concurrent-reconciles=8",
		"--credentials-secret-namespace=mem", "--zap-log-level=error")
	shipped := shippedRuntimeEnv(b)
	if v := os.Getenv("BENCH_MEM_GOMEMLIMIT"); v != "" {
		// A larger deployment is given a larger memory limit (docs/memory.md
		// sizes it), which GOMEMLIMIT follows.
		shipped = slices.DeleteFunc(shipped, func(e string) bool { return strings.HasPrefix(e, "GOMEMLIMIT=") })
		shipped = append(shipped, "GOMEMLIMIT="+v)
	}
	b.Logf("Go runtime settings as config/manager ships them: %s", strings.Join(shipped, " "))
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "STRIPE_API_KEY=sk_test_memory")
	cmd.Env = append(cmd.Env, shipped...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()

	ready := func(conds []metav1.Condition, gen int64) bool {
		for _, c := range conds {
			if c.Type == billingv1alpha1.ConditionReady {
				return c.Status == metav1.ConditionTrue && c.ObservedGeneration == gen
			}
		}
		return false
	}
	// Progress is read from the manager's own gauge of Ready resources (its
	// cache), which costs it little; listing 110,000 objects every few
	// seconds would load the API server more than the manager does. The
	// API server's view is then counted once, page by page.
	limit := time.Duration(max(1, n/10000)) * 30 * time.Minute
	deadline := time.Now().Add(limit)
	lastLog := time.Now()
	for {
		done := int(scrapeSum(b, "http://"+metricsAddr+"/metrics", "stripe_operator_resources_condition_true", `condition="Ready"`))
		if done >= n+customers {
			if got := countReady(b, k, ready); got == n+customers {
				break
			} else {
				b.Logf("the manager counts %d Ready, the API server %d of %d", done, got, n+customers)
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d resources Ready after %s", done, n+customers, limit)
		}
		if time.Since(lastLog) > time.Minute {
			b.Logf("%d of %d Ready after %s", done, n+customers, time.Since(start).Round(time.Second))
			lastLog = time.Now()
		}
		time.Sleep(2 * time.Second)
	}
	pass := time.Since(start)
	time.Sleep(5 * time.Second) // let the last writes and GCs settle
	rss, err := rssMiB(cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	if path := os.Getenv("BENCH_MEM_PROFILE"); path != "" {
		// A heap profile to read with `go tool pprof -sample_index=inuse_space`.
		resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/heap?gc=1")
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(out, resp.Body)
		resp.Body.Close()
		out.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	heap := scrape(b, "http://"+metricsAddr+"/metrics", "go_memstats_heap_inuse_bytes") / (1 << 20)
	objs := float64(n + customers)
	b.ReportMetric(heap, "heap-inuse-MiB")
	b.ReportMetric(rss, "RSS-MiB")
	b.ReportMetric(rss/objs*1000, "MiB/1k-objects")
	b.ReportMetric(float64(n), "subscriptions")
	if n == 10000 {
		// The limit is set for 10,000 subscriptions + 1,000 customers.
		b.ReportMetric(rss/100, "x-limit-100MiB")
	}
	// Where the resident memory is: the binary's pages (RssFile), the Go
	// heap and stacks (RssAnon), and what the heap holds for reuse.
	status := procStatus(b, cmd.Process.Pid, "RssAnon:", "RssFile:")
	var gostats []string
	for _, m := range []string{"heap_alloc", "heap_inuse", "heap_idle", "heap_released", "stack_inuse", "next_gc"} {
		gostats = append(gostats, fmt.Sprintf("%s %.1f", m, scrape(b, "http://"+metricsAddr+"/metrics", "go_memstats_"+m+"_bytes")/(1<<20)))
	}
	b.Logf("%s; Go (MiB): %s", strings.Join(status, ", "), strings.Join(gostats, ", "))
	b.Logf("manager RSS after the first full pass over %d subscriptions + %d customers: %.1f MiB (%.2f MiB per 1,000 objects; limit 100 MiB at 10,000 + 1,000), Go heap in use %.1f MiB, pass took %s",
		n, customers, rss, rss/objs*1000, heap, pass.Round(time.Second))
	for i := 0; i < b.N; i++ {
	}
}
