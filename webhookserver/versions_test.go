package webhookserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// fixtureVars fill the placeholders of testdata/events/<version>/*.json:
// payloads in each API version's shape, written from Stripe's published
// object shapes.
type fixtureVars struct {
	Subscription, Namespace, Name, UID, EventID string
	Created, InvoiceCreated                     int64
}

func fillFixture(b []byte, v fixtureVars) []byte {
	return []byte(strings.NewReplacer(
		"{{SUBSCRIPTION}}", v.Subscription, "{{NAMESPACE}}", v.Namespace, "{{NAME}}", v.Name, "{{UID}}", v.UID,
		"{{EVENT_ID}}", v.EventID, "{{CREATED}}", strconv.FormatInt(v.Created, 10), "{{INVOICE_CREATED}}", strconv.FormatInt(v.InvoiceCreated, 10),
	).Replace(string(b)))
}

func readFixture(t *testing.T, version, name string, v fixtureVars) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "events", version, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return fillFixture(b, v)
}

// TestEveryAPIVersionThroughTheHandler posts each version's
// customer.subscription.updated and invoice.payment_failed through the
// signed handler into the API server and checks the same status results:
// the invoice is found through subscription or parent.subscription_details,
// the period from the subscription or its items, the payment intent's
// status from the event type (payloads carry no payment details).
func TestEveryAPIVersionThroughTheHandler(t *testing.T) {
	versions := []struct {
		version      string
		paymentError string // "" where the payload carries no payment details
	}{
		// Stripe never expands an event's objects: the payment intent is a
		// bare ID up to Acacia, and absent (with the includable
		// invoice.payments) from Basil on. The decline code is for the
		// reconciler's read; the event type tells the intent's status.
		{"2023-10-16", ""},
		{"2024-04-10", ""},
		{"2024-06-20", ""},
		{"2024-09-30.acacia", ""},
		{"2025-03-31.basil", ""},
		{"2025-09-30.clover", ""},
		{"2026-03-25.dahlia", ""},
		{"2026-09-30.endive", ""},
	}
	dirs, _ := filepath.Glob("testdata/events/*")
	if len(dirs) != len(versions) {
		t.Fatalf("testdata has %d versions, the test %d", len(dirs), len(versions))
	}
	for i, tc := range versions {
		t.Run(tc.version, func(t *testing.T) {
			g := NewWithT(t)
			r := newRig(t)
			obj := r.newSubscription(fmt.Sprintf("sub_Ver%d%d", i, time.Now().UnixNano()%1e6))
			v := fixtureVars{Subscription: obj.Status.SubscriptionID, Namespace: obj.Namespace, Name: obj.Name, UID: string(obj.UID),
				Created: r.now.Unix(), InvoiceCreated: r.now.Unix() - 3600}
			before := testutil.ToFloat64(byVersion.WithLabelValues(tc.version))

			v.EventID = "evt_VerSub" + strconv.Itoa(i)
			code, outcome := r.postOutcome(readFixture(t, tc.version, "customer.subscription.updated", v))
			g.Expect(code).To(Equal(200))
			g.Expect(outcome).To(Equal(OutcomeApplied))
			got := r.get(obj)
			g.Expect(got.Status.StripeStatus).To(Equal("past_due"))
			g.Expect(got.Status.CustomerID).To(Equal("cus_Fx1Acme"))
			g.Expect(got.Status.Items).To(Equal([]billingv1alpha1.ObservedItem{
				{ItemID: "si_Fx1Seats", PriceID: "price_Fx1Seat", Quantity: 3}, {ItemID: "si_Fx1Support", PriceID: "price_Fx1Support", Quantity: 1}}))
			g.Expect(got.Status.CurrentPeriodStart.Unix()).To(Equal(int64(1700000000)), "the period is kept in every version")
			g.Expect(got.Status.CurrentPeriodEnd.Unix()).To(Equal(int64(1702592000)))

			v.EventID, v.Created = "evt_VerInv"+strconv.Itoa(i), v.Created+1
			code, outcome = r.postOutcome(readFixture(t, tc.version, "invoice.payment_failed", v))
			g.Expect(code).To(Equal(200))
			g.Expect(outcome).To(Equal(OutcomeApplied), "the invoice reaches its subscription in %s", tc.version)
			got = r.get(obj)
			inv := got.Status.LatestInvoice
			g.Expect(inv).NotTo(BeNil())
			g.Expect(inv.ID).To(Equal("in_Fx1Cycle2"))
			g.Expect(inv.Status).To(Equal("open"))
			g.Expect(inv.AmountDue).To(Equal(int64(6500)))
			g.Expect(inv.PaymentError).To(Equal(tc.paymentError))
			g.Expect(inv.PaymentIntentStatus).To(Equal("requires_payment_method"))
			g.Expect(inv.Created.Unix()).To(Equal(v.InvoiceCreated))
			cond := findCond(got, billingv1alpha1.ConditionPaymentFailed)
			g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(cond.Reason).To(Equal(billingv1alpha1.ReasonPaymentDeclined))
			g.Expect(cond.Message).To(ContainSubstring("(65.00 USD)"))
			g.Expect(testutil.ToFloat64(byVersion.WithLabelValues(tc.version)) - before).To(Equal(2.0))
		})
	}
}

func TestZeroDecimalAmountInTheCondition(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_VerJpy")
	v := fixtureVars{Subscription: obj.Status.SubscriptionID, Namespace: obj.Namespace, Name: obj.Name, UID: string(obj.UID),
		EventID: "evt_VerJpy", Created: r.now.Unix(), InvoiceCreated: r.now.Unix() - 60}
	g.Expect(r.post(readFixture(t, "2025-03-31.basil", "invoice.payment_failed.jpy", v))).To(Equal(200))
	cond := findCond(r.get(obj), billingv1alpha1.ConditionPaymentFailed)
	g.Expect(cond.Message).To(ContainSubstring("(500 JPY)"))
}

func TestVersionLabelIsBounded(t *testing.T) {
	for in, want := range map[string]string{
		"2023-10-16": "2023-10-16", "2024-06-20": "2024-06-20", "2024-12-18.acacia": "2024-12-18.acacia",
		"2025-03-31.basil": "2025-03-31.basil", "2026-03-25.dahlia": "2026-03-25.dahlia",
		"2022-11-15": "other", "": "other", "2025-13-45.basil": "other", "2026-01-01.zinnia": "other", "x.basil": "other",
	} {
		if got := versionLabel(in); got != want {
			t.Errorf("versionLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPeriodFromItems(t *testing.T) {
	so := &subscriptionObject{Items: []subscriptionItem{
		{CurrentPeriodStart: 100, CurrentPeriodEnd: 400}, {CurrentPeriodStart: 200, CurrentPeriodEnd: 300}, {}}}
	if s, e := so.period(); s != 200 || e != 300 {
		t.Fatalf("period from items = %d..%d, want the item renewing first 200..300", s, e)
	}
	so.CurrentPeriodStart, so.CurrentPeriodEnd = 10, 20
	if s, e := so.period(); s != 10 || e != 20 {
		t.Fatalf("top-level period = %d..%d, want 10..20", s, e)
	}
}

// TestUndecodableEventIsCounted: an event whose object has a field of
// another type than the operator reads (as a future API version might send)
// is answered 200, changes nothing, and is counted in
// stripe_webhook_events_ignored_total{reason="undecodable_object"}, which
// the StripeWebhookEventsUndecodable alert watches.
func TestUndecodableEventIsCounted(t *testing.T) {
	g := NewWithT(t)
	r := newRig(t)
	obj := r.newSubscription("sub_undec1")
	before := testutil.ToFloat64(ignored.WithLabelValues("undecodable_object"))
	writes := r.c.writes.Load()
	body := []byte(strings.Replace(string(invoiceEvent("evt_undec1", "invoice.payment_failed", r.now.Unix(), obj, "open", "", "", 1, 0)),
		`"amount_due":4000`, `"amount_due":{"value":4000,"currency":"usd"}`, 1))
	g.Expect(string(body)).To(ContainSubstring(`"amount_due":{`))
	code, outcome := r.postOutcome(body)
	g.Expect(code).To(Equal(200))
	g.Expect(outcome).To(Equal(OutcomeIgnored))
	g.Expect(testutil.ToFloat64(ignored.WithLabelValues("undecodable_object")) - before).To(Equal(1.0))
	g.Expect(r.c.writes.Load()).To(Equal(writes))
	g.Expect(r.get(obj).Status.LatestInvoice).To(BeNil())
}
