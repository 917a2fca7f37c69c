package webhookserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// tcpProxy forwards connections to the API server and can be taken down
// (listener closed, open connections cut) and brought back on the same
// address: a real network outage as the webhook server sees it.
type tcpProxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	if err := p.up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) up() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
	return nil
}

func (p *tcpProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *tcpProxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.track(c, s)
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	_, _ = io.Copy(c, s)
	c.Close()
}

// down closes the listener and cuts every open connection.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// TestAPIServerDownAnswers503ThenRedeliveryApplies runs a webhook server
// whose manager reaches the API server only through a proxy, takes the proxy
// down (the API server is unreachable; the informer cache still answers
// reads, so the event is matched but cannot be persisted), and checks the
// answer is 503 with nothing written, then that Stripe's redelivery of the
// same event applies once the API server is reachable again.
func TestAPIServerDownAnswers503ThenRedeliveryApplies(t *testing.T) {
	g := NewWithT(t)
	host, err := url.Parse(env.Config.Host)
	g.Expect(err).NotTo(HaveOccurred())
	proxy := newTCPProxy(t, host.Host)
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://" + proxy.addr
	cfg.Timeout = 5 * time.Second

	m, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(SetupIndexes(context.Background(), m)).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	g.Expect(m.GetCache().WaitForCacheSync(ctx)).To(BeTrue())

	r := &rig{t: t, now: time.Now()}
	s := New(Options{Secrets: staticSecrets{[]byte(secretA)}, Client: m.GetClient(), Cache: m.GetCache(), APIReader: m.GetAPIReader(), Now: func() time.Time { return r.now }})
	r.srv = httptest.NewServer(s.Handler())
	t.Cleanup(r.srv.Close)

	obj := r.newSubscription("sub_down1")
	g.Eventually(func() string { // this manager's cache sees it too
		var got = obj.DeepCopy()
		_ = m.GetClient().Get(ctx, client.ObjectKeyFromObject(obj), got)
		return got.Status.SubscriptionID
	}, 10*time.Second).Should(Equal(obj.Status.SubscriptionID))
	body := subEvent("evt_down1", "customer.subscription.updated", r.now.Unix(), obj, "active", 4, true, "2023-10-16")

	proxy.down()
	g.Expect(r.post(body)).To(Equal(http.StatusServiceUnavailable))
	g.Expect(r.get(obj).Status.StripeStatus).To(BeEmpty(), "nothing was written")
	g.Expect(r.get(obj).Status.LastEvent).To(BeNil(), "no event recorded")

	g.Expect(proxy.up()).To(Succeed())
	// Stripe redelivers with backoff; the first redelivery after the API
	// server is back applies the event.
	g.Eventually(func() int { return r.post(body) }, 30*time.Second, 500*time.Millisecond).Should(Equal(http.StatusOK))
	g.Expect(r.get(obj).Status.Items[0].Quantity).To(Equal(int64(4)))
	g.Expect(r.post(body)).To(Equal(http.StatusOK), "a later duplicate is acknowledged")
}
