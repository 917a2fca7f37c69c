package webhookserver

import (
	"errors"
	"fmt"
	"strings"

	"github.com/valyala/fastjson"
)

// event is the part of a Stripe event the operator reads. It holds the raw
// fields as Stripe sent them, in whichever API version's shape; the methods
// below resolve the differences between versions.
type event struct {
	ID         string
	Object     string
	Type       string
	APIVersion string
	Created    int64
	Livemode   bool
	// Sub is set for customer.subscription.* events, Inv for invoice.*.
	Sub *subscriptionObject
	Inv *invoiceObject
	// ObjectErr is set when data.object could not be read; Sub and Inv
	// are then nil.
	ObjectErr error
}

// subscriptionObject is the part of a subscription the operator reads.
type subscriptionObject struct {
	ID       string
	Customer string
	Status   string
	Items    []subscriptionItem
	// CurrentPeriodStart and CurrentPeriodEnd are the top-level period,
	// present up to 2025-02-24.acacia; from 2025-03-31.basil the period is on
	// each item (see period).
	CurrentPeriodStart int64
	CurrentPeriodEnd   int64
	CancelAtPeriodEnd  bool
	CancelAt           int64
	CanceledAt         int64
	TrialEnd           int64
	PauseCollection    string // pause_collection.behavior
	Metadata           map[string]string
	LatestInvoice      string
}

type subscriptionItem struct {
	ID                 string
	PriceID            string
	Quantity           int64
	CurrentPeriodStart int64 // 2025-03-31.basil and later
	CurrentPeriodEnd   int64
}

// invoiceObject is the part of an invoice the operator reads.
type invoiceObject struct {
	ID string
	// Subscription and SubscriptionMetadata are the top-level subscription
	// and subscription_details.metadata (up to 2025-02-24.acacia);
	// ParentSubscription and ParentMetadata are
	// parent.subscription_details.{subscription,metadata} (2025-03-31.basil
	// and later).
	Subscription         string
	SubscriptionMetadata map[string]string
	ParentSubscription   string
	ParentMetadata       map[string]string
	Status               string
	AmountDue            int64
	AmountPaid           int64
	Currency             string
	AttemptCount         int64
	NextPaymentAttempt   int64
	HostedInvoiceURL     string
	BillingReason        string
	Created              int64
	// PaymentIntent is the expanded payment_intent (up to acacia), when
	// the payload carries it expanded.
	PaymentIntent *paymentIntent
	// Payments are invoice.payments.data (basil and later), when present.
	Payments []invoicePayment
}

type paymentIntent struct {
	ID          string
	Status      string
	ErrorCode   string // last_payment_error.code
	DeclineCode string // last_payment_error.decline_code
}

type invoicePayment struct {
	IsDefault bool
	Status    string
	// Intent is payment.payment_intent when expanded; nil when it is only
	// an ID or the payment is not a payment intent.
	Intent *paymentIntent
}

// subscriptionID is the invoice's subscription in either shape.
func (in *invoiceObject) subscriptionID() string {
	if in.Subscription != "" {
		return in.Subscription
	}
	return in.ParentSubscription
}

// metadata is the subscription metadata snapshot in either shape.
func (in *invoiceObject) metadata() map[string]string {
	if len(in.SubscriptionMetadata) > 0 {
		return in.SubscriptionMetadata
	}
	return in.ParentMetadata
}

// payment is the payment intent the invoice's payment state is read from:
// the expanded payment_intent where present, otherwise the default (else the
// last) invoice payment with an expanded intent, otherwise nil.
func (in *invoiceObject) payment() *paymentIntent {
	if in.PaymentIntent != nil {
		return in.PaymentIntent
	}
	var found *paymentIntent
	for _, p := range in.Payments {
		if p.Intent == nil {
			continue
		}
		found = p.Intent
		if p.IsDefault {
			break
		}
	}
	return found
}

// paymentError is the last payment error's code, else its decline code (as
// the reconciler reads it).
func (pi *paymentIntent) paymentError() string {
	if pi == nil {
		return ""
	}
	if pi.ErrorCode != "" {
		return pi.ErrorCode
	}
	return pi.DeclineCode
}

// period is the subscription's current period. Up to 2025-02-24.acacia it
// is the subscription's own current_period_start/end. From 2025-03-31.basil
// each item has its own period; the subscription's period is then the one of
// the item that renews first (the earliest current_period_end, and that
// item's start). With one billing interval, as the operator creates them,
// every item has the same period.
func (so *subscriptionObject) period() (start, end int64) {
	if so.CurrentPeriodStart != 0 || so.CurrentPeriodEnd != 0 {
		return so.CurrentPeriodStart, so.CurrentPeriodEnd
	}
	for _, it := range so.Items {
		if it.CurrentPeriodEnd == 0 {
			continue
		}
		if end == 0 || it.CurrentPeriodEnd < end {
			start, end = it.CurrentPeriodStart, it.CurrentPeriodEnd
		}
	}
	return start, end
}

var errNotEvent = errors.New("body is not a Stripe event")

// parsers reuses fastjson parsers (and their memory) across requests.
var parsers fastjson.ParserPool

// decodeEvent parses an event and the fields the operator reads from it,
// tolerant of unknown fields and API versions, strict about the types of the
// fields it reads (as encoding/json would be). Each object is walked once
// (Visit), reading the keys of interest as they come; a repeated key's last
// value counts, as with encoding/json.
func decodeEvent(body []byte) (*event, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	root, err := p.ParseBytes(body)
	if err != nil {
		return nil, err
	}
	if root.Type() != fastjson.TypeObject {
		return nil, errNotEvent
	}
	var (
		r    reader
		ev   = &event{}
		data *fastjson.Value
	)
	rootObj, _ := root.Object()
	rootObj.Visit(func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "id":
			ev.ID = r.str("id", v)
		case "object":
			ev.Object = r.str("object", v)
		case "type":
			ev.Type = r.str("type", v)
		case "api_version":
			ev.APIVersion = r.str("api_version", v)
		case "created":
			ev.Created = r.int("created", v)
		case "livemode":
			ev.Livemode = r.bool("livemode", v)
		case "data":
			data = v
		}
	})
	if r.err != nil {
		return nil, r.err
	}
	if ev.ID == "" || ev.Type == "" || (ev.Object != "" && ev.Object != "event") || !strings.HasPrefix(ev.ID, "evt_") {
		return nil, errNotEvent
	}
	// The object: a field of an unexpected type makes the object
	// unreadable (the event is acknowledged and counted, since a
	// redelivery would carry the same payload), not the event.
	var or reader
	var obj *fastjson.Object
	or.each(or.obj("data", data), func(k []byte, v *fastjson.Value) {
		if string(k) == "object" {
			obj = or.obj("object", v)
		}
	})
	switch {
	case strings.HasPrefix(ev.Type, "customer.subscription."):
		ev.Sub = or.subscription(obj)
	case strings.HasPrefix(ev.Type, "invoice."):
		ev.Inv = or.invoice(obj)
	}
	if or.err != nil {
		ev.Sub, ev.Inv, ev.ObjectErr = nil, nil, or.err
	}
	return ev, nil
}

// reader reads typed values and keeps the first type error. A missing or
// null value reads as the zero value; a value of another type is an error
// naming the field.
type reader struct{ err error }

func (r *reader) fail(key string, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("field %q is not %s", key, want)
	}
}

func isNull(v *fastjson.Value) bool { return v == nil || v.Type() == fastjson.TypeNull }

// each calls fn for every member of o (nil: none).
func (r *reader) each(o *fastjson.Object, fn func(k []byte, v *fastjson.Value)) {
	if o != nil {
		o.Visit(fn)
	}
}

func (r *reader) obj(key string, v *fastjson.Value) *fastjson.Object {
	if isNull(v) {
		return nil
	}
	o, err := v.Object()
	if err != nil {
		r.fail(key, "an object")
		return nil
	}
	return o
}

func (r *reader) arr(key string, v *fastjson.Value) []*fastjson.Value {
	if isNull(v) {
		return nil
	}
	a, err := v.Array()
	if err != nil {
		r.fail(key, "an array")
	}
	return a
}

func (r *reader) str(key string, v *fastjson.Value) string {
	if isNull(v) {
		return ""
	}
	b, err := v.StringBytes()
	if err != nil {
		r.fail(key, "a string")
	}
	return string(b)
}

func (r *reader) int(key string, v *fastjson.Value) int64 {
	if isNull(v) {
		return 0
	}
	n, err := v.Int64()
	if err != nil {
		r.fail(key, "an integer")
	}
	return n
}

func (r *reader) bool(key string, v *fastjson.Value) bool {
	if isNull(v) {
		return false
	}
	b, err := v.Bool()
	if err != nil {
		r.fail(key, "a boolean")
	}
	return b
}

// expandable reads a value that is an ID or, expanded, the object; it
// returns the ID and the object (nil unless expanded).
func (r *reader) expandable(key string, v *fastjson.Value) (string, *fastjson.Object) {
	switch {
	case isNull(v):
		return "", nil
	case v.Type() == fastjson.TypeString:
		b, _ := v.StringBytes()
		return string(b), nil
	case v.Type() == fastjson.TypeObject:
		o, _ := v.Object()
		id := ""
		o.Visit(func(k []byte, f *fastjson.Value) {
			if string(k) == "id" {
				id = r.str(key+".id", f)
			}
		})
		return id, o
	}
	r.fail(key, "an ID or an object")
	return "", nil
}

func (r *reader) strMap(key string, v *fastjson.Value) map[string]string {
	o := r.obj(key, v)
	if o == nil {
		return nil
	}
	m := make(map[string]string, o.Len())
	o.Visit(func(k []byte, val *fastjson.Value) {
		m[string(k)] = r.str(key+"."+string(k), val)
	})
	return m
}

func (r *reader) subscription(o *fastjson.Object) *subscriptionObject {
	so := &subscriptionObject{}
	r.each(o, func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "id":
			so.ID = r.str("id", v)
		case "status":
			so.Status = r.str("status", v)
		case "customer":
			so.Customer, _ = r.expandable("customer", v)
		case "latest_invoice":
			so.LatestInvoice, _ = r.expandable("latest_invoice", v)
		case "current_period_start":
			so.CurrentPeriodStart = r.int("current_period_start", v)
		case "current_period_end":
			so.CurrentPeriodEnd = r.int("current_period_end", v)
		case "cancel_at_period_end":
			so.CancelAtPeriodEnd = r.bool("cancel_at_period_end", v)
		case "cancel_at":
			so.CancelAt = r.int("cancel_at", v)
		case "canceled_at":
			so.CanceledAt = r.int("canceled_at", v)
		case "trial_end":
			so.TrialEnd = r.int("trial_end", v)
		case "pause_collection":
			so.PauseCollection = ""
			r.each(r.obj("pause_collection", v), func(k []byte, v *fastjson.Value) {
				if string(k) == "behavior" {
					so.PauseCollection = r.str("pause_collection.behavior", v)
				}
			})
		case "metadata":
			so.Metadata = r.strMap("metadata", v)
		case "items":
			so.Items = nil
			r.each(r.obj("items", v), func(k []byte, v *fastjson.Value) {
				if string(k) != "data" {
					return
				}
				so.Items = nil
				for _, it := range r.arr("items.data", v) {
					so.Items = append(so.Items, r.item(it))
				}
			})
		}
	})
	return so
}

func (r *reader) item(v *fastjson.Value) subscriptionItem {
	var it subscriptionItem
	r.each(r.obj("items.data[]", v), func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "id":
			it.ID = r.str("items.data[].id", v)
		case "quantity":
			it.Quantity = r.int("items.data[].quantity", v)
		case "current_period_start":
			it.CurrentPeriodStart = r.int("items.data[].current_period_start", v)
		case "current_period_end":
			it.CurrentPeriodEnd = r.int("items.data[].current_period_end", v)
		case "price":
			it.PriceID = ""
			r.each(r.obj("items.data[].price", v), func(k []byte, v *fastjson.Value) {
				if string(k) == "id" {
					it.PriceID = r.str("items.data[].price.id", v)
				}
			})
		}
	})
	return it
}

func (r *reader) paymentIntent(o *fastjson.Object) *paymentIntent {
	if o == nil {
		return nil
	}
	pi := &paymentIntent{}
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "id":
			pi.ID = r.str("payment_intent.id", v)
		case "status":
			pi.Status = r.str("payment_intent.status", v)
		case "last_payment_error":
			pi.ErrorCode, pi.DeclineCode = "", ""
			r.each(r.obj("last_payment_error", v), func(k []byte, v *fastjson.Value) {
				switch string(k) {
				case "code":
					pi.ErrorCode = r.str("last_payment_error.code", v)
				case "decline_code":
					pi.DeclineCode = r.str("last_payment_error.decline_code", v)
				}
			})
		}
	})
	return pi
}

func (r *reader) invoice(o *fastjson.Object) *invoiceObject {
	in := &invoiceObject{}
	r.each(o, func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "id":
			in.ID = r.str("id", v)
		case "subscription":
			in.Subscription, _ = r.expandable("subscription", v)
		case "subscription_details":
			in.SubscriptionMetadata = nil
			r.each(r.obj("subscription_details", v), func(k []byte, v *fastjson.Value) {
				if string(k) == "metadata" {
					in.SubscriptionMetadata = r.strMap("subscription_details.metadata", v)
				}
			})
		case "parent":
			in.ParentSubscription, in.ParentMetadata = "", nil
			r.each(r.obj("parent", v), func(k []byte, v *fastjson.Value) {
				if string(k) != "subscription_details" {
					return
				}
				in.ParentSubscription, in.ParentMetadata = "", nil
				r.each(r.obj("parent.subscription_details", v), func(k []byte, v *fastjson.Value) {
					switch string(k) {
					case "subscription":
						in.ParentSubscription, _ = r.expandable("parent.subscription_details.subscription", v)
					case "metadata":
						in.ParentMetadata = r.strMap("parent.subscription_details.metadata", v)
					}
				})
			})
		case "status":
			in.Status = r.str("status", v)
		case "amount_due":
			in.AmountDue = r.int("amount_due", v)
		case "amount_paid":
			in.AmountPaid = r.int("amount_paid", v)
		case "currency":
			in.Currency = r.str("currency", v)
		case "attempt_count":
			in.AttemptCount = r.int("attempt_count", v)
		case "next_payment_attempt":
			in.NextPaymentAttempt = r.int("next_payment_attempt", v)
		case "hosted_invoice_url":
			in.HostedInvoiceURL = r.str("hosted_invoice_url", v)
		case "billing_reason":
			in.BillingReason = r.str("billing_reason", v)
		case "created":
			in.Created = r.int("created", v)
		case "payment_intent":
			_, pi := r.expandable("payment_intent", v)
			in.PaymentIntent = r.paymentIntent(pi)
		case "payments":
			in.Payments = nil
			r.each(r.obj("payments", v), func(k []byte, v *fastjson.Value) {
				if string(k) != "data" {
					return
				}
				in.Payments = nil
				for _, p := range r.arr("payments.data", v) {
					in.Payments = append(in.Payments, r.invoicePayment(p))
				}
			})
		}
	})
	return in
}

func (r *reader) invoicePayment(v *fastjson.Value) invoicePayment {
	var p invoicePayment
	r.each(r.obj("payments.data[]", v), func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "is_default":
			p.IsDefault = r.bool("payments.data[].is_default", v)
		case "status":
			p.Status = r.str("payments.data[].status", v)
		case "payment":
			p.Intent = nil
			r.each(r.obj("payments.data[].payment", v), func(k []byte, v *fastjson.Value) {
				if string(k) == "payment_intent" {
					_, pi := r.expandable("payments.data[].payment.payment_intent", v)
					p.Intent = r.paymentIntent(pi)
				}
			})
		}
	})
	return p
}
