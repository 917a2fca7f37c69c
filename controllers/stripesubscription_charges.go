package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// No charge retry without a reason.
//
// A request the operator makes that can charge the customer's card (a
// create that pays its first invoice, an update that invoices at once) is
// a charge attempt. Card networks limit how often a declined card may be
// retried (Visa and Mastercard charge fees for excessive reattempts), and
// with payment_behavior error_if_incomplete Stripe answers a decline with a
// 402 and applies nothing, so the next pass would try again. Therefore:
//
//   - after a definitive decline (a card error) the operator makes no
//     request that can charge until the spec's generation changes, the
//     customer's default payment method changes, or the retry-payment
//     annotation gets a new value (status.charges.declined records all
//     three as they were at the decline);
//   - at most MaxChargeAttempts attempts per subscription in 24 hours,
//     whatever the reason (status.charges.attempts);
//   - every attempt and every refusal is an Event and a metric.
//
// The record is in status, written by the reconciler only, before the
// request (an attempt counts even if the manager dies before Stripe
// answers), so it survives restarts.
//
// What counts as a charge attempt:
//   - a create, unless it cannot charge: a trial, collection_method
//     send_invoice, or payment_behavior default_incomplete (Stripe leaves
//     the first invoice for the customer to confirm). A create with
//     allow_incomplete whose payment fails is an attempt; the incomplete
//     subscription it leaves is bound, never created again, and Stripe does
//     not retry a first invoice;
//   - an update that changes items and can invoice at once:
//     proration_behavior always_invoice, or a price swap (a price of
//     another interval resets the billing cycle and invoices now), outside
//     a trial and with charge_automatically, unless default_incomplete;
//   - an attempt that turned out not to charge (no new invoice was
//     attempted, say a swap within the same interval) is taken back.

// DefaultMaxChargeAttempts is MaxChargeAttempts when unset.
const DefaultMaxChargeAttempts = 3

// chargeWindow is the window MaxChargeAttempts applies to.
const chargeWindow = 24 * time.Hour

var (
	chargeAttemptsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stripe_operator_charge_attempts_total",
		Help: "Operator-made requests that can charge a customer (subscription creates and charging updates), by request (create, update) and result (succeeded, declined, failed, not_charged).",
	}, []string{"request", "result"})
	chargeRefusalsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stripe_operator_charge_refusals_total",
		Help: "Charge attempts the operator refused to make, by reason (PaymentDeclined: the last attempt was declined and nothing changed since; ChargeLimitReached: --max-charge-attempts in 24 hours).",
	}, []string{"reason"})
	chargeMetricsOnce sync.Once
)

// ChargeCollectors returns the charge-attempt collectors, for tests that
// check the alert rules, the dashboard and docs/operations.md against what the
// operator registers.
func ChargeCollectors() []prometheus.Collector {
	return []prometheus.Collector{chargeAttemptsTotal, chargeRefusalsTotal}
}

// registerChargeMetrics registers them once (at controller setup, so the
// series exist before the first attempt).
func registerChargeMetrics() {
	chargeMetricsOnce.Do(func() { metrics.Registry.MustRegister(chargeAttemptsTotal, chargeRefusalsTotal) })
}

// now is the reconciler's clock for the charge window: wall time, as card
// networks count reattempts (Stripe's test clocks move a customer's
// billing, not the networks). Tests set Now to the test-mode Stripe's
// clock to simulate 24 hours.
func (r *StripeSubscriptionReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *StripeSubscriptionReconciler) maxChargeAttempts() int {
	if r.MaxChargeAttempts > 0 {
		return r.MaxChargeAttempts
	}
	return DefaultMaxChargeAttempts
}

// chargeAttempt is one attempt in flight.
type chargeAttempt struct {
	request       string
	paymentMethod string
	retryPayment  string
	prevInvoice   string
}

// createCharges tells whether the create can charge.
func (s *subscriptionScope) createCharges() bool {
	spec := &s.obj.Spec
	return collectionMethod(spec) == billingv1alpha1.CollectionMethodChargeAutomatically &&
		(spec.TrialPeriodDays == nil || *spec.TrialPeriodDays == 0) &&
		paymentBehavior(spec) != billingv1alpha1.PaymentBehaviorDefaultIncomplete
}

// updateCharges tells whether this pass's update can charge.
func (s *subscriptionScope) updateCharges() bool {
	spec := &s.obj.Spec
	if !s.diff.itemsChanged || s.sub == nil || s.sub.Status == subStatusTrialing ||
		paymentBehavior(spec) == billingv1alpha1.PaymentBehaviorDefaultIncomplete {
		return false
	}
	method := collectionMethod(spec)
	if s.diff.params.CollectionMethod == nil && s.sub.CollectionMethod != "" {
		method = billingv1alpha1.CollectionMethod(s.sub.CollectionMethod)
	}
	if method != billingv1alpha1.CollectionMethodChargeAutomatically {
		return false
	}
	if prorationBehavior(spec) == billingv1alpha1.ProrationBehaviorAlwaysInvoice {
		return true
	}
	prices := map[string]string{}
	for _, it := range s.sub.Items {
		prices[it.ID] = it.PriceID
	}
	for _, it := range s.diff.params.Items {
		if it.ID != "" && !it.Deleted && it.PriceID != "" && it.PriceID != prices[it.ID] {
			return true
		}
	}
	return false
}

// beforeCharge decides whether a charge attempt may be made now. It
// refuses (a Stalled spec error) when the last attempt was declined and
// nothing changed since, or when the limit is reached; otherwise it
// records the attempt in status and persists it before the request.
func (s *subscriptionScope) beforeCharge(ctx context.Context, request string) (*chargeAttempt, error) {
	r, obj := s.r, s.obj
	now := r.now()
	st := &obj.Status
	if st.Charges == nil {
		st.Charges = &billingv1alpha1.ChargeStatus{}
	}
	ch := st.Charges
	a := &chargeAttempt{request: request, retryPayment: obj.GetAnnotations()[billingv1alpha1.AnnotationRetryPayment]}
	if s.sub != nil && s.sub.LatestInvoice != nil {
		a.prevInvoice = s.sub.LatestInvoice.ID
	}
	var why string
	if d := ch.Declined; d != nil {
		// Only after a decline does the card matter before the attempt:
		// a new default payment method is a reason to charge again. A
		// first attempt reads nothing more (a new subscription costs one
		// Stripe call); its card is read if it is declined (afterCharge).
		pm, err := s.defaultPaymentMethod(ctx)
		if err != nil {
			return nil, err
		}
		a.paymentMethod = pm
		switch {
		case obj.Generation != d.Generation:
			why = fmt.Sprintf("the spec changed (generation %d)", obj.Generation)
		case a.paymentMethod != d.PaymentMethod:
			why = "the customer's default payment method changed"
		case a.retryPayment != "" && a.retryPayment != d.RetryPayment:
			why = fmt.Sprintf("%s was set to %q", billingv1alpha1.AnnotationRetryPayment, a.retryPayment)
		default:
			msg := declinedMessage(d) + fmt.Sprintf(" No further charge is attempted until the spec changes, the customer's default payment method changes, or annotation %s gets a new value (at most %d attempts in 24 hours).",
				billingv1alpha1.AnnotationRetryPayment, r.maxChargeAttempts())
			return nil, s.refuseCharge(billingv1alpha1.ReasonPaymentDeclined, msg)
		}
	}
	recent := recentAttempts(ch.Attempts, now)
	if len(recent) != len(ch.Attempts) {
		ch.Attempts = recent
	}
	if max := r.maxChargeAttempts(); len(recent) >= max {
		next := recent[0].Add(chargeWindow).UTC().Format(time.RFC3339)
		msg := fmt.Sprintf("The operator made %d charge attempts for this subscription in the last 24 hours, the limit (--max-charge-attempts=%d); the next attempt is allowed at %s.", len(recent), max, next)
		reason := billingv1alpha1.ReasonChargeLimitReached
		if d := ch.Declined; d != nil {
			reason = billingv1alpha1.ReasonPaymentDeclined
			msg = declinedMessage(d) + " " + why + ", but " + lowerFirst(msg)
		}
		return nil, s.refuseCharge(reason, msg)
	}
	ch.Attempts = append(recent, metav1.NewTime(now.UTC().Truncate(time.Second)))
	if err := s.recordBeforeWrite(ctx); err != nil {
		return nil, fmt.Errorf("recording a charge attempt before making it: %w", err)
	}
	note := ""
	if why != "" {
		note = " after a decline, because " + why
	}
	s.r.event(obj, false, "ChargeAttempt", fmt.Sprintf("Charge attempt %d of %d in 24 hours: subscription %s%s.", len(ch.Attempts), r.maxChargeAttempts(), request, note))
	log.FromContext(ctx).Info("Making a charge attempt", "request", request, "attemptsIn24h", len(ch.Attempts))
	return a, nil
}

// defaultPaymentMethod reads the customer's default payment method.
func (s *subscriptionScope) defaultPaymentMethod(ctx context.Context) (string, error) {
	cus, err := s.r.Stripe.GetCustomer(ctx, s.customerID)
	if err != nil {
		return "", fmt.Errorf("reading customer %s for its default payment method: %w", s.customerID, err)
	}
	return cus.DefaultPaymentMethod, nil
}

// afterCharge records the outcome of an attempt: a decline stalls the
// resource (the returned error also wraps Stripe's, so a create starts a
// new intent); a success clears the decline; a request that charged
// nothing is not counted. res is what Stripe returned on success.
func (s *subscriptionScope) afterCharge(ctx context.Context, a *chargeAttempt, res *stripe.Subscription, callErr error) error {
	obj := s.obj
	ch := obj.Status.Charges
	switch {
	case callErr != nil && stripe.IsCardDeclined(callErr):
		if a.paymentMethod == "" {
			// The card that was declined: the customer's default, read now
			// (a change made since the attempt is a reason to retry, which
			// this read would miss only within these few milliseconds).
			pm, err := s.defaultPaymentMethod(ctx)
			if err != nil {
				return err
			}
			a.paymentMethod = pm
		}
		code := stripe.DeclineCode(callErr)
		ch.Declined = &billingv1alpha1.ChargeDecline{At: metav1.NewTime(s.r.now().UTC().Truncate(time.Second)), Request: a.request, Code: code,
			Generation: obj.Generation, PaymentMethod: a.paymentMethod, RetryPayment: a.retryPayment}
		chargeAttemptsTotal.WithLabelValues(a.request, "declined").Inc()
		msg := declinedMessage(ch.Declined) + fmt.Sprintf(" No further charge is attempted until the spec changes, the customer's default payment method changes, or annotation %s gets a new value.", billingv1alpha1.AnnotationRetryPayment)
		s.r.event(obj, true, "ChargeDeclined", msg)
		if err := s.recordBeforeWrite(ctx); err != nil {
			return fmt.Errorf("recording a declined charge: %w", err)
		}
		return fmt.Errorf("%w: %w", newSpecError(billingv1alpha1.ReasonPaymentDeclined, "%s", msg), callErr)
	case callErr != nil && refusedBeforeCharging(callErr):
		// Stripe refused the request before executing it (rate limited, a
		// concurrent request with the key, invalid parameters): nothing
		// reached the card.
		if n := len(ch.Attempts); n > 0 {
			ch.Attempts = ch.Attempts[:n-1]
		}
		chargeAttemptsTotal.WithLabelValues(a.request, "not_charged").Inc()
		return callErr
	case callErr != nil:
		// No definitive answer (a network error, a 5xx: the request may
		// have executed): the attempt stays counted.
		chargeAttemptsTotal.WithLabelValues(a.request, "failed").Inc()
		return callErr
	}
	inv := res.LatestInvoice
	switch {
	case inv == nil || inv.ID == a.prevInvoice || !inv.Attempted:
		// Nothing was charged: the attempt is taken back.
		if n := len(ch.Attempts); n > 0 {
			ch.Attempts = ch.Attempts[:n-1]
		}
		chargeAttemptsTotal.WithLabelValues(a.request, "not_charged").Inc()
	case inv.Status == invoiceStatusPaid:
		if ch.Declined != nil {
			s.r.event(obj, false, "ChargeSucceeded", fmt.Sprintf("Charge attempt succeeded (invoice %s) after the decline of %s.", inv.ID, ch.Declined.At.UTC().Format(time.RFC3339)))
		}
		ch.Declined = nil
		chargeAttemptsTotal.WithLabelValues(a.request, "succeeded").Inc()
	default:
		// Stripe accepted the request and the payment failed
		// (allow_incomplete, pending_if_incomplete): the same rule holds.
		code := inv.PaymentError
		if code == "" {
			code = inv.PaymentIntentStatus
		}
		if a.paymentMethod == "" {
			pm, err := s.defaultPaymentMethod(ctx)
			if err != nil {
				return err
			}
			a.paymentMethod = pm
		}
		ch.Declined = &billingv1alpha1.ChargeDecline{At: metav1.NewTime(s.r.now().UTC().Truncate(time.Second)), Request: a.request, Code: code,
			Generation: obj.Generation, PaymentMethod: a.paymentMethod, RetryPayment: a.retryPayment}
		chargeAttemptsTotal.WithLabelValues(a.request, "declined").Inc()
		s.r.event(obj, true, "ChargeDeclined", declinedMessage(ch.Declined)+fmt.Sprintf(" Invoice %s is open; no further charge is attempted by the operator until the spec, the default payment method or annotation %s changes.", inv.ID, billingv1alpha1.AnnotationRetryPayment))
	}
	if ch.Declined == nil && len(ch.Attempts) == 0 {
		obj.Status.Charges = nil
	}
	return nil
}

// refusedBeforeCharging tells whether Stripe refused a request before
// executing it: a 4xx other than the card error 402 (a 429, a 400 for
// invalid parameters, a 401/403/404), or the client-side limiter. A 409 is
// not: Stripe answers it while a request with the same idempotency key is
// still executing (https://docs.stripe.com/api/idempotent_requests), and
// that request may be charging the card. A 5xx or a lost answer may come
// from an executed request too.
func refusedBeforeCharging(err error) bool {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return false
	}
	if se.HTTPStatus == 0 {
		return se.Class == stripe.ClassRateLimited
	}
	return se.HTTPStatus >= 400 && se.HTTPStatus < 500 && se.HTTPStatus != 402 && se.HTTPStatus != 409
}

// refuseCharge records a refusal (Event, metric) and returns the Stalled
// error that reports it.
func (s *subscriptionScope) refuseCharge(reason, msg string) error {
	chargeRefusalsTotal.WithLabelValues(reason).Inc()
	s.r.event(s.obj, true, "ChargeRefused", msg)
	return newSpecError(reason, "%s", msg)
}

// clearSettledDecline forgets a decline once the subscription's latest
// invoice, made after it, is paid (the customer paid by other means).
func clearSettledDecline(st *billingv1alpha1.StripeSubscriptionStatus, sub *stripe.Subscription) {
	ch := st.Charges
	if ch == nil || ch.Declined == nil || sub == nil || sub.LatestInvoice == nil {
		return
	}
	inv := sub.LatestInvoice
	if inv.Status == invoiceStatusPaid && inv.Created != 0 && inv.Created >= ch.Declined.At.Unix() {
		ch.Declined = nil
	}
}

func declinedMessage(d *billingv1alpha1.ChargeDecline) string {
	code := d.Code
	if code == "" {
		code = "card_declined"
	}
	pm := d.PaymentMethod
	if pm == "" {
		pm = "no default payment method"
	}
	return fmt.Sprintf("The charge attempt of the subscription %s at %s was declined (%s, %s).", d.Request, d.At.UTC().Format(time.RFC3339), code, pm)
}

// recentAttempts keeps the attempts within the charge window.
func recentAttempts(all []metav1.Time, now time.Time) []metav1.Time {
	var out []metav1.Time
	for _, t := range all {
		if now.Sub(t.Time) < chargeWindow {
			out = append(out, t)
		}
	}
	return out
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]|0x20) + s[1:]
}
