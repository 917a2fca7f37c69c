// Package devenv is `make dev`: the operator's main job on an embedded
// default. It starts a real kube-apiserver + etcd (envtest) with the CRDs,
// the stateful test-mode Stripe on localhost, the manager and the webhook
// server against them (the fake delivers signed events to the webhook
// server), applies config/samples, prints what to try, and stays up until
// its context ends, then cleans up.
package devenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stripe-operator/stripe-operator/internal/app"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// Options configure the local environment.
type Options struct {
	// Dir holds the kubeconfig; default ".dev".
	Dir string
	// StripeAddr is where the test-mode Stripe listens.
	StripeAddr string
	// WebhookAddr is where the webhook server listens.
	WebhookAddr string
	// AdminAddr serves the test-clock and Dashboard controls.
	AdminAddr string
	// MetricsAddr is where the manager serves its metrics (plain HTTP);
	// "" or "0" turns them off.
	MetricsAddr string
	// SamplesDir is applied with kubectl at start; "" skips it.
	SamplesDir string
	// ResyncPeriod of the reconcilers.
	ResyncPeriod time.Duration
	// Out receives the banner; default stdout.
	Out io.Writer
}

// Env is what a running environment offers (to tests and the banner).
type Env struct {
	Kubeconfig string
	Kubectl    string
	Client     client.Client
	Fake       *stripefake.Server
	StripeURL  string
	WebhookURL string
	AdminURL   string
	// MetricsURL is the manager's metrics endpoint ("" when off).
	MetricsURL string
}

const (
	credentialsNamespace = "stripe-operator-system"
	credentialsName      = "stripe-credentials"
	webhookSecretName    = "stripe-webhook-secrets"
)

// Run starts everything, calls onReady (if set) once the samples are
// applied, and blocks until ctx ends.
func Run(ctx context.Context, o Options, onReady func(*Env)) error {
	if o.Dir == "" {
		o.Dir = ".dev"
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.ResyncPeriod == 0 {
		o.ResyncPeriod = 30 * time.Second
	}
	say := func(format string, args ...any) { fmt.Fprintf(o.Out, "dev: "+format+"\n", args...) }
	// Every port is checked before anything starts, so a busy one fails
	// in a second with the flag to change, not after the API server is up.
	if err := checkPorts(o); err != nil {
		return err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return err
	}

	say("starting kube-apiserver and etcd (envtest) with the CRDs")
	te, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() {
		say("stopping the API server")
		_ = te.Stop()
	}()
	kubeconfig, _ := filepath.Abs(filepath.Join(o.Dir, "kubeconfig"))
	if err := te.WriteKubeconfig(kubeconfig); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	defer os.Remove(kubeconfig)

	say("starting the test-mode Stripe on %s", o.StripeAddr)
	fake := stripefake.New(stripefake.Options{})
	stripeLn, err := net.Listen("tcp", o.StripeAddr)
	if err != nil {
		return fmt.Errorf("test-mode Stripe: %w", err)
	}
	go func() { _ = fake.Serve(stripeLn) }()
	defer fake.Close()

	secret := "whsec_" + randomHex(24)
	if err := createCredentials(ctx, te.Client, secret); err != nil {
		return err
	}
	webhookURL := "http://" + dialable(o.WebhookAddr) + "/webhooks/stripe"
	fake.AddWebhookEndpoint(webhookURL, secret)

	adminLn, err := net.Listen("tcp", o.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	adminSrv := &http.Server{Handler: adminHandler(fake), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = adminSrv.Serve(adminLn) }()
	defer adminSrv.Close()

	metricsAddr, metricsURL := "0", ""
	if o.MetricsAddr != "" && o.MetricsAddr != "0" {
		metricsAddr, metricsURL = o.MetricsAddr, "http://"+dialable(o.MetricsAddr)+"/metrics"
	}
	opts := app.Options{
		MetricsAddr: metricsAddr, ProbeAddr: "0", WebhookAddr: o.WebhookAddr,
		WebhookTolerance: 300 * time.Second, WebhookMaxBodyBytes: 512 << 10,
		StripeAPIURL: fake.URL(), CredentialsNamespace: credentialsNamespace, CredentialsName: credentialsName,
		WebhookSecretName: webhookSecretName,
		ResyncPeriod:      o.ResyncPeriod, RunWebhookServer: true, SkipNameValidation: true,
		AuditClock: fake.Now,
	}
	mgrCtx, stopMgr := context.WithCancel(ctx)
	defer stopMgr()
	mgrErr := make(chan error, 1)
	say("starting the manager and the webhook server on %s", o.WebhookAddr)
	go func() { mgrErr <- app.Run(mgrCtx, te.Config, opts) }()

	env := &Env{Kubeconfig: kubeconfig, Kubectl: te.KubectlPath(), Client: te.Client, Fake: fake,
		StripeURL: fake.URL(), WebhookURL: webhookURL, AdminURL: "http://" + dialable(adminLn.Addr().String()), MetricsURL: metricsURL}
	if o.SamplesDir != "" {
		say("applying %s", o.SamplesDir)
		cmd := exec.CommandContext(ctx, env.Kubectl, "--kubeconfig", kubeconfig, "apply", "-f", o.SamplesDir)
		cmd.Stdout, cmd.Stderr = o.Out, o.Out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("applying samples: %w", err)
		}
	}
	banner(o.Out, env)
	if onReady != nil {
		onReady(env)
	}
	select {
	case <-ctx.Done():
		stopMgr()
		<-mgrErr
		say("shut down")
		return nil
	case err := <-mgrErr:
		return fmt.Errorf("manager stopped: %w", err)
	}
}

func createCredentials(ctx context.Context, c client.Client, secret string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: credentialsNamespace}}
	if err := c.Create(ctx, ns); err != nil {
		return fmt.Errorf("creating namespace: %w", err)
	}
	// The API key and the signing secrets in separate Secrets, as deployed.
	for _, sec := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: credentialsNamespace, Name: credentialsName},
			StringData: map[string]string{credentials.KeyAPIKey: "sk_test_local_dev_only"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: credentialsNamespace, Name: webhookSecretName},
			StringData: map[string]string{credentials.KeyWebhookSigningSecrets: secret + "\n"}},
	} {
		if err := c.Create(ctx, sec); err != nil {
			return fmt.Errorf("creating Secret %s: %w", sec.Name, err)
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// adminHandler exposes the test clock and Dashboard-style edits.
func adminHandler(fake *stripefake.Server) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) { http.Error(w, err.Error(), http.StatusBadRequest) }
	mux.HandleFunc("POST /advance", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("by"))
		if err != nil || d <= 0 {
			fail(w, errors.New("by must be a positive duration such as 744h"))
			return
		}
		fake.AdvanceClock(d)
		fmt.Fprintf(w, "test clock now %s\n", fake.Now().UTC().Format(time.RFC3339))
	})
	mux.HandleFunc("POST /dashboard/quantity", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, err := strconv.ParseInt(q.Get("qty"), 10, 64)
		if err == nil {
			err = fake.DashboardSetItemQuantity(q.Get("sub"), q.Get("item"), n)
		}
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /dashboard/cancel", func(w http.ResponseWriter, r *http.Request) {
		if err := fake.DashboardCancelSubscription(r.URL.Query().Get("sub")); err != nil {
			fail(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /dashboard/payment-method", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		id, err := fake.DashboardSetDefaultPaymentMethod(q.Get("customer"), q.Get("pm"))
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprintln(w, "ok", id)
	})
	mux.HandleFunc("POST /dashboard/dunning", func(w http.ResponseWriter, r *http.Request) {
		// The account's "Manage failed payments" setting: what happens when
		// a renewal's retries run out (cancel, unpaid or past_due).
		if err := fake.SetDunningEnd(r.URL.Query().Get("end")); err != nil {
			fail(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, _ *http.Request) {
		for _, e := range fake.Events() {
			fmt.Fprintf(w, "%s %s %s\n", time.Unix(e.Created, 0).UTC().Format(time.RFC3339), e.ID, e.Type)
		}
	})
	return mux
}

func banner(w io.Writer, e *Env) {
	fmt.Fprintf(w, `
================================================================================
 stripe-operator is running locally (Ctrl-C stops and cleans up)

   export KUBECONFIG=%[1]s
   alias kubectl=%[2]s          # envtest's kubectl, or use your own

 Try:
   kubectl get stripe                        # customers, plans, subscriptions
   kubectl get ssub acme-pro -o yaml         # status, conditions, latest invoice
   kubectl patch ssub acme-pro --type=json -p '[{"op":"replace","path":"/spec/items/0/quantity","value":3}]'
   curl -XPOST '%[3]s/advance?by=744h'       # advance the test clock: renew, invoice, pay
   curl '%[3]s/events'                       # events the test-mode Stripe sent to the webhook server
   # watch PaymentFailed: make the card decline, then renew
   curl -XPOST "%[3]s/dashboard/payment-method?customer=$(kubectl get scus acme -o jsonpath='{.status.customerID}')&pm=pm_card_chargeCustomerFail"
   curl -XPOST '%[3]s/advance?by=744h'; kubectl get ssub
   # or declare it: kubectl patch scus acme --type=merge -p '{"spec":{"defaultPaymentMethod":"pm_card_chargeCustomerFail"}}'

 Test-mode Stripe: %[4]s   Webhooks: %[5]s
 Manager metrics:  %[6]s
================================================================================
`, e.Kubeconfig, e.Kubectl, e.AdminURL, e.StripeURL, e.WebhookURL, orOff(e.MetricsURL))
}
