package webhookserver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzParseSignatureHeader(f *testing.F) {
	f.Add("t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd")
	f.Add("t=1,v1=zz,v0=aa")
	f.Add("t=,v1=")
	f.Add(",,,=")
	f.Add("5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8BD")
	f.Fuzz(func(t *testing.T, h string) {
		var sh signatureHeader
		err := parseSignatureHeader(h, &sh)
		if err == nil && (sh.timestamp <= 0 || sh.n == 0 || sh.n > maxSignatures) {
			t.Fatalf("accepted an invalid header %q: %+v", h, sh)
		}
		// decodeHex agrees with encoding/hex on 32-byte signatures.
		var got [sha256.Size]byte
		want, herr := hex.DecodeString(h)
		if ok := decodeHex(got[:], h); ok != (herr == nil && len(want) == sha256.Size) || ok && !bytes.Equal(got[:], want) {
			t.Fatalf("decodeHex(%q) = %x, %v; encoding/hex: %x, %v", h, got, ok, want, herr)
		}
		// verify must never panic and never accept without the secret.
		if r := verify([]byte("{}"), h, [][]byte{[]byte("whsec_x")}, time.Unix(1700000000, 0), 300*time.Second); r == "" {
			t.Fatalf("verified a header without knowing the secret: %q", h)
		}
	})
}

// FuzzDecodeEvent is a differential test: on any valid JSON, the fields
// decodeEvent extracts equal what encoding/json extracts into plain structs
// (refDecodeEvent), and both reject the same inputs. Inputs where the two
// legitimately differ are skipped: duplicate keys (encoding/json keeps the
// last value of a field but merges repeated objects into one) and keys
// differing only in case from a field name (encoding/json matches those
// case-insensitively); Stripe sends neither. On bodies that are not valid
// JSON decodeEvent must only not panic (and it refuses them: see
// TestDecodeEventTolerant).
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1","object":"event","created":1,"type":"invoice.paid","data":{"object":{"id":"in_1","subscription":"sub_1","payment_intent":{"id":"pi_1","status":"succeeded"}}}}`))
	f.Add([]byte(`{"id":"evt_2","type":"customer.subscription.updated","data":{"object":{"id":"sub_1","customer":null,"latest_invoice":{"id":"in_1"}}}}`))
	f.Add([]byte(`{"id":"evt_3","type":"x","data":{"object":[]}}`))
	f.Add([]byte(`{"id":"evt_4","type":"invoice.paid","data":{"object":{"id":"in_1","parent":{"subscription_details":{"subscription":"sub_1","metadata":{"a":"b","c":null}}},"payments":{"data":[null,{"is_default":true,"payment":{"payment_intent":{"id":"pi_1","last_payment_error":{"decline_code":"x"}}}}]}}}}`))
	f.Add([]byte(`{"id":"evt_5","type":"customer.subscription.updated","data":{"object":{"id":"sub_1","items":{"data":[{"id":"si_1","current_period_start":1,"current_period_end":2,"price":{"id":"p"},"quantity":1.5}]}}}}`))
	files, _ := filepath.Glob("testdata/events/*/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fillFixture(b, fixtureVars{Subscription: "sub_Fz1", Namespace: "ns", Name: "n", UID: "u", EventID: "evt_Fz1", Created: 1700000001, InvoiceCreated: 1700000000}))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErr := decodeEvent(body)
		if !json.Valid(body) || !utf8.Valid(body) || ambiguousKeys(body) {
			return // must only not panic
		}
		want, wantErr := refDecodeEvent(body)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("errors differ: decodeEvent %v, encoding/json %v", gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		if (got.ObjectErr != nil) != (want.ObjectErr != nil) {
			t.Fatalf("object errors differ: decodeEvent %v, encoding/json %v", got.ObjectErr, want.ObjectErr)
		}
		got.ObjectErr, want.ObjectErr = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("extracted fields differ:\ndecodeEvent   %+v %+v %+v\nencoding/json %+v %+v %+v", got, got.Sub, got.Inv, want, want.Sub, want.Inv)
		}
	})
}

// fieldNames are the keys the decoders read.
var fieldNames = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`id object type api_version created livemode data previous_attributes status customer items
		current_period_start current_period_end cancel_at_period_end cancel_at canceled_at trial_end pause_collection behavior
		metadata latest_invoice price quantity subscription subscription_details parent amount_due amount_paid currency
		attempt_count next_payment_attempt hosted_invoice_url billing_reason payment_intent payments is_default payment
		last_payment_error code decline_code`) {
		fieldNames[k] = true
	}
}

// ambiguousKeys reports duplicate keys in an object, or a key that matches
// a field name only case-insensitively.
func ambiguousKeys(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			if s, ok := tok.(string); ok {
				if top.keys[s] || (!fieldNames[s] && fieldNames[strings.ToLower(s)]) {
					return true
				}
				top.keys[s] = true
				top.key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, keys: map[string]bool{}, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].key = true // a value ended
		}
	}
}

// The reference decoder: encoding/json into plain structs.

type refExpandable struct {
	ID  string
	Obj json.RawMessage
}

func (e *refExpandable) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case b[0] == '"':
		return json.Unmarshal(b, &e.ID)
	case b[0] == '{':
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		e.ID, e.Obj = v.ID, append(json.RawMessage(nil), b...)
		return nil
	}
	return errors.New("neither an ID nor an object")
}

type refPI struct {
	ID               string `json:"id"`
	Status           string `json:"status"`
	LastPaymentError *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
	} `json:"last_payment_error"`
}

func refIntent(e refExpandable) (*paymentIntent, error) {
	if e.Obj == nil {
		return nil, nil
	}
	var pi refPI
	if err := json.Unmarshal(e.Obj, &pi); err != nil {
		return nil, err
	}
	out := &paymentIntent{ID: pi.ID, Status: pi.Status}
	if pi.LastPaymentError != nil {
		out.ErrorCode, out.DeclineCode = pi.LastPaymentError.Code, pi.LastPaymentError.DeclineCode
	}
	return out, nil
}

func refDecodeEvent(body []byte) (*event, error) {
	var env struct {
		ID         string `json:"id"`
		Object     string `json:"object"`
		Type       string `json:"type"`
		APIVersion string `json:"api_version"`
		Created    int64  `json:"created"`
		Livemode   bool   `json:"livemode"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	ev := &event{ID: env.ID, Object: env.Object, Type: env.Type, APIVersion: env.APIVersion, Created: env.Created, Livemode: env.Livemode}
	if ev.ID == "" || ev.Type == "" || (ev.Object != "" && ev.Object != "event") || !strings.HasPrefix(ev.ID, "evt_") {
		return nil, errNotEvent
	}
	var data struct {
		Data *struct {
			Object json.RawMessage `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &data); err != nil {
		ev.ObjectErr = err
		return ev, nil
	}
	obj := json.RawMessage("null")
	if data.Data != nil && data.Data.Object != nil {
		obj = data.Data.Object
	}
	if t := bytes.TrimSpace(obj); t[0] != '{' && !bytes.Equal(t, []byte("null")) {
		ev.ObjectErr = errors.New("object is not an object")
		return ev, nil
	}
	var err error
	switch {
	case strings.HasPrefix(ev.Type, "customer.subscription."):
		ev.Sub, err = refSubscription(obj)
	case strings.HasPrefix(ev.Type, "invoice."):
		ev.Inv, err = refInvoice(obj)
	}
	if err != nil {
		ev.Sub, ev.Inv, ev.ObjectErr = nil, nil, err
	}
	return ev, nil
}

func refSubscription(b []byte) (*subscriptionObject, error) {
	var s struct {
		ID                 string        `json:"id"`
		Customer           refExpandable `json:"customer"`
		Status             string        `json:"status"`
		CurrentPeriodStart int64         `json:"current_period_start"`
		CurrentPeriodEnd   int64         `json:"current_period_end"`
		CancelAtPeriodEnd  bool          `json:"cancel_at_period_end"`
		CancelAt           int64         `json:"cancel_at"`
		CanceledAt         int64         `json:"canceled_at"`
		TrialEnd           int64         `json:"trial_end"`
		PauseCollection    *struct {
			Behavior string `json:"behavior"`
		} `json:"pause_collection"`
		Metadata      map[string]string `json:"metadata"`
		LatestInvoice refExpandable     `json:"latest_invoice"`
		Items         *struct {
			Data []*struct {
				ID    string `json:"id"`
				Price *struct {
					ID string `json:"id"`
				} `json:"price"`
				Quantity           int64 `json:"quantity"`
				CurrentPeriodStart int64 `json:"current_period_start"`
				CurrentPeriodEnd   int64 `json:"current_period_end"`
			} `json:"data"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	out := &subscriptionObject{ID: s.ID, Customer: s.Customer.ID, Status: s.Status, CurrentPeriodStart: s.CurrentPeriodStart,
		CurrentPeriodEnd: s.CurrentPeriodEnd, CancelAtPeriodEnd: s.CancelAtPeriodEnd, CancelAt: s.CancelAt, CanceledAt: s.CanceledAt,
		TrialEnd: s.TrialEnd, Metadata: s.Metadata, LatestInvoice: s.LatestInvoice.ID}
	if s.PauseCollection != nil {
		out.PauseCollection = s.PauseCollection.Behavior
	}
	if s.Items != nil {
		for _, it := range s.Items.Data {
			if it == nil {
				out.Items = append(out.Items, subscriptionItem{})
				continue
			}
			si := subscriptionItem{ID: it.ID, Quantity: it.Quantity, CurrentPeriodStart: it.CurrentPeriodStart, CurrentPeriodEnd: it.CurrentPeriodEnd}
			if it.Price != nil {
				si.PriceID = it.Price.ID
			}
			out.Items = append(out.Items, si)
		}
	}
	return out, nil
}

func refInvoice(b []byte) (*invoiceObject, error) {
	var in struct {
		ID                  string        `json:"id"`
		Subscription        refExpandable `json:"subscription"`
		SubscriptionDetails *struct {
			Metadata map[string]string `json:"metadata"`
		} `json:"subscription_details"`
		Parent *struct {
			SubscriptionDetails *struct {
				Subscription refExpandable     `json:"subscription"`
				Metadata     map[string]string `json:"metadata"`
			} `json:"subscription_details"`
		} `json:"parent"`
		Status             string        `json:"status"`
		AmountDue          int64         `json:"amount_due"`
		AmountPaid         int64         `json:"amount_paid"`
		Currency           string        `json:"currency"`
		AttemptCount       int64         `json:"attempt_count"`
		NextPaymentAttempt int64         `json:"next_payment_attempt"`
		HostedInvoiceURL   string        `json:"hosted_invoice_url"`
		BillingReason      string        `json:"billing_reason"`
		Created            int64         `json:"created"`
		PaymentIntent      refExpandable `json:"payment_intent"`
		Payments           *struct {
			Data []*struct {
				IsDefault bool   `json:"is_default"`
				Status    string `json:"status"`
				Payment   *struct {
					PaymentIntent refExpandable `json:"payment_intent"`
				} `json:"payment"`
			} `json:"data"`
		} `json:"payments"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	out := &invoiceObject{ID: in.ID, Subscription: in.Subscription.ID, Status: in.Status, AmountDue: in.AmountDue, AmountPaid: in.AmountPaid,
		Currency: in.Currency, AttemptCount: in.AttemptCount, NextPaymentAttempt: in.NextPaymentAttempt, HostedInvoiceURL: in.HostedInvoiceURL,
		BillingReason: in.BillingReason, Created: in.Created}
	if in.SubscriptionDetails != nil {
		out.SubscriptionMetadata = in.SubscriptionDetails.Metadata
	}
	if in.Parent != nil && in.Parent.SubscriptionDetails != nil {
		out.ParentSubscription, out.ParentMetadata = in.Parent.SubscriptionDetails.Subscription.ID, in.Parent.SubscriptionDetails.Metadata
	}
	var err error
	if out.PaymentIntent, err = refIntent(in.PaymentIntent); err != nil {
		return nil, err
	}
	if in.Payments != nil {
		for _, p := range in.Payments.Data {
			if p == nil {
				out.Payments = append(out.Payments, invoicePayment{})
				continue
			}
			ip := invoicePayment{IsDefault: p.IsDefault, Status: p.Status}
			if p.Payment != nil {
				if ip.Intent, err = refIntent(p.Payment.PaymentIntent); err != nil {
					return nil, err
				}
			}
			out.Payments = append(out.Payments, ip)
		}
	}
	return out, nil
}
