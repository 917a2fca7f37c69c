package webhookserver

import (
	"testing"
	"time"
)

func FuzzParseSignatureHeader(f *testing.F) {
	f.Add("t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd")
	f.Add("t=1,v1=zz,v0=aa")
	f.Add("t=,v1=")
	f.Add(",,,=")
	f.Fuzz(func(t *testing.T, h string) {
		sh, err := parseSignatureHeader(h)
		if err == nil && (sh.timestamp <= 0 || len(sh.v1) == 0 || len(sh.v1) > maxSignatures) {
			t.Fatalf("accepted an invalid header %q: %+v", h, sh)
		}
		// verify must never panic and never accept without the secret.
		if r := verify([]byte("{}"), h, [][]byte{[]byte("whsec_x")}, time.Unix(1700000000, 0), 300*time.Second); r == "" {
			t.Fatalf("verified a header without knowing the secret: %q", h)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1","object":"event","created":1,"type":"invoice.paid","data":{"object":{"id":"in_1","subscription":"sub_1","payment_intent":{"id":"pi_1","status":"succeeded"}}}}`))
	f.Add([]byte(`{"id":"evt_2","type":"customer.subscription.updated","data":{"object":{"id":"sub_1","customer":null,"latest_invoice":{"id":"in_1"}}}}`))
	f.Add([]byte(`{"id":"evt_3","type":"x","data":{"object":[]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := decodeEvent(body)
		if err != nil {
			return
		}
		if so, err := ev.subscription(); err == nil {
			_ = so.LatestInvoice.ID
		}
		if in, err := ev.invoice(); err == nil {
			_ = in.paymentIntent()
		}
	})
}
