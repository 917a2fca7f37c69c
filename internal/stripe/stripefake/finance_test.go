package stripefake

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func listData(t *testing.T, s *Server, path string, q url.Values) []map[string]any {
	t.Helper()
	res := call(t, s, "GET", path+"?"+q.Encode(), "", nil)
	NewWithT(t).Expect(res.status).To(Equal(200), "%s: %v", path, res.body)
	var out []map[string]any
	for _, d := range res.body["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

func ids(objs []map[string]any) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o["id"].(string))
	}
	return out
}

// TestInvoiceListFiltersWriteOffsVoidsAndRefunds: the invoice list filters
// by created and status; an open invoice can be written off (retries stop,
// a past_due subscription is active again) and then voided; a paid
// invoice's charge can be refunded in parts, never beyond what it charged;
// refunds list by created with their charge expanded.
func TestInvoiceListFiltersWriteOffsVoidsAndRefunds(t *testing.T) {
	g := NewWithT(t)
	start := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	s := NewTestServer(t, Options{RateLimit: -1, Start: start})
	g.Expect(s.SetDunningEnd(DunningPastDue)).To(Succeed())
	customer, _, sub := newPayingSubscription(t, s)
	first := s.Invoices()[0]
	g.Expect(first.Status).To(Equal("paid"))

	// The renewal a month later fails: the card declines from now on.
	_, err := s.DashboardSetDefaultPaymentMethod(customer, pmCustomerFail)
	g.Expect(err).NotTo(HaveOccurred())
	s.AdvanceClock(31*24*time.Hour + 2*time.Hour)
	snap, _ := s.Subscription(sub)
	g.Expect(snap.Status).To(Equal("past_due"))
	renewal := snap.LatestInvoice
	g.Expect(renewal.Status).To(Equal("open"))

	// created and status filters.
	april := strconv.FormatInt(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).Unix(), 10)
	g.Expect(ids(listData(t, s, "/v1/invoices", url.Values{"created[gte]": {april}}))).To(Equal([]string{renewal.ID}))
	g.Expect(ids(listData(t, s, "/v1/invoices", url.Values{"created[lt]": {april}}))).To(Equal([]string{first.ID}))
	g.Expect(ids(listData(t, s, "/v1/invoices", url.Values{"status": {"paid"}}))).To(Equal([]string{first.ID}))
	g.Expect(ids(listData(t, s, "/v1/invoices", url.Values{"status": {"open"}, "customer": {customer}}))).To(Equal([]string{renewal.ID}))
	g.Expect(call(t, s, "GET", "/v1/invoices?status=unpaid", "", nil).status).To(Equal(400))

	// Writing the renewal off: uncollectible, no more retries, the
	// subscription active again.
	g.Expect(call(t, s, "POST", "/v1/invoices/"+first.ID+"/mark_uncollectible", "", url.Values{}).status).To(Equal(400), "a paid invoice")
	res := call(t, s, "POST", "/v1/invoices/"+renewal.ID+"/mark_uncollectible", "", url.Values{})
	g.Expect(res.status).To(Equal(200))
	g.Expect(str(res.body, "status")).To(Equal("uncollectible"))
	g.Expect(res.body["next_payment_attempt"]).To(BeNil())
	snap, _ = s.Subscription(sub)
	g.Expect(snap.Status).To(Equal("active"))
	attempts := len(chargesOf(s, sub))
	s.AdvanceClock(10 * 24 * time.Hour)
	g.Expect(chargesOf(s, sub)).To(HaveLen(attempts), "an uncollectible invoice is not retried")
	// Then voided; void is final.
	g.Expect(call(t, s, "POST", "/v1/invoices/"+renewal.ID+"/void", "", url.Values{}).status).To(Equal(200))
	g.Expect(call(t, s, "POST", "/v1/invoices/"+renewal.ID+"/void", "", url.Values{}).status).To(Equal(400))
	g.Expect(call(t, s, "POST", "/v1/invoices/"+first.ID+"/void", "", url.Values{}).status).To(Equal(400), "a paid invoice")

	// Refunds of the first invoice's charge: 3.00, then too much, then the
	// rest, then nothing is left.
	inv := call(t, s, "GET", "/v1/invoices/"+first.ID, "", nil)
	charge := str(inv.body, "charge")
	g.Expect(charge).To(HavePrefix("ch_"))
	r1 := call(t, s, "POST", "/v1/refunds", "", url.Values{"charge": {charge}, "amount": {"300"}})
	g.Expect(r1.status).To(Equal(200))
	g.Expect(str(r1.body, "status")).To(Equal("succeeded"))
	g.Expect(call(t, s, "POST", "/v1/refunds", "", url.Values{"charge": {charge}, "amount": {"701"}}).status).To(Equal(400))
	r2 := call(t, s, "POST", "/v1/refunds", "", url.Values{"payment_intent": {"pi_" + first.ID[len("in_"):]}})
	g.Expect(r2.status).To(Equal(200))
	g.Expect(r2.body["amount"]).To(BeNumerically("==", 700))
	again := call(t, s, "POST", "/v1/refunds", "", url.Values{"charge": {charge}})
	g.Expect(again.status).To(Equal(400))
	g.Expect(str(again.body, "error", "code")).To(Equal("charge_already_refunded"))
	ch := call(t, s, "GET", "/v1/charges/"+charge, "", nil)
	g.Expect(ch.body["amount_refunded"]).To(BeNumerically("==", 1000))
	g.Expect(ch.body["refunded"]).To(BeTrue())
	// A failed charge has nothing to refund.
	failed := chargesOf(s, sub)[attempts-1]
	g.Expect(failed.Succeeded).To(BeFalse())
	g.Expect(call(t, s, "POST", "/v1/refunds", "", url.Values{"charge": {failed.ID}}).status).To(Equal(400))

	refunds := listData(t, s, "/v1/refunds", url.Values{"created[gte]": {april}, "expand[]": {"data.charge"}})
	g.Expect(ids(refunds)).To(Equal([]string{str(r2.body, "id"), str(r1.body, "id")}), "newest first")
	g.Expect(str(refunds[0], "charge", "customer")).To(Equal(customer))
	g.Expect(listData(t, s, "/v1/refunds", url.Values{"created[lt]": {april}})).To(BeEmpty())
	g.Expect(s.Refunds()).To(HaveLen(2))
}

// TestZeroAmountFirstInvoiceIsPaid: a trial's first invoice (0.00) is
// marked paid, as Stripe marks an invoice below the minimum charge.
func TestZeroAmountFirstInvoiceIsPaid(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	customer, price, _ := newPayingSubscription(t, s)
	res := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {customer}, "items[0][price]": {price}, "trial_period_days": {"7"}})
	g.Expect(res.status).To(Equal(200))
	g.Expect(str(res.body, "status")).To(Equal("trialing"))
	snap, _ := s.Subscription(str(res.body, "id"))
	g.Expect(snap.LatestInvoice.Status).To(Equal("paid"))
	g.Expect(snap.LatestInvoice.AmountDue).To(BeZero())
}
