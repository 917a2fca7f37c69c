// Command benchratios reads `go test -bench` output on stdin, copies it to
// stdout as it comes, and at the end prints every ratio the benchmarks
// reported next to its limit (issues 11, 14 and 20), in one table:
//
//	go test -run '^$' -bench . ./... | go run ./hack/benchratios
//
// The limits live here, in one place; each benchmark reports its measured
// side-by-side ratio as a metric. A ratio whose benchmark did not run is
// listed as not measured. It exits non-zero only when its input is
// unreadable: a benchmark is a measurement, not a test.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// limit is one ratio and its goal.
type limit struct {
	bench, unit string // benchmark name (without -GOMAXPROCS) and metric unit
	what        string
	atMost      bool // the goal is measured <= value; otherwise >=
	value       float64
	issue       string
}

var limits = []limit{
	{"BenchmarkVerifyAndDecode", "ours/constructevent", "verify+decode ÷ stripe-go ConstructEvent", true, 0.1, "11"},
	{"BenchmarkVerifyAndDecode", "ours/hmac", "verify+decode ÷ HMAC-SHA256 alone", true, 5, "11"},
	{"BenchmarkHandlerEndToEnd", "req/event", "API requests per fresh event", true, 2, "14"},
	{"BenchmarkHandlerEndToEnd", "fresh/ceiling-1conn", "fresh events/s ÷ (raw PATCH/s ÷ req/event), 1 connection", false, 0.8, "14"},
	{"BenchmarkHandlerEndToEnd", "fresh/ceiling-8conn", "fresh events/s ÷ (raw PATCH/s ÷ req/event), 8 connections", false, 0.8, "14"},
	{"BenchmarkHandlerEndToEnd", "p99/ceiling-1conn", "fresh p99 ÷ (raw PATCH p99 × req/event), 1 connection", true, 1.5, "14"},
	{"BenchmarkHandlerEndToEnd", "p99/ceiling-8conn", "fresh p99 ÷ (raw PATCH p99 × req/event), 8 connections", true, 1.5, "14"},
	{"BenchmarkHandlerEndToEnd", "dup/bare-1conn", "duplicates/s ÷ bare verifying handler/s, 1 connection", false, 0.8, "14"},
	{"BenchmarkHandlerEndToEnd", "dup/bare-8conn", "duplicates/s ÷ bare verifying handler/s, 8 connections", false, 0.8, "14"},
	{"BenchmarkSubscriptionConverge", "x-bound", "time to converge ÷ the limiter's bound for the creates", true, 1.02, "14"},
	{"BenchmarkSubscriptionConverge", "calls/sub", "Stripe calls per new subscription", true, 1.01, "14"},
	{"BenchmarkResyncByListing", "x-bound-issue", "Stripe calls of a resync of 20 customers, 2 plans, 200 subscriptions ÷ (N/100 + 5)", true, 1, "20"},
	{"BenchmarkResyncByListing", "x-bound-large", "Stripe calls of a resync of BENCH_RESYNC_LARGE (100 customers, 10 plans, 1,000 subscriptions) ÷ (N/100 + 5)", true, 1, "20"},
	{"BenchmarkManagerRSS", "x-limit-100MiB", "manager RSS ÷ 100 MiB after the first full pass (at 10,000 subscriptions + 1,000 customers)", true, 1, "14"},
}

// A benchmark result line: name, iterations, then value-unit pairs.
var resultLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func main() {
	measured := map[string]float64{} // bench + " " + unit
	extra := map[string]string{}     // bench -> other metrics worth showing
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		line := in.Text()
		fmt.Fprintln(out, line)
		out.Flush()
		m := resultLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		// Sub-benchmarks (name/sub) count under their parent's name.
		name, _, _ := strings.Cut(m[1], "/")
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			measured[name+" "+f[i+1]] = v
			if name == "BenchmarkManagerRSS" && (f[i+1] == "RSS-MiB" || f[i+1] == "MiB/1k-objects" || f[i+1] == "subscriptions") {
				extra[name] += fmt.Sprintf(" %s %s", f[i], f[i+1])
			}
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "benchratios:", err)
		os.Exit(1)
	}
	report(out, measured, extra)
	out.Flush()
}

func report(w io.Writer, measured map[string]float64, extra map[string]string) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios against their limits (measured side by side in this run):")
	fmt.Fprintf(w, "%-6s %-30s %-20s %10s %-9s %-12s %s\n", "issue", "benchmark", "ratio", "measured", "limit", "verdict", "what")
	for _, l := range limits {
		op := ">="
		if l.atMost {
			op = "<="
		}
		v, ok := measured[l.bench+" "+l.unit]
		verdict, value := "not measured", "-"
		if ok {
			value = strconv.FormatFloat(v, 'f', 3, 64)
			verdict = "met"
			if (l.atMost && v > l.value) || (!l.atMost && v < l.value) {
				verdict = "NOT MET"
			}
		}
		fmt.Fprintf(w, "%-6s %-30s %-20s %10s %-9s %-12s %s\n", "#"+l.issue, l.bench, l.unit, value, op+" "+strconv.FormatFloat(l.value, 'g', -1, 64), verdict, l.what)
	}
	if e := extra["BenchmarkManagerRSS"]; e != "" {
		fmt.Fprintf(w, "BenchmarkManagerRSS:%s (the 100 MiB limit applies at BENCH_MEM_N=10000)\n", e)
	}
}
