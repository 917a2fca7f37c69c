package stripefake

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
)

func TestRenderEventPerAPIVersion(t *testing.T) {
	inv := map[string]any{"id": "in_1", "object": "invoice", "subscription": "sub_1", "status": "open", "amount_due": 500, "amount_paid": 0,
		"currency": "usd", "subscription_details": map[string]any{"metadata": map[string]string{"k": "v"}},
		"payment_intent": map[string]any{"id": "pi_1", "status": "requires_payment_method"}}
	sub := map[string]any{"id": "sub_1", "object": "subscription", "current_period_start": 10, "current_period_end": 20,
		"items": map[string]any{"data": []any{map[string]any{"id": "si_1"}, map[string]any{"id": "si_2"}}}}
	ev := func(obj map[string]any) map[string]any {
		return map[string]any{"id": "evt_1", "api_version": DefaultAPIVersion, "data": map[string]any{"object": obj,
			"previous_attributes": map[string]any{"current_period_end": 10}}}
	}
	decode := func(b []byte) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m["data"].(map[string]any)
	}

	for _, v := range []string{DefaultAPIVersion, APIVersionAcacia} {
		g := NewWithT(t)
		d := decode(renderEvent(ev(inv), v))
		g.Expect(d["object"]).To(HaveKeyWithValue("subscription", "sub_1"), v)
		g.Expect(d["object"]).To(HaveKey("payment_intent"), v)
		g.Expect(decode(renderEvent(ev(sub), v))["object"]).To(HaveKeyWithValue("current_period_end", 20.0), v)
	}
	for _, v := range []string{APIVersionBasil, APIVersionClover, APIVersionDahlia, APIVersionEndive} {
		g := NewWithT(t)
		d := decode(renderEvent(ev(inv), v))
		o := d["object"].(map[string]any)
		g.Expect(o).NotTo(HaveKey("subscription"), v)
		g.Expect(o).NotTo(HaveKey("subscription_details"), v)
		g.Expect(o).NotTo(HaveKey("payment_intent"), v)
		g.Expect(o["parent"]).To(HaveKeyWithValue("subscription_details", map[string]any{
			"subscription": "sub_1", "metadata": map[string]any{"k": "v"}, "subscription_proration_date": nil}), v)
		g.Expect(o).NotTo(HaveKey("payments"), v, "invoice.payments is includable: never in an event")

		s := decode(renderEvent(ev(sub), v))
		so := s["object"].(map[string]any)
		g.Expect(so).NotTo(HaveKey("current_period_start"), v)
		for _, it := range so["items"].(map[string]any)["data"].([]any) {
			g.Expect(it).To(And(HaveKeyWithValue("current_period_start", 10.0), HaveKeyWithValue("current_period_end", 20.0)), v)
		}
		g.Expect(s["previous_attributes"]).NotTo(HaveKey("current_period_end"), v)
	}
	// Emitted events carry the payment intent as an ID, never expanded.
	g := NewWithT(t)
	g.Expect(unexpanded(inv)).To(HaveKeyWithValue("payment_intent", "pi_1"))
	g.Expect(unexpanded(map[string]any{"object": "subscription", "latest_invoice": map[string]any{"id": "in_1", "object": "invoice"}})).To(
		HaveKeyWithValue("latest_invoice", "in_1"))
	g.Expect(inv["payment_intent"]).To(HaveKeyWithValue("status", "requires_payment_method"), "unexpanded copies")
	// The source event is not changed by rendering.
	NewWithT(t).Expect(inv).To(HaveKey("subscription"))
	NewWithT(t).Expect(sub).To(HaveKey("current_period_start"))
}
