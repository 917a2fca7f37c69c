package webhookserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// event is the part of a Stripe event the operator reads.
type event struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"`
	Livemode   bool   `json:"livemode"`
	Data       struct {
		Object             json.RawMessage `json:"object"`
		PreviousAttributes json.RawMessage `json:"previous_attributes"`
	} `json:"data"`
}

type priceObject struct {
	ID         string `json:"id"`
	UnitAmount int64  `json:"unit_amount"`
	Currency   string `json:"currency"`
}

// subscriptionObject is the part of a subscription the operator reads.
type subscriptionObject struct {
	ID       string     `json:"id"`
	Customer expandable `json:"customer"`
	Status   string     `json:"status"`
	Items    struct {
		Data []struct {
			ID       string      `json:"id"`
			Price    priceObject `json:"price"`
			Quantity int64       `json:"quantity"`
		} `json:"data"`
	} `json:"items"`
	CurrentPeriodStart int64                      `json:"current_period_start"`
	CurrentPeriodEnd   int64                      `json:"current_period_end"`
	CancelAtPeriodEnd  bool                       `json:"cancel_at_period_end"`
	CancelAt           int64                      `json:"cancel_at"`
	CanceledAt         int64                      `json:"canceled_at"`
	TrialEnd           int64                      `json:"trial_end"`
	PauseCollection    *struct{ Behavior string } `json:"pause_collection"`
	Metadata           map[string]string          `json:"metadata"`
	LatestInvoice      expandable                 `json:"latest_invoice"`
}

// invoiceObject is the part of an invoice the operator reads.
type invoiceObject struct {
	ID                  string     `json:"id"`
	Subscription        expandable `json:"subscription"`
	SubscriptionDetails struct {
		Metadata map[string]string `json:"metadata"`
	} `json:"subscription_details"`
	Status             string     `json:"status"`
	AmountDue          int64      `json:"amount_due"`
	AmountPaid         int64      `json:"amount_paid"`
	Currency           string     `json:"currency"`
	AttemptCount       int64      `json:"attempt_count"`
	NextPaymentAttempt int64      `json:"next_payment_attempt"`
	HostedInvoiceURL   string     `json:"hosted_invoice_url"`
	BillingReason      string     `json:"billing_reason"`
	PaymentIntent      expandable `json:"payment_intent"`
}

type paymentIntentObject struct {
	Status           string `json:"status"`
	LastPaymentError *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
	} `json:"last_payment_error"`
}

// expandable is a Stripe field that is an ID string or, when expanded, the
// object itself.
type expandable struct {
	ID  string
	Raw json.RawMessage
}

func (e *expandable) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		return nil
	case b[0] == '"':
		return json.Unmarshal(b, &e.ID)
	case b[0] == '{':
		e.Raw = append(json.RawMessage(nil), b...)
		var withID struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &withID); err != nil {
			return err
		}
		e.ID = withID.ID
		return nil
	}
	return errors.New("expandable field is neither a string nor an object")
}

var errNotEvent = errors.New("body is not a Stripe event")

// decodeEvent parses an event, tolerant of unknown fields and API versions.
func decodeEvent(body []byte) (*event, error) {
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, err
	}
	if ev.ID == "" || ev.Type == "" || (ev.Object != "" && ev.Object != "event") || !strings.HasPrefix(ev.ID, "evt_") {
		return nil, errNotEvent
	}
	return &ev, nil
}

func (ev *event) subscription() (*subscriptionObject, error) {
	var s subscriptionObject
	if err := json.Unmarshal(ev.Data.Object, &s); err != nil {
		return nil, err
	}
	if s.ID == "" {
		return nil, errNotEvent
	}
	return &s, nil
}

func (ev *event) invoice() (*invoiceObject, error) {
	var in invoiceObject
	if err := json.Unmarshal(ev.Data.Object, &in); err != nil {
		return nil, err
	}
	return &in, nil
}

func (in *invoiceObject) paymentIntent() *paymentIntentObject {
	if len(in.PaymentIntent.Raw) == 0 {
		return nil
	}
	var pi paymentIntentObject
	if json.Unmarshal(in.PaymentIntent.Raw, &pi) != nil {
		return nil
	}
	return &pi
}
