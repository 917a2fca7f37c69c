package stripefake

import (
	"fmt"
	"time"
)

// Charge is one payment attempt Stripe made on an invoice: the charge a
// card network sees. Tests count them to prove what reached the card.
type Charge struct {
	// ID is the charge (ch_...), Amount and Currency what it charged.
	ID            string
	Amount        int64
	Currency      string
	Customer      string
	Subscription  string
	Invoice       string
	PaymentMethod string
	// BillingReason is the invoice's (subscription_create,
	// subscription_update, subscription_cycle, manual).
	BillingReason string
	// Automatic marks one of Stripe's own retries (Smart Retries), not
	// the answer to a request.
	Automatic bool
	Succeeded bool
	// FailureCode is the decline or error code of a failed charge.
	FailureCode string
	At          time.Time
}

// Charges returns every payment attempt so far, in order.
func (s *Server) Charges() []Charge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Charge(nil), s.charges...)
}

// What happens to a subscription when the last retry of a renewal invoice
// fails: the account's "Manage failed payments" setting (Dashboard,
// Billing > Revenue recovery > Retries: "Subscription status: cancel the
// subscription / mark the subscription as unpaid / leave the subscription
// past-due"). Cancel is the default. See "Automate payment retries"
// (https://docs.stripe.com/billing/revenue-recovery/smart-retries) and the
// subscription statuses in "How subscriptions work"
// (https://docs.stripe.com/billing/subscriptions/overview#subscription-statuses):
// "Once Stripe has exhausted all payment retry attempts, the subscription
// will become canceled or unpaid (depending on your subscriptions
// settings)", or stays past_due.
const (
	DunningCancel  = "cancel"
	DunningUnpaid  = "unpaid"
	DunningPastDue = "past_due"
)

// SetDunningEnd sets the account's setting for subscriptions whose payment
// retries are exhausted: DunningCancel (default), DunningUnpaid or
// DunningPastDue.
func (s *Server) SetDunningEnd(v string) error {
	switch v {
	case DunningCancel, DunningUnpaid, DunningPastDue:
	default:
		return fmt.Errorf("unknown dunning end %q: want %s, %s or %s", v, DunningCancel, DunningUnpaid, DunningPastDue)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dunningEnd = v
	return nil
}

// DunningEnd returns the account's setting (DunningCancel when unset).
func (s *Server) DunningEnd() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dunningEndLocked()
}

func (s *Server) dunningEndLocked() string {
	if s.dunningEnd == "" {
		return DunningCancel
	}
	return s.dunningEnd
}

// retriesExhausted applies the account's dunning setting to sub once the
// last automatic retry of its latest invoice failed. Stripe records why it
// canceled in cancellation_details.reason = payment_failed
// (https://docs.stripe.com/api/subscriptions/object#subscription_object-cancellation_details-reason:
// "payment_failed", "payment_disputed", "cancellation_requested").
func (s *Server) retriesExhausted(sub *subscription) {
	switch s.dunningEndLocked() {
	case DunningUnpaid:
		sub.status = "unpaid"
	case DunningPastDue:
		sub.status = "past_due"
	default:
		sub.cancellation = cancellationDetails{reason: "payment_failed"}
		s.endSubscription(nil, sub, false)
	}
}

// cancellationDetails is a subscription's cancellation_details.
type cancellationDetails struct {
	reason, feedback, comment string
}

func (c cancellationDetails) json() map[string]any {
	return map[string]any{"reason": nullable(c.reason), "feedback": nullable(c.feedback), "comment": nullable(c.comment)}
}

// requestedCancellation is the cancellation_details of a cancellation made
// or scheduled through the API or the Dashboard: reason
// cancellation_requested, with the request's feedback and comment
// (https://docs.stripe.com/api/subscriptions/cancel#cancel_subscription-cancellation_details,
// https://docs.stripe.com/api/subscriptions/update#update_subscription-cancellation_details).
func requestedCancellation(r *request, prev cancellationDetails) cancellationDetails {
	c := cancellationDetails{reason: "cancellation_requested", feedback: prev.feedback, comment: prev.comment}
	if r != nil {
		if v, ok := r.str("cancellation_details[comment]"); ok {
			c.comment = v
		}
		if v, ok := r.str("cancellation_details[feedback]"); ok {
			c.feedback = v
		}
	}
	return c
}

// chargeWouldSucceed tells how a charge to the customer's default payment
// method goes, without making it: "" when it succeeds, else the error code
// and decline code.
func (s *Server) chargeOutcome(customerID string) (pm, code, decline string) {
	if c := s.customers[customerID]; c != nil {
		pm = c.defaultPM
	}
	switch s.behaviourOf(pm) {
	case "":
		return pm, "payment_method_missing", ""
	case behaviourDeclines:
		return pm, "card_declined", "generic_decline"
	case behaviourNeeds3DS:
		return pm, "authentication_required", "authentication_required"
	}
	return pm, "", ""
}

// has tells whether the request carries parameter k.
func (r *request) has(k string) bool {
	_, ok := r.str(k)
	return ok
}
