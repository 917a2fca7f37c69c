package webhookserver

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/go-faster/jx"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
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

// subscription is the subscription in internal/stripe's shape (API
// 2023-10-16: one period), which the status mapping (internal/billing)
// takes from both writers.
func (so *subscriptionObject) subscription() *stripe.Subscription {
	start, end := so.period()
	sub := &stripe.Subscription{ID: so.ID, CustomerID: so.Customer, Status: so.Status,
		CurrentPeriodStart: start, CurrentPeriodEnd: end, CancelAtPeriodEnd: so.CancelAtPeriodEnd,
		CancelAt: so.CancelAt, CanceledAt: so.CanceledAt, TrialEnd: so.TrialEnd, PauseCollection: so.PauseCollection,
		Metadata: so.Metadata}
	for _, it := range so.Items {
		sub.Items = append(sub.Items, stripe.SubscriptionItem{ID: it.ID, PriceID: it.PriceID, Quantity: it.Quantity})
	}
	return sub
}

// invoice is the invoice in internal/stripe's shape, without its payment
// facts (paymentFacts reads them from the event).
func (in *invoiceObject) invoice() *stripe.Invoice {
	return &stripe.Invoice{ID: in.ID, SubscriptionID: in.subscriptionID(), Status: in.Status,
		AmountDue: in.AmountDue, AmountPaid: in.AmountPaid, Currency: in.Currency, AttemptCount: in.AttemptCount,
		NextPaymentAttempt: in.NextPaymentAttempt, HostedInvoiceURL: in.HostedInvoiceURL,
		BillingReason: in.BillingReason, Created: in.Created}
}

var errNotEvent = errors.New("body is not a Stripe event")

// decodeEvent reads an event and the fields the operator reads from it,
// tolerant of unknown fields and API versions, strict about the types of the
// fields it reads (as encoding/json would be).
//
// It makes one pass over the body with go-faster/jx's streaming decoder:
// the members of interest are read as they come, every other value is
// skipped, and skipping validates it, so a body that is not JSON is refused
// as a whole, as before. Stripe sends "type" after "data", so data.object is
// read as both a subscription and an invoice (the two share only id and
// status), each with its own type errors, and the event's type then picks
// one. A repeated key's last value counts, as with encoding/json.
func decodeEvent(body []byte) (*event, error) {
	d := decoders.Get().(*jx.Decoder)
	defer func() {
		d.ResetBytes(nil) // keep no reference to the body
		decoders.Put(d)
	}()
	d.ResetBytes(body)
	if d.Next() != jx.Object {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		return nil, errNotEvent
	}
	var (
		r  reader
		ev = &event{}
		o  = &objectFields{}
	)
	err := d.ObjBytes(func(d *jx.Decoder, k []byte) error {
		var err error
		switch string(k) {
		case "id":
			ev.ID, err = r.str(d, "id")
		case "object":
			ev.Object, err = r.str(d, "object")
		case "type":
			ev.Type, err = r.str(d, "type")
		case "api_version":
			ev.APIVersion, err = r.str(d, "api_version")
		case "created":
			ev.Created, err = r.int(d, "created")
		case "livemode":
			ev.Livemode, err = r.bool(d, "livemode")
		case "data":
			*o = objectFields{}
			err = o.data(d)
		default:
			err = d.Skip()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := d.Skip(); err != io.EOF {
		return nil, errTrailingData
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
	objErr := o.shapeR.err
	switch {
	case strings.HasPrefix(ev.Type, "customer.subscription."):
		ev.Sub = &o.sub
		if objErr == nil {
			objErr = o.subR.err
		}
	case strings.HasPrefix(ev.Type, "invoice."):
		ev.Inv = &o.inv
		if objErr == nil {
			objErr = o.invR.err
		}
	}
	if objErr != nil {
		ev.Sub, ev.Inv, ev.ObjectErr = nil, nil, objErr
	}
	return ev, nil
}

var errTrailingData = errors.New("data after the event")

// decoders reuses decoders. Not jx's own pool: its PutDecoder keeps the
// last input as the decoder's buffer.
var decoders = sync.Pool{New: func() any { return &jx.Decoder{} }}

// objectFields is data.object read as both shapes, each with its own first
// type error; shapeR holds a type error of data or data.object themselves.
type objectFields struct {
	shapeR reader
	sub    subscriptionObject
	subR   reader
	inv    invoiceObject
	invR   reader
}

// data reads the event's data member.
func (o *objectFields) data(d *jx.Decoder) error {
	_, err := o.shapeR.object(d, "data", func(d *jx.Decoder, k []byte) error {
		if string(k) != "object" {
			return d.Skip()
		}
		*o = objectFields{shapeR: o.shapeR}
		_, err := o.shapeR.object(d, "object", o.member)
		return err
	})
	return err
}

// member reads one member of data.object into the shape(s) that have it.
func (o *objectFields) member(d *jx.Decoder, k []byte) error {
	so, sr := &o.sub, &o.subR
	in, ir := &o.inv, &o.invR
	var err error
	switch string(k) {
	// Both shapes.
	case "id", "status":
		var one reader
		var s string
		s, err = one.str(d, string(k))
		if string(k) == "id" {
			so.ID, in.ID = s, s
		} else {
			so.Status, in.Status = s, s
		}
		sr.keep(one.err)
		ir.keep(one.err)

	// Subscription.
	case "customer":
		so.Customer, _, err = sr.expandable(d, "customer", "customer.id", nil)
	case "latest_invoice":
		so.LatestInvoice, _, err = sr.expandable(d, "latest_invoice", "latest_invoice.id", nil)
	case "current_period_start":
		so.CurrentPeriodStart, err = sr.int(d, "current_period_start")
	case "current_period_end":
		so.CurrentPeriodEnd, err = sr.int(d, "current_period_end")
	case "cancel_at_period_end":
		so.CancelAtPeriodEnd, err = sr.bool(d, "cancel_at_period_end")
	case "cancel_at":
		so.CancelAt, err = sr.int(d, "cancel_at")
	case "canceled_at":
		so.CanceledAt, err = sr.int(d, "canceled_at")
	case "trial_end":
		so.TrialEnd, err = sr.int(d, "trial_end")
	case "pause_collection":
		so.PauseCollection = ""
		_, err = sr.object(d, "pause_collection", func(d *jx.Decoder, k []byte) error {
			if string(k) != "behavior" {
				return d.Skip()
			}
			var err error
			so.PauseCollection, err = sr.str(d, "pause_collection.behavior")
			return err
		})
	case "metadata":
		so.Metadata, err = sr.strMap(d, "metadata")
	case "items":
		so.Items = nil
		_, err = sr.object(d, "items", func(d *jx.Decoder, k []byte) error {
			if string(k) != "data" {
				return d.Skip()
			}
			so.Items = nil
			return sr.array(d, "items.data", func(d *jx.Decoder) error {
				it, err := sr.item(d)
				so.Items = append(so.Items, it)
				return err
			})
		})

	// Invoice.
	case "subscription":
		in.Subscription, _, err = ir.expandable(d, "subscription", "subscription.id", nil)
	case "subscription_details":
		in.SubscriptionMetadata = nil
		_, err = ir.object(d, "subscription_details", func(d *jx.Decoder, k []byte) error {
			if string(k) != "metadata" {
				return d.Skip()
			}
			var err error
			in.SubscriptionMetadata, err = ir.strMap(d, "subscription_details.metadata")
			return err
		})
	case "parent":
		in.ParentSubscription, in.ParentMetadata = "", nil
		_, err = ir.object(d, "parent", func(d *jx.Decoder, k []byte) error {
			if string(k) != "subscription_details" {
				return d.Skip()
			}
			in.ParentSubscription, in.ParentMetadata = "", nil
			_, err := ir.object(d, "parent.subscription_details", func(d *jx.Decoder, k []byte) error {
				var err error
				switch string(k) {
				case "subscription":
					in.ParentSubscription, _, err = ir.expandable(d, "parent.subscription_details.subscription", "parent.subscription_details.subscription.id", nil)
				case "metadata":
					in.ParentMetadata, err = ir.strMap(d, "parent.subscription_details.metadata")
				default:
					err = d.Skip()
				}
				return err
			})
			return err
		})
	case "amount_due":
		in.AmountDue, err = ir.int(d, "amount_due")
	case "amount_paid":
		in.AmountPaid, err = ir.int(d, "amount_paid")
	case "currency":
		in.Currency, err = ir.str(d, "currency")
	case "attempt_count":
		in.AttemptCount, err = ir.int(d, "attempt_count")
	case "next_payment_attempt":
		in.NextPaymentAttempt, err = ir.int(d, "next_payment_attempt")
	case "hosted_invoice_url":
		in.HostedInvoiceURL, err = ir.str(d, "hosted_invoice_url")
	case "billing_reason":
		in.BillingReason, err = ir.str(d, "billing_reason")
	case "created":
		in.Created, err = ir.int(d, "created")
	case "payment_intent":
		in.PaymentIntent, err = ir.paymentIntent(d, "payment_intent")
	case "payments":
		in.Payments = nil
		_, err = ir.object(d, "payments", func(d *jx.Decoder, k []byte) error {
			if string(k) != "data" {
				return d.Skip()
			}
			in.Payments = nil
			return ir.array(d, "payments.data", func(d *jx.Decoder) error {
				p, err := ir.invoicePayment(d)
				in.Payments = append(in.Payments, p)
				return err
			})
		})
	default:
		err = d.Skip()
	}
	return err
}

// reader reads typed values and keeps the first type error. A missing or
// null value reads as the zero value; a value of another type is skipped and
// recorded as an error naming the field. The error its methods return is
// the decoder's: the body is not JSON.
type reader struct{ err error }

func (r *reader) keep(err error) {
	if r.err == nil {
		r.err = err
	}
}

// mismatch records that key is not of the type want and skips its value.
func (r *reader) mismatch(d *jx.Decoder, key string, want string) error {
	r.keep(fmt.Errorf("field %q is not %s", key, want))
	return d.Skip()
}

// object calls fn for every member of the object at d; it reports whether
// there was an object (null: none).
func (r *reader) object(d *jx.Decoder, key string, fn func(d *jx.Decoder, k []byte) error) (bool, error) {
	switch d.Next() {
	case jx.Object:
		return true, d.ObjBytes(fn)
	case jx.Null:
		return false, d.Null()
	}
	return false, r.mismatch(d, key, "an object")
}

// array calls fn for every element of the array at d (null: none).
func (r *reader) array(d *jx.Decoder, key string, fn func(d *jx.Decoder) error) error {
	switch d.Next() {
	case jx.Array:
		return d.Arr(fn)
	case jx.Null:
		return d.Null()
	}
	return r.mismatch(d, key, "an array")
}

func (r *reader) str(d *jx.Decoder, key string) (string, error) {
	switch d.Next() {
	case jx.String:
		return d.Str()
	case jx.Null:
		return "", d.Null()
	}
	return "", r.mismatch(d, key, "a string")
}

// int reads an integer as encoding/json reads one into an int64: a JSON
// number that strconv.ParseInt accepts (no fraction, no exponent, no
// overflow).
func (r *reader) int(d *jx.Decoder, key string) (int64, error) {
	switch d.Next() {
	case jx.Number:
		raw, err := d.Raw()
		if err != nil {
			return 0, err
		}
		n, perr := strconv.ParseInt(string(raw), 10, 64)
		if perr != nil {
			r.keep(fmt.Errorf("field %q is not an integer", key))
		}
		return n, nil
	case jx.Null:
		return 0, d.Null()
	}
	return 0, r.mismatch(d, key, "an integer")
}

func (r *reader) bool(d *jx.Decoder, key string) (bool, error) {
	switch d.Next() {
	case jx.Bool:
		return d.Bool()
	case jx.Null:
		return false, d.Null()
	}
	return false, r.mismatch(d, key, "a boolean")
}

// expandable reads a value that is an ID or, expanded, the object; it
// returns the ID and whether the object was expanded. member, if not nil,
// is called for the expanded object's members other than id.
func (r *reader) expandable(d *jx.Decoder, key, idKey string, member func(d *jx.Decoder, k []byte) error) (id string, expanded bool, err error) {
	switch d.Next() {
	case jx.String:
		id, err = d.Str()
		return id, false, err
	case jx.Null:
		return "", false, d.Null()
	case jx.Object:
		err = d.ObjBytes(func(d *jx.Decoder, k []byte) error {
			if string(k) == "id" {
				var err error
				id, err = r.str(d, idKey)
				return err
			}
			if member != nil {
				return member(d, k)
			}
			return d.Skip()
		})
		return id, true, err
	}
	return "", false, r.mismatch(d, key, "an ID or an object")
}

// strMap reads an object of strings (null: nil; {}: empty).
func (r *reader) strMap(d *jx.Decoder, key string) (map[string]string, error) {
	switch d.Next() {
	case jx.Null:
		return nil, d.Null()
	case jx.Object:
		m := map[string]string{}
		err := d.ObjBytes(func(d *jx.Decoder, k []byte) error {
			switch d.Next() {
			case jx.String:
				v, err := d.Str()
				m[string(k)] = v
				return err
			case jx.Null:
				m[string(k)] = ""
				return d.Null()
			}
			return r.mismatch(d, key+"."+string(k), "a string")
		})
		return m, err
	}
	return nil, r.mismatch(d, key, "an object")
}

func (r *reader) item(d *jx.Decoder) (subscriptionItem, error) {
	var it subscriptionItem
	_, err := r.object(d, "items.data[]", func(d *jx.Decoder, k []byte) error {
		var err error
		switch string(k) {
		case "id":
			it.ID, err = r.str(d, "items.data[].id")
		case "quantity":
			it.Quantity, err = r.int(d, "items.data[].quantity")
		case "current_period_start":
			it.CurrentPeriodStart, err = r.int(d, "items.data[].current_period_start")
		case "current_period_end":
			it.CurrentPeriodEnd, err = r.int(d, "items.data[].current_period_end")
		case "price":
			it.PriceID = ""
			_, err = r.object(d, "items.data[].price", func(d *jx.Decoder, k []byte) error {
				if string(k) != "id" {
					return d.Skip()
				}
				var err error
				it.PriceID, err = r.str(d, "items.data[].price.id")
				return err
			})
		default:
			err = d.Skip()
		}
		return err
	})
	return it, err
}

// paymentIntent reads an expandable payment intent: nil unless expanded.
func (r *reader) paymentIntent(d *jx.Decoder, key string) (*paymentIntent, error) {
	var pi paymentIntent
	id, expanded, err := r.expandable(d, key, key+".id", func(d *jx.Decoder, k []byte) error {
		var err error
		switch string(k) {
		case "status":
			pi.Status, err = r.str(d, key+".status")
		case "last_payment_error":
			pi.ErrorCode, pi.DeclineCode = "", ""
			_, err = r.object(d, key+".last_payment_error", func(d *jx.Decoder, k []byte) error {
				var err error
				switch string(k) {
				case "code":
					pi.ErrorCode, err = r.str(d, key+".last_payment_error.code")
				case "decline_code":
					pi.DeclineCode, err = r.str(d, key+".last_payment_error.decline_code")
				default:
					err = d.Skip()
				}
				return err
			})
		default:
			err = d.Skip()
		}
		return err
	})
	if !expanded {
		return nil, err
	}
	pi.ID = id
	return &pi, err
}

func (r *reader) invoicePayment(d *jx.Decoder) (invoicePayment, error) {
	var p invoicePayment
	_, err := r.object(d, "payments.data[]", func(d *jx.Decoder, k []byte) error {
		var err error
		switch string(k) {
		case "is_default":
			p.IsDefault, err = r.bool(d, "payments.data[].is_default")
		case "status":
			p.Status, err = r.str(d, "payments.data[].status")
		case "payment":
			p.Intent = nil
			_, err = r.object(d, "payments.data[].payment", func(d *jx.Decoder, k []byte) error {
				if string(k) != "payment_intent" {
					return d.Skip()
				}
				var err error
				p.Intent, err = r.paymentIntent(d, "payments.data[].payment.payment_intent")
				return err
			})
		default:
			err = d.Skip()
		}
		return err
	})
	return p, err
}
