package stripefake

import (
	"net/url"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// newPayingSubscription makes a customer paying with pm_card_visa, a
// monthly 10.00 USD price and an active subscription on it.
func newPayingSubscription(t *testing.T, s *Server) (customer, price, sub string) {
	t.Helper()
	g := NewWithT(t)
	cus := call(t, s, "POST", "/v1/customers", "", url.Values{})
	g.Expect(cus.status).To(Equal(200))
	customer = str(cus.body, "id")
	_, err := s.DashboardSetDefaultPaymentMethod(customer, pmVisa)
	g.Expect(err).NotTo(HaveOccurred())
	prod := call(t, s, "POST", "/v1/products", "", url.Values{"name": {"p"}})
	pr := call(t, s, "POST", "/v1/prices", "", url.Values{"product": {str(prod.body, "id")}, "currency": {"usd"},
		"unit_amount": {"1000"}, "recurring[interval]": {"month"}})
	g.Expect(pr.status).To(Equal(200))
	price = str(pr.body, "id")
	created := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {customer}, "items[0][price]": {price}})
	g.Expect(created.status).To(Equal(200))
	g.Expect(str(created.body, "status")).To(Equal("active"))
	return customer, price, str(created.body, "id")
}

func chargesOf(s *Server, sub string) []Charge {
	var out []Charge
	for _, c := range s.Charges() {
		if c.Subscription == sub {
			out = append(out, c)
		}
	}
	return out
}

// TestDunningEndsAsTheAccountSays: when the last retry of a renewal fails,
// the subscription is canceled (the default, cancellation_details.reason
// payment_failed), marked unpaid, or left past_due; an unpaid
// subscription's later invoices are never attempted.
func TestDunningEndsAsTheAccountSays(t *testing.T) {
	for _, tc := range []struct {
		setting, status, reason string
	}{
		{"", "canceled", "payment_failed"},
		{DunningCancel, "canceled", "payment_failed"},
		{DunningUnpaid, "unpaid", ""},
		{DunningPastDue, "past_due", ""},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			g := NewWithT(t)
			s := NewTestServer(t, Options{RateLimit: -1, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
			if tc.setting != "" {
				g.Expect(s.SetDunningEnd(tc.setting)).To(Succeed())
			}
			customer, _, sub := newPayingSubscription(t, s)
			_, err := s.DashboardSetDefaultPaymentMethod(customer, pmCustomerFail)
			g.Expect(err).NotTo(HaveOccurred())
			s.AdvanceClock(31*24*time.Hour + time.Hour) // the renewal (January has 31 days) fails
			snap, _ := s.Subscription(sub)
			g.Expect(snap.Status).To(Equal("past_due"))
			s.AdvanceClock(10 * 24 * time.Hour) // 3 retries, 3 days apart
			snap, _ = s.Subscription(sub)
			g.Expect(snap.Status).To(Equal(tc.status))
			g.Expect(snap.CancellationReason).To(Equal(tc.reason))
			got := call(t, s, "GET", "/v1/subscriptions/"+sub, "", nil)
			g.Expect(str(got.body, "cancellation_details", "reason")).To(Equal(tc.reason))
			failed := len(chargesOf(s, sub))
			g.Expect(failed).To(Equal(1+maxAttempts), "the creation's charge and the renewal's %d attempts", maxAttempts)

			// Two more periods.
			s.AdvanceClock(62 * 24 * time.Hour)
			after := chargesOf(s, sub)
			switch tc.status {
			case "canceled", "unpaid":
				g.Expect(after).To(HaveLen(failed), "Stripe charges neither a canceled nor an unpaid subscription")
			case "past_due":
				g.Expect(len(after)).To(BeNumerically(">", failed), "a past_due subscription keeps billing")
			}
			if tc.status == "unpaid" {
				snap, _ = s.Subscription(sub)
				g.Expect(snap.Invoices).To(HaveLen(4), "invoices keep being generated")
				g.Expect(snap.LatestInvoice.Status).To(Equal("open"))
				g.Expect(snap.LatestInvoice.AttemptCount).To(BeZero())
			}
		})
	}
}

// TestCancellationDetailsOnEveryCancel: a cancel through the API or the
// Dashboard, and a scheduled cancellation, record
// cancellation_requested with the request's comment.
func TestCancellationDetailsOnEveryCancel(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	_, _, a := newPayingSubscription(t, s)
	// stripe-go sends a DELETE's parameters in the query string.
	res := call(t, s, "DELETE", "/v1/subscriptions/"+a+"?"+url.Values{"cancellation_details[comment]": {"by the operator"}}.Encode(), "", nil)
	g.Expect(res.status).To(Equal(200))
	g.Expect(str(res.body, "cancellation_details", "reason")).To(Equal("cancellation_requested"))
	g.Expect(str(res.body, "cancellation_details", "comment")).To(Equal("by the operator"))

	_, _, b := newPayingSubscription(t, s)
	g.Expect(s.DashboardCancelSubscription(b)).To(Succeed())
	snap, _ := s.Subscription(b)
	g.Expect(snap.CancellationReason).To(Equal("cancellation_requested"))

	_, _, c := newPayingSubscription(t, s)
	res = call(t, s, "POST", "/v1/subscriptions/"+c, "", url.Values{"cancel_at_period_end": {"true"}, "cancellation_details[comment]": {"declared"}})
	g.Expect(str(res.body, "cancellation_details", "reason")).To(Equal("cancellation_requested"))
	g.Expect(str(res.body, "cancellation_details", "comment")).To(Equal("declared"))
	res = call(t, s, "POST", "/v1/subscriptions/"+c, "", url.Values{"cancel_at_period_end": {"false"}})
	g.Expect(str(res.body, "cancellation_details", "reason")).To(BeEmpty(), "resuming clears it")
}

// TestPaymentBehaviorOnUpdate: an update that invoices at once
// (always_invoice) follows payment_behavior when the card declines.
func TestPaymentBehaviorOnUpdate(t *testing.T) {
	for _, behavior := range []string{"allow_incomplete", "error_if_incomplete", "default_incomplete", "pending_if_incomplete"} {
		t.Run(behavior, func(t *testing.T) {
			g := NewWithT(t)
			s := NewTestServer(t, Options{RateLimit: -1})
			customer, _, sub := newPayingSubscription(t, s)
			s.AdvanceClock(24 * time.Hour)
			_, err := s.DashboardSetDefaultPaymentMethod(customer, pmCustomerFail)
			g.Expect(err).NotTo(HaveOccurred())
			item := s.subs[sub].items[0].id
			before := len(chargesOf(s, sub))
			res := call(t, s, "POST", "/v1/subscriptions/"+sub, "", url.Values{"items[0][id]": {item}, "items[0][quantity]": {"3"},
				"proration_behavior": {"always_invoice"}, "payment_behavior": {behavior}})
			snap, _ := s.Subscription(sub)
			switch behavior {
			case "error_if_incomplete":
				g.Expect(res.status).To(Equal(402))
				g.Expect(str(res.body, "error", "type")).To(Equal("card_error"))
				g.Expect(snap.Items[0].Quantity).To(Equal(int64(1)), "nothing applied")
				g.Expect(snap.Invoices).To(HaveLen(1), "no invoice")
				g.Expect(snap.Status).To(Equal("active"))
				g.Expect(s.Charges()[len(s.Charges())-1].Succeeded).To(BeFalse())
				g.Expect(len(s.Charges())).To(Equal(before+1), "the declined attempt reached the card")
			case "pending_if_incomplete":
				g.Expect(res.status).To(Equal(200))
				g.Expect(snap.Items[0].Quantity).To(Equal(int64(1)), "the change waits in pending_update")
				g.Expect(res.body["pending_update"]).NotTo(BeNil())
				g.Expect(snap.Status).To(Equal("active"))
				g.Expect(chargesOf(s, sub)).To(HaveLen(before + 1))
			case "default_incomplete":
				g.Expect(res.status).To(Equal(200))
				g.Expect(snap.Items[0].Quantity).To(Equal(int64(3)))
				g.Expect(snap.Status).To(Equal("past_due"))
				g.Expect(chargesOf(s, sub)).To(HaveLen(before), "the payment awaits confirmation")
			default:
				g.Expect(res.status).To(Equal(200))
				g.Expect(snap.Items[0].Quantity).To(Equal(int64(3)))
				g.Expect(snap.Status).To(Equal("past_due"))
				g.Expect(chargesOf(s, sub)).To(HaveLen(before + 1))
			}
		})
	}
}

// TestRenewalInvoiceStaysDraftForAnHour: a renewal invoice is a draft, not
// charged, for an hour; then it is finalized and charged.
func TestRenewalInvoiceStaysDraftForAnHour(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	_, _, sub := newPayingSubscription(t, s)
	s.AdvanceClock(31*24*time.Hour + 30*time.Minute)
	snap, _ := s.Subscription(sub)
	g.Expect(snap.Invoices).To(HaveLen(2))
	g.Expect(snap.LatestInvoice.Status).To(Equal("draft"))
	g.Expect(chargesOf(s, sub)).To(HaveLen(1), "only the first invoice is charged so far")
	s.AdvanceClock(31 * time.Minute)
	snap, _ = s.Subscription(sub)
	g.Expect(snap.LatestInvoice.Status).To(Equal("paid"))
	g.Expect(chargesOf(s, sub)).To(HaveLen(2))
}

// TestIntervalChangeFollowsPaymentBehavior: an interval change invoices the
// new period at once, and that invoice's payment follows payment_behavior
// like any other update's: allow_incomplete charges and leaves the
// subscription past_due when the card declines; default_incomplete does not
// charge; error_if_incomplete answers 402 and applies nothing.
func TestIntervalChangeFollowsPaymentBehavior(t *testing.T) {
	for _, behavior := range []string{"allow_incomplete", "default_incomplete", "error_if_incomplete"} {
		t.Run(behavior, func(t *testing.T) {
			g := NewWithT(t)
			s := NewTestServer(t, Options{RateLimit: -1})
			customer, price, sub := newPayingSubscription(t, s)
			yearly := call(t, s, "POST", "/v1/prices", "", url.Values{"product": {s.prices[price].product}, "currency": {"usd"},
				"unit_amount": {"10000"}, "recurring[interval]": {"year"}})
			g.Expect(yearly.status).To(Equal(200))
			s.AdvanceClock(24 * time.Hour)
			_, err := s.DashboardSetDefaultPaymentMethod(customer, pmCustomerFail)
			g.Expect(err).NotTo(HaveOccurred())
			item := s.subs[sub].items[0].id
			before := len(chargesOf(s, sub))
			res := call(t, s, "POST", "/v1/subscriptions/"+sub, "", url.Values{"items[0][id]": {item}, "items[0][price]": {str(yearly.body, "id")},
				"payment_behavior": {behavior}})
			snap, _ := s.Subscription(sub)
			switch behavior {
			case "error_if_incomplete":
				g.Expect(res.status).To(Equal(402))
				g.Expect(snap.Items[0].Price).To(Equal(price), "nothing applied")
				g.Expect(snap.Status).To(Equal("active"))
			case "default_incomplete":
				g.Expect(res.status).To(Equal(200))
				g.Expect(snap.Status).To(Equal("past_due"))
				g.Expect(chargesOf(s, sub)).To(HaveLen(before), "the payment awaits confirmation")
			default:
				g.Expect(res.status).To(Equal(200))
				g.Expect(snap.Status).To(Equal("past_due"), "a declined interval change leaves the subscription past_due")
				g.Expect(chargesOf(s, sub)).To(HaveLen(before + 1))
			}
		})
	}
}
