package webhookserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	. "github.com/onsi/gomega"

	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

type staticSecrets [][]byte

func (s staticSecrets) WebhookSecrets() [][]byte { return s }

const (
	secretA = "whsec_testSecretAAAAAAAAAAAAAAAA"
	secretB = "whsec_testSecretBBBBBBBBBBBBBBBB"
)

func unhandledEvent(id string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2023-10-16","created":1700000000,"type":"charge.refunded","data":{"object":{"id":"ch_1"}}}`, id))
}

// TestVerification covers every rejection and the rotation case through the
// HTTP handler. Events of a type the operator does not use are acknowledged
// without touching the API server, so no client is needed here.
func TestVerification(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	srv := New(Options{Secrets: staticSecrets{[]byte(secretA), []byte(secretB)}, MaxBodyBytes: 1024, Now: func() time.Time { return now }})
	h := srv.Handler()
	body := unhandledEvent("evt_1")
	big := bytes.Repeat([]byte("x"), 2048)
	cases := []struct {
		name   string
		method string
		path   string
		body   []byte
		header string
		want   int
		reason string
	}{
		{"valid, first secret", "POST", Path, body, stripefake.Sign(body, secretA, now), 200, ""},
		{"valid, rotated second secret", "POST", Path, body, stripefake.Sign(body, secretB, now), 200, ""},
		{"several v1, one valid", "POST", Path, body, "t=1800000000,v1=" + strings.Repeat("00", 32) + "," + strings.Split(stripefake.Sign(body, secretB, now), ",")[1], 200, ""},
		{"tampered body", "POST", Path, append([]byte(nil), bytes.Replace(body, []byte("refunded"), []byte("captured"), 1)...), stripefake.Sign(body, secretA, now), 400, ReasonNoValidSignature},
		{"wrong secret", "POST", Path, body, stripefake.Sign(body, "whsec_other", now), 400, ReasonNoValidSignature},
		{"expired timestamp", "POST", Path, body, stripefake.Sign(body, secretA, now.Add(-301*time.Second)), 400, ReasonTimestampTooOld},
		{"future timestamp", "POST", Path, body, stripefake.Sign(body, secretA, now.Add(301*time.Second)), 400, ReasonTimestampInFuture},
		{"within tolerance", "POST", Path, body, stripefake.Sign(body, secretA, now.Add(-299*time.Second)), 200, ""},
		{"malformed header", "POST", Path, body, "v1=abc", 400, ReasonMalformedHeader},
		{"garbage header", "POST", Path, body, "nonsense", 400, ReasonMalformedHeader},
		{"missing header", "POST", Path, body, "", 400, ReasonMissingHeader},
		{"oversized body", "POST", Path, big, stripefake.Sign(big, secretA, now), 413, "body_too_large"},
		{"wrong method", "GET", Path, nil, "", 405, ""},
		{"unknown path", "POST", "/webhooks/other", body, stripefake.Sign(body, secretA, now), 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			req := httptest.NewRequest(tc.method, tc.path, bytes.NewReader(tc.body))
			if tc.header != "" {
				req.Header.Set("Stripe-Signature", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			g.Expect(rec.Code).To(Equal(tc.want), rec.Body.String())
			if tc.reason != "" {
				g.Expect(rec.Body.String()).To(ContainSubstring(tc.reason))
			}
			if tc.want == http.StatusMethodNotAllowed {
				g.Expect(rec.Header().Get("Allow")).To(Equal("POST"))
			}
		})
	}
}

// TestOversizedBodyNotRead checks that a body past the limit is refused
// without reading the rest (a chunked body of unknown length).
func TestOversizedBodyNotRead(t *testing.T) {
	g := NewWithT(t)
	srv := New(Options{Secrets: staticSecrets{[]byte(secretA)}, MaxBodyBytes: 1024})
	r := &countingReader{limit: 10 << 20}
	req := httptest.NewRequest("POST", Path, r)
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	g.Expect(rec.Code).To(Equal(413))
	g.Expect(r.read).To(BeNumerically("<", 64<<10))
}

type countingReader struct{ read, limit int }

func (c *countingReader) Read(p []byte) (int, error) {
	n := min(len(p), c.limit-c.read)
	for i := range p[:n] {
		p[i] = 'x'
	}
	c.read += n
	return n, nil
}

func TestParseSignatureHeader(t *testing.T) {
	cases := map[string]bool{
		"t=1,v1=" + strings.Repeat("ab", 32):                true,
		"t=1,v0=zz,v1=" + strings.Repeat("ab", 32) + ",x=y": true,
		"t=1,t=2,v1=" + strings.Repeat("ab", 32):            false,
		"v1=" + strings.Repeat("ab", 32):                    false,
		"t=1":                                               false,
		"t=abc,v1=" + strings.Repeat("ab", 32):              false,
		"t=1,v1=short":                                      false,
		"":                                                  false,
		"t=-5,v1=" + strings.Repeat("ab", 32):               false,
		" t=1 , v1=" + strings.Repeat("ab", 32):             true,
	}
	for h, ok := range cases {
		var sh signatureHeader
		err := parseSignatureHeader(h, &sh)
		if (err == nil) != ok {
			t.Errorf("parseSignatureHeader(%q) error = %v, want ok=%v", h, err, ok)
		}
	}
}

func TestDecodeEventTolerant(t *testing.T) {
	g := NewWithT(t)
	ev, err := decodeEvent([]byte(`{"id":"evt_1","object":"event","api_version":"2024-06-20","created":5,"type":"customer.subscription.updated","new_field":{"x":1},
		"data":{"object":{"id":"sub_1","customer":{"id":"cus_1","object":"customer"},"status":"active","items":{"data":[{"id":"si_1","price":{"id":"price_1","unit_amount":100,"currency":"usd"},"quantity":2}]},"latest_invoice":"in_1","unknown":true}}}`))
	g.Expect(err).NotTo(HaveOccurred())
	so := ev.Sub
	g.Expect(so).NotTo(BeNil())
	g.Expect(so.Customer).To(Equal("cus_1"))
	g.Expect(so.LatestInvoice).To(Equal("in_1"))
	g.Expect(so.Items[0].Quantity).To(Equal(int64(2)))
	// A field of another type makes the object unreadable, not the event.
	ev, err = decodeEvent([]byte(`{"id":"evt_2","type":"customer.subscription.updated","data":{"object":{"id":"sub_1","quantity":1,"status":7}}}`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev.Sub).To(BeNil())
	g.Expect(ev.ObjectErr).To(MatchError(ContainSubstring(`"status"`)))
	// data.object is read as both shapes before "type" (which Stripe sends
	// last) picks one: a type error in a field only the other shape has
	// does not make the object unreadable.
	ev, err = decodeEvent([]byte(`{"id":"evt_3","data":{"object":{"id":"sub_1","amount_due":"x","status":"active"}},"type":"customer.subscription.updated"}`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev.ObjectErr).NotTo(HaveOccurred())
	g.Expect(ev.Sub.Status).To(Equal("active"))
	ev, err = decodeEvent([]byte(`{"id":"evt_4","data":{"object":{"id":"in_1","items":7,"subscription":"sub_1","amount_due":500}},"type":"invoice.paid"}`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev.ObjectErr).NotTo(HaveOccurred())
	g.Expect(ev.Inv.subscriptionID()).To(Equal("sub_1"))
	g.Expect(ev.Inv.AmountDue).To(Equal(int64(500)))
	// Not JSON anywhere, even in a member the operator skips, or anything
	// after the event: the body is refused.
	for _, bad := range []string{`{}`, `{"id":"x","type":"a"}`, `[]`, `{"id":"evt_1","object":"charge","type":"a"}`, `nope`,
		`{"id":"evt_1","type":"a","data":{"object":{"x":[1,]}}}`, `{"id":"evt_1","type":"a","request":{"id":"req_1"` + "\x01" + `}}`,
		`{"id":"evt_1","type":"a"} {}`, `{"id":"evt_1","type":"a"}x`, `{"id":"evt_1","type":"a","created":01}`} {
		_, err := decodeEvent([]byte(bad))
		g.Expect(err).To(HaveOccurred(), bad)
	}
}

// TestReadBody: the body is read whole whatever the declared length says,
// and the reader's limit still applies.
func TestReadBody(t *testing.T) {
	body := bytes.Repeat([]byte("abcdefgh"), 600) // 4800 bytes
	for _, tc := range []struct {
		name     string
		declared int64
	}{
		{"exact", int64(len(body))},
		{"unknown", -1},
		{"declared short", 10},
		{"declared long", 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(struct{ io.Reader }{bytes.NewReader(body)}, tc.declared)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("readBody = %d bytes, %v; want %d bytes", len(got), err, len(body))
			}
			got, err = readBody(iotest.OneByteReader(bytes.NewReader(body)), tc.declared)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("readBody (one byte at a time) = %d bytes, %v", len(got), err)
			}
		})
	}
	rec := httptest.NewRecorder()
	_, err := readBody(http.MaxBytesReader(rec, io.NopCloser(bytes.NewReader(body)), 1000), int64(len(body)))
	var tooLarge *http.MaxBytesError
	if !errors.As(err, &tooLarge) {
		t.Fatalf("over the limit: err = %v, want *http.MaxBytesError", err)
	}
}
