package stripe

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
)

var (
	secretRE = regexp.MustCompile(`\b(sk|rk|pk)_(live|test)_[A-Za-z0-9]+|whsec_[A-Za-z0-9+/=]+`)
	cardRE   = regexp.MustCompile(`\b(?:\d[ -]?){12,18}\d\b`)
)

// Redact removes API keys, webhook secrets and card-like numbers from s.
func Redact(s string) string {
	s = secretRE.ReplaceAllString(s, "[redacted]")
	return cardRE.ReplaceAllString(s, "[redacted]")
}

// classify turns a stripe-go error into an *Error.
func classify(op string, err error) *Error {
	var local *Error
	if errors.As(err, &local) {
		if local.Op == "" {
			local.Op = op
		}
		return local
	}
	var se *stripego.Error
	if !errors.As(err, &se) {
		msg := Redact(err.Error())
		if errors.Is(err, context.DeadlineExceeded) {
			// A stable message: the URL and timings belong in the logs.
			msg = "Stripe did not answer within the call's deadline"
		}
		return &Error{Class: ClassRetryable, Op: op, Message: msg, Err: err}
	}
	e := &Error{
		Op:          op,
		HTTPStatus:  se.HTTPStatusCode,
		Type:        string(se.Type),
		Code:        string(se.Code),
		DeclineCode: string(se.DeclineCode),
		Param:       se.Param,
		Message:     Redact(se.Msg),
		RequestID:   se.RequestID,
		Err:         err,
	}
	var hdr http.Header
	if se.LastResponse != nil {
		hdr = se.LastResponse.Header
		if e.RequestID == "" {
			e.RequestID = se.LastResponse.RequestID
		}
	}
	switch {
	case e.HTTPStatus == http.StatusTooManyRequests && e.Code == string(stripego.ErrorCodeLockTimeout):
		e.Class = ClassRetryable
	case e.HTTPStatus == http.StatusTooManyRequests:
		e.Class = ClassRateLimited
		e.RetryAfter = retryAfter(hdr)
		e.RateLimitReason = hdr.Get(RateLimitedReasonHeader)
	case e.HTTPStatus == http.StatusConflict:
		// A 409 (idempotency_key_in_use: a request under the same key is
		// still running, or another conflicting request) is about timing,
		// not the request: Stripe saves nothing for it
		// (https://docs.stripe.com/api/idempotent_requests), and stripe-go
		// has already retried it. It is Retryable, so the reconcile comes
		// back after the workqueue's short backoff: a create under its
		// persisted intent's key gets the finished request's saved answer;
		// other writes set a target state under a fresh key, so repeating
		// them is a no-op once the first has finished (and a charging one
		// stays counted as an attempt, see the subscription charge guard).
		// It is never an Idempotency (spec) error, which would stall the
		// resource.
		e.Class = ClassRetryable
	case se.Type == stripego.ErrorTypeIdempotency:
		e.Class = ClassIdempotency
	case e.HTTPStatus == http.StatusUnauthorized || e.HTTPStatus == http.StatusForbidden:
		e.Class = ClassAuth
	case e.Code == string(stripego.ErrorCodeResourceMissing) || e.HTTPStatus == http.StatusNotFound:
		e.Class = ClassNotFound
	case e.HTTPStatus >= 500 || e.HTTPStatus == 0:
		e.Class = ClassRetryable
		if hdr.Get("Stripe-Should-Retry") == "false" {
			e.Class = ClassTerminal
		}
	default:
		e.Class = ClassTerminal
	}
	if e.Message == "" {
		e.Message = http.StatusText(e.HTTPStatus)
	}
	return e
}

func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return time.Second
	}
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return time.Second
}
