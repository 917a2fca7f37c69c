package stripefake

import (
	"net/url"
	"testing"

	. "github.com/onsi/gomega"
)

func TestListsPageAndExpandAsStripeDoes(t *testing.T) {
	g := NewWithT(t)
	s := NewTestServer(t, Options{RateLimit: -1})
	cus := str(call(t, s, "POST", "/v1/customers", "", url.Values{"name": {"Acme"}}).body, "id")
	attached := call(t, s, "POST", "/v1/payment_methods/pm_card_visa/attach", "", url.Values{"customer": {cus}})
	g.Expect(attached.status).To(Equal(200))
	g.Expect(call(t, s, "POST", "/v1/customers/"+cus, "", url.Values{"invoice_settings[default_payment_method]": {str(attached.body, "id")}}).status).To(Equal(200))
	prod := str(call(t, s, "POST", "/v1/products", "", url.Values{"name": {"Pro"}}).body, "id")
	price := str(call(t, s, "POST", "/v1/prices", "", url.Values{"product": {prod}, "currency": {"usd"}, "unit_amount": {"500"}, "recurring[interval]": {"month"}}).body, "id")
	sub := call(t, s, "POST", "/v1/subscriptions", "", url.Values{"customer": {cus}, "items[0][price]": {price}})
	g.Expect(sub.status).To(Equal(200))

	// A list expands through data.; a bare expansion is refused.
	bare := call(t, s, "GET", "/v1/subscriptions?status=all&expand[]=latest_invoice", "", nil)
	g.Expect(bare.status).To(Equal(400))
	g.Expect(str(bare.body, "error", "param")).To(Equal("expand"))
	listed := call(t, s, "GET", "/v1/subscriptions?status=all&expand[]=data.latest_invoice&expand[]=data.latest_invoice.payment_intent", "", nil)
	g.Expect(listed.status).To(Equal(200))
	first := listed.body["data"].([]any)[0].(map[string]any)
	g.Expect(str(first, "latest_invoice", "status")).To(Equal("paid"))
	g.Expect(str(first, "latest_invoice", "payment_intent", "status")).To(Equal("succeeded"))
	plain := call(t, s, "GET", "/v1/subscriptions?status=all", "", nil)
	_, isID := plain.body["data"].([]any)[0].(map[string]any)["latest_invoice"].(string)
	g.Expect(isID).To(BeTrue(), "without expansion latest_invoice is an ID")

	// An unknown cursor is an error, never an empty last page.
	unknown := call(t, s, "GET", "/v1/customers?starting_after=cus_gone", "", nil)
	g.Expect(unknown.status).To(Equal(404))
	g.Expect(str(unknown.body, "error", "code")).To(Equal("resource_missing"))
	g.Expect(str(unknown.body, "error", "param")).To(Equal("starting_after"))
	g.Expect(call(t, s, "GET", "/v1/customers?limit=101", "", nil).status).To(Equal(400))

	// A customer deleted in the Dashboard leaves the list, and its
	// subscription is canceled (still listed under status=all).
	g.Expect(s.DashboardDeleteCustomer(cus)).To(Succeed())
	g.Expect(call(t, s, "GET", "/v1/customers", "", nil).body["data"]).To(BeEmpty())
	ended := call(t, s, "GET", "/v1/subscriptions?status=all", "", nil).body["data"].([]any)
	g.Expect(ended).To(HaveLen(1))
	g.Expect(str(ended[0].(map[string]any), "status")).To(Equal("canceled"))
	g.Expect(call(t, s, "GET", "/v1/subscriptions", "", nil).body["data"]).To(BeEmpty(), "canceled subscriptions only with status=all")
}
