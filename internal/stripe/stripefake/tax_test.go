package stripefake

import (
	"net/url"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func num(m map[string]any, keys ...string) float64 {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return -1
		}
		v = mm[k]
	}
	f, _ := v.(float64)
	return f
}

// taxSetup makes a paying customer (with form's extra fields) and a
// monthly 20.00 EUR price (with taxBehavior when not "").
func taxSetup(t *testing.T, s *Server, customer url.Values, taxBehavior string) (cus, price string) {
	t.Helper()
	g := NewWithT(t)
	if customer == nil {
		customer = url.Values{}
	}
	created := call(t, s, "POST", "/v1/customers", "", customer)
	g.Expect(created.status).To(Equal(200), "%v", created.body)
	cus = str(created.body, "id")
	pm := call(t, s, "POST", "/v1/payment_methods/pm_card_visa/attach", "", url.Values{"customer": {cus}})
	g.Expect(call(t, s, "POST", "/v1/customers/"+cus, "", url.Values{"invoice_settings[default_payment_method]": {str(pm.body, "id")}}).status).To(Equal(200))
	prod := str(call(t, s, "POST", "/v1/products", "", url.Values{"name": {"Pro"}}).body, "id")
	pf := url.Values{"product": {prod}, "currency": {"eur"}, "unit_amount": {"2000"}, "recurring[interval]": {"month"}}
	if taxBehavior != "" {
		pf.Set("tax_behavior", taxBehavior)
	}
	pr := call(t, s, "POST", "/v1/prices", "", pf)
	g.Expect(pr.status).To(Equal(200), "%v", pr.body)
	return cus, str(pr.body, "id")
}

func latestInvoice(t *testing.T, s *Server, subID string) map[string]any {
	t.Helper()
	sub := call(t, s, "GET", "/v1/subscriptions/"+subID+"?expand[]=latest_invoice", "", nil)
	inv, _ := sub.body["latest_invoice"].(map[string]any)
	return inv
}

func TestTaxRatesExclusiveAndInclusive(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	cus, price := taxSetup(t, s, nil, "")
	excl := call(t, s, "POST", "/v1/tax_rates", "", url.Values{"display_name": {"VAT"}, "percentage": {"19"}, "inclusive": {"false"}})
	g.Expect(excl.status).To(Equal(200))
	g.Expect(num(excl.body, "percentage")).To(Equal(19.0))
	incl := s.CreateTaxRate("TVA", "20", true)

	sub := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {cus}, "items[0][price]": {price}, "default_tax_rates[0]": {str(excl.body, "id")}})
	g.Expect(sub.status).To(Equal(200), "%v", sub.body)
	inv := latestInvoice(t, s, str(sub.body, "id"))
	// Exclusive: 19 % of 20.00 is added.
	g.Expect(num(inv, "subtotal")).To(Equal(2000.0))
	g.Expect(num(inv, "tax")).To(Equal(380.0))
	g.Expect(num(inv, "total")).To(Equal(2380.0))
	g.Expect(num(inv, "amount_due")).To(Equal(2380.0))
	g.Expect(inv["total_tax_amounts"]).To(HaveLen(1))

	// Inclusive: the 20.00 holds 3.33 of tax; nothing is added.
	cus2, price2 := taxSetup(t, s, nil, "")
	sub2 := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {cus2}, "items[0][price]": {price2}, "default_tax_rates[0]": {incl}})
	g.Expect(sub2.status).To(Equal(200), "%v", sub2.body)
	inv2 := latestInvoice(t, s, str(sub2.body, "id"))
	g.Expect(num(inv2, "tax")).To(Equal(333.0))
	g.Expect(num(inv2, "total")).To(Equal(2000.0))
	g.Expect(num(inv2, "total_excluding_tax")).To(Equal(1667.0))
	g.Expect(num(inv2, "amount_due")).To(Equal(2000.0))
	rates, _ := sub2.body["default_tax_rates"].([]any)
	g.Expect(rates).To(HaveLen(1))
}

func TestAutomaticTaxNeedsACustomerLocation(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	cus, price := taxSetup(t, s, nil, "exclusive")
	got := call(t, s, "GET", "/v1/customers/"+cus+"?expand[]=tax", "", nil)
	g.Expect(str(got.body, "tax", "automatic_tax")).To(Equal("unrecognized_location"))
	refused := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {cus}, "items[0][price]": {price}, "automatic_tax[enabled]": {"true"}})
	g.Expect(refused.status).To(Equal(400))
	g.Expect(str(refused.body, "error", "code")).To(Equal("customer_tax_location_invalid"))
	g.Expect(s.Stats().Creates["subscription"]).To(BeZero())

	upd := call(t, s, "POST", "/v1/customers/"+cus+"?expand[]=tax", "", url.Values{"address[country]": {"DE"}, "address[postal_code]": {"10115"}})
	g.Expect(upd.status).To(Equal(200))
	g.Expect(str(upd.body, "tax", "automatic_tax")).To(Equal("supported"))
	g.Expect(str(upd.body, "address", "country")).To(Equal("DE"))
	sub := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {cus}, "items[0][price]": {price}, "automatic_tax[enabled]": {"true"}})
	g.Expect(sub.status).To(Equal(200), "%v", sub.body)
	inv := latestInvoice(t, s, str(sub.body, "id"))
	g.Expect(str(inv, "automatic_tax", "status")).To(Equal("complete"))
	g.Expect(num(inv, "tax")).To(Equal(380.0))
	g.Expect(num(inv, "amount_due")).To(Equal(2380.0))

	// The address goes: the renewal cannot be taxed and is not finalized.
	g.Expect(s.DashboardSetCustomerAddress(cus, nil)).To(Succeed())
	s.AdvanceClock(32 * 24 * time.Hour)
	inv = latestInvoice(t, s, str(sub.body, "id"))
	g.Expect(str(inv, "automatic_tax", "status")).To(Equal("requires_location_inputs"))
	g.Expect(str(inv, "status")).To(Equal("draft"))

	// Tax-inclusive price: the tax is part of the amount.
	cus3, price3 := taxSetup(t, s, url.Values{"address[country]": {"FR"}}, "inclusive")
	sub3 := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {cus3}, "items[0][price]": {price3}, "automatic_tax[enabled]": {"true"}})
	g.Expect(sub3.status).To(Equal(200), "%v", sub3.body)
	inv3 := latestInvoice(t, s, str(sub3.body, "id"))
	g.Expect(num(inv3, "tax")).To(Equal(333.0))
	g.Expect(num(inv3, "amount_due")).To(Equal(2000.0))
}

func TestTaxIDsAreSeparateImmutableObjects(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	cus := str(call(t, s, "POST", "/v1/customers", "", url.Values{}).body, "id")
	bad := call(t, s, "POST", "/v1/customers/"+cus+"/tax_ids", "", url.Values{"type": {"eu_vat"}, "value": {"not a vat"}})
	g.Expect(bad.status).To(Equal(400))
	created := call(t, s, "POST", "/v1/customers/"+cus+"/tax_ids", "", url.Values{"type": {"eu_vat"}, "value": {"DE123456789"}})
	g.Expect(created.status).To(Equal(200), "%v", created.body)
	g.Expect(str(created.body, "verification", "status")).To(Equal("pending"))
	got := call(t, s, "GET", "/v1/customers/"+cus+"?expand[]=tax_ids", "", nil)
	ids, _ := got.body["tax_ids"].(map[string]any)["data"].([]any)
	g.Expect(ids).To(HaveLen(1))
	g.Expect(call(t, s, "DELETE", "/v1/customers/"+cus+"/tax_ids/"+str(created.body, "id"), "", nil).status).To(Equal(200))
	got = call(t, s, "GET", "/v1/customers/"+cus+"?expand[]=tax_ids", "", nil)
	ids, _ = got.body["tax_ids"].(map[string]any)["data"].([]any)
	g.Expect(ids).To(BeEmpty())
}

func TestBillingCycleAnchorProratesTheFirstPeriod(t *testing.T) {
	g := NewWithT(t)
	start := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	s := NewTestServer(t, Options{RateLimit: -1, Start: start})
	cus, price := taxSetup(t, s, nil, "")
	sub := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {cus}, "items[0][price]": {price},
		"billing_cycle_anchor_config[day_of_month]": {"1"}})
	g.Expect(sub.status).To(Equal(200), "%v", sub.body)
	feb1 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).Unix()
	g.Expect(int64(num(sub.body, "billing_cycle_anchor"))).To(Equal(feb1))
	g.Expect(int64(num(sub.body, "current_period_end"))).To(Equal(feb1))
	// 17 of January's 31 days: 20.00 × 17 / 31 = 10.967… → 10.97.
	inv := latestInvoice(t, s, str(sub.body, "id"))
	g.Expect(num(inv, "amount_due")).To(Equal(1097.0))
	// Then full periods on the 1st.
	s.AdvanceClock(18 * 24 * time.Hour)
	got := call(t, s, "GET", "/v1/subscriptions/"+str(sub.body, "id"), "", nil)
	g.Expect(int64(num(got.body, "current_period_end"))).To(Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()))
	g.Expect(num(latestInvoice(t, s, str(sub.body, "id")), "amount_due")).To(Equal(2000.0))

	// proration_behavior none: the first partial period is free.
	cus2, price2 := taxSetup(t, s, nil, "")
	free := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {cus2}, "items[0][price]": {price2},
		"billing_cycle_anchor_config[day_of_month]": {"1"}, "proration_behavior": {"none"}})
	g.Expect(free.status).To(Equal(200), "%v", free.body)
	g.Expect(num(latestInvoice(t, s, str(free.body, "id")), "amount_due")).To(Equal(0.0))

	// trial_end and trial_period_days are alternatives.
	both := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {cus2}, "items[0][price]": {price2},
		"trial_period_days": {"3"}, "trial_end": {"4102444800"}})
	g.Expect(both.status).To(Equal(400))
}
