package stripe

import (
	"errors"
	"fmt"
	"time"
)

// Class tells a reconciler what to do with an error.
type Class int

const (
	// ClassRetryable: network errors, 5xx, lock_timeout. Retry with backoff.
	ClassRetryable Class = iota
	// ClassRateLimited: 429 or the client-side limiter. Requeue after
	// RetryAfter.
	ClassRateLimited
	// ClassTerminal: Stripe rejected the request (invalid parameters); a
	// retry of the same spec fails the same way.
	ClassTerminal
	// ClassNotFound: the named object does not exist (resource_missing).
	ClassNotFound
	// ClassAuth: the API key is missing, wrong or lacks permission.
	ClassAuth
	// ClassIdempotency: the idempotency key was reused with other parameters.
	ClassIdempotency
)

func (c Class) String() string {
	switch c {
	case ClassRetryable:
		return "Retryable"
	case ClassRateLimited:
		return "RateLimited"
	case ClassTerminal:
		return "Terminal"
	case ClassNotFound:
		return "NotFound"
	case ClassAuth:
		return "Auth"
	case ClassIdempotency:
		return "Idempotency"
	}
	return "Unknown"
}

// Error is every error this package returns for a failed Stripe call. Its
// Error() text is stable between identical failures (no request ID, no
// timestamps, no secrets) so it can go into a condition message; RequestID
// is for logs.
type Error struct {
	Class      Class
	HTTPStatus int
	// Type, Code, DeclineCode and Param are Stripe's error fields.
	Type        string
	Code        string
	DeclineCode string
	Param       string
	// Message is Stripe's message, redacted of secrets and card numbers.
	Message string
	// RequestID is Stripe's request ID, for logs only.
	RequestID string
	// RetryAfter is how long to wait before retrying (rate limits), 0 if
	// unknown.
	RetryAfter time.Duration
	// RateLimitReason is a 429's Stripe-Rate-Limited-Reason (global-rate,
	// endpoint-rate, resource-specific...), "" when Stripe gave none.
	RateLimitReason string
	// Op is the operation, such as "create customer".
	Op  string
	Err error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Code != "" {
		return fmt.Sprintf("stripe %s: %s (%s)", e.Op, msg, e.Code)
	}
	return fmt.Sprintf("stripe %s: %s", e.Op, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err; errors not from this package are
// ClassRetryable.
func ClassOf(err error) Class {
	var se *Error
	if errors.As(err, &se) {
		return se.Class
	}
	return ClassRetryable
}

// IsNotFound reports whether err says the Stripe object does not exist.
func IsNotFound(err error) bool { return err != nil && ClassOf(err) == ClassNotFound }

// IsRetryable reports whether a retry of the same call may succeed.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	c := ClassOf(err)
	return c == ClassRetryable || c == ClassRateLimited
}

// IsCardDeclined reports whether err is Stripe's definitive answer that a
// charge was declined: a 402 card_error (https://docs.stripe.com/declines,
// https://docs.stripe.com/api/errors: "402 Request Failed" and type
// card_error). A retry with the same card fails the same way, and card
// networks limit how often a declined card may be retried.
func IsCardDeclined(err error) bool {
	var se *Error
	return errors.As(err, &se) && (se.HTTPStatus == 402 || se.Type == "card_error")
}

// DeclineCode is the decline code of a card error, else its error code.
func DeclineCode(err error) string {
	var se *Error
	if !errors.As(err, &se) {
		return ""
	}
	if se.DeclineCode != "" {
		return se.DeclineCode
	}
	return se.Code
}

// RetryAfter returns how long Stripe asked to wait, and whether it did.
func RetryAfter(err error) (time.Duration, bool) {
	var se *Error
	if errors.As(err, &se) && se.Class == ClassRateLimited {
		return se.RetryAfter, true
	}
	return 0, false
}
