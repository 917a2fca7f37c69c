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
// fields it reads (as encoding/json would be).
func decodeEvent(body []byte) (*event, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	root, err := p.ParseBytes(body)
	if err != nil {
		return nil, err
	}
	var r reader
	if root.Type() != fastjson.TypeObject {
		return nil, errNotEvent
	}
	ev := &event{
		ID:         r.str(root, "id"),
		Object:     r.str(root, "object"),
		Type:       r.str(root, "type"),
		APIVersion: r.str(root, "api_version"),
		Created:    r.int(root, "created"),
		Livemode:   r.bool(root, "livemode"),
	}
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
	obj := or.obj(or.obj(root, "data"), "object")
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

// reader reads typed fields and keeps the first type error. A missing field
// or null reads as the zero value; a field of another type is an error.
type reader struct{ err error }

func (r *reader) fail(key string, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("field %q is not %s", key, want)
	}
}

// field returns v's member key, nil when v is nil or key is missing or null.
func field(v *fastjson.Value, key string) *fastjson.Value {
	if v == nil {
		return nil
	}
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return nil
	}
	return f
}

func (r *reader) obj(v *fastjson.Value, key string) *fastjson.Value {
	f := field(v, key)
	if f != nil && f.Type() != fastjson.TypeObject {
		r.fail(key, "an object")
		return nil
	}
	return f
}

func (r *reader) arr(v *fastjson.Value, key string) []*fastjson.Value {
	f := field(v, key)
	if f == nil {
		return nil
	}
	a, err := f.Array()
	if err != nil {
		r.fail(key, "an array")
	}
	return a
}

func (r *reader) str(v *fastjson.Value, key string) string {
	f := field(v, key)
	if f == nil {
		return ""
	}
	b, err := f.StringBytes()
	if err != nil {
		r.fail(key, "a string")
	}
	return string(b)
}

func (r *reader) int(v *fastjson.Value, key string) int64 {
	f := field(v, key)
	if f == nil {
		return 0
	}
	n, err := f.Int64()
	if err != nil {
		r.fail(key, "an integer")
	}
	return n
}

func (r *reader) bool(v *fastjson.Value, key string) bool {
	f := field(v, key)
	if f == nil {
		return false
	}
	b, err := f.Bool()
	if err != nil {
		r.fail(key, "a boolean")
	}
	return b
}

// expandable reads a field that is an ID or, expanded, the object; it
// returns the ID and the object (nil unless expanded).
func (r *reader) expandable(v *fastjson.Value, key string) (string, *fastjson.Value) {
	f := field(v, key)
	switch {
	case f == nil:
		return "", nil
	case f.Type() == fastjson.TypeString:
		b, _ := f.StringBytes()
		return string(b), nil
	case f.Type() == fastjson.TypeObject:
		return r.str(f, "id"), f
	}
	r.fail(key, "an ID or an object")
	return "", nil
}

func (r *reader) strMap(v *fastjson.Value, key string) map[string]string {
	o := r.obj(v, key)
	if o == nil {
		return nil
	}
	obj, _ := o.Object()
	m := make(map[string]string, obj.Len())
	obj.Visit(func(k []byte, val *fastjson.Value) {
		switch val.Type() {
		case fastjson.TypeString:
			b, _ := val.StringBytes()
			m[string(k)] = string(b)
		case fastjson.TypeNull:
			m[string(k)] = ""
		default:
			r.fail(key+"."+string(k), "a string")
		}
	})
	return m
}

func (r *reader) subscription(o *fastjson.Value) *subscriptionObject {
	so := &subscriptionObject{
		ID:                 r.str(o, "id"),
		Status:             r.str(o, "status"),
		CurrentPeriodStart: r.int(o, "current_period_start"),
		CurrentPeriodEnd:   r.int(o, "current_period_end"),
		CancelAtPeriodEnd:  r.bool(o, "cancel_at_period_end"),
		CancelAt:           r.int(o, "cancel_at"),
		CanceledAt:         r.int(o, "canceled_at"),
		TrialEnd:           r.int(o, "trial_end"),
		PauseCollection:    r.str(r.obj(o, "pause_collection"), "behavior"),
		Metadata:           r.strMap(o, "metadata"),
	}
	so.Customer, _ = r.expandable(o, "customer")
	so.LatestInvoice, _ = r.expandable(o, "latest_invoice")
	for _, it := range r.arr(r.obj(o, "items"), "data") {
		if it.Type() != fastjson.TypeObject {
			if it.Type() != fastjson.TypeNull {
				r.fail("items.data[]", "an object")
			}
			so.Items = append(so.Items, subscriptionItem{})
			continue
		}
		so.Items = append(so.Items, subscriptionItem{
			ID:                 r.str(it, "id"),
			PriceID:            r.str(r.obj(it, "price"), "id"),
			Quantity:           r.int(it, "quantity"),
			CurrentPeriodStart: r.int(it, "current_period_start"),
			CurrentPeriodEnd:   r.int(it, "current_period_end"),
		})
	}
	return so
}

func (r *reader) paymentIntent(pi *fastjson.Value) *paymentIntent {
	if pi == nil {
		return nil
	}
	lpe := r.obj(pi, "last_payment_error")
	return &paymentIntent{ID: r.str(pi, "id"), Status: r.str(pi, "status"), ErrorCode: r.str(lpe, "code"), DeclineCode: r.str(lpe, "decline_code")}
}

func (r *reader) invoice(o *fastjson.Value) *invoiceObject {
	parent := r.obj(r.obj(o, "parent"), "subscription_details")
	in := &invoiceObject{
		ID:                   r.str(o, "id"),
		SubscriptionMetadata: r.strMap(r.obj(o, "subscription_details"), "metadata"),
		ParentMetadata:       r.strMap(parent, "metadata"),
		Status:               r.str(o, "status"),
		AmountDue:            r.int(o, "amount_due"),
		AmountPaid:           r.int(o, "amount_paid"),
		Currency:             r.str(o, "currency"),
		AttemptCount:         r.int(o, "attempt_count"),
		NextPaymentAttempt:   r.int(o, "next_payment_attempt"),
		HostedInvoiceURL:     r.str(o, "hosted_invoice_url"),
		BillingReason:        r.str(o, "billing_reason"),
		Created:              r.int(o, "created"),
	}
	in.Subscription, _ = r.expandable(o, "subscription")
	in.ParentSubscription, _ = r.expandable(parent, "subscription")
	_, pi := r.expandable(o, "payment_intent")
	in.PaymentIntent = r.paymentIntent(pi)
	for _, p := range r.arr(r.obj(o, "payments"), "data") {
		if p.Type() != fastjson.TypeObject {
			if p.Type() != fastjson.TypeNull {
				r.fail("payments.data[]", "an object")
			}
			in.Payments = append(in.Payments, invoicePayment{})
			continue
		}
		_, intent := r.expandable(r.obj(p, "payment"), "payment_intent")
		in.Payments = append(in.Payments, invoicePayment{IsDefault: r.bool(p, "is_default"), Status: r.str(p, "status"), Intent: r.paymentIntent(intent)})
	}
	return in
}
