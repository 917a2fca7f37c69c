// Package stripefake is a stateful, test-mode Stripe over real HTTP: the
// offline stand-in for Stripe's test mode that the operator's tests and
// `make dev` run against. It speaks the subset of the REST API that
// stripe-go v76 sends for the operations the operator uses (form-encoded
// bodies, Stripe's error shape, list pagination, expand, metadata), keeps
// state in memory, honours idempotency keys as Stripe does, has a test
// clock that ends trials (announcing them three days ahead with
// customer.subscription.trial_will_end; a shorter trial gets it on the
// next advance), renews subscriptions, invoices and
// retries payments, emits events delivered signed exactly as Stripe signs
// them (retrying an endpoint that does not answer 2xx), and can inject
// faults and rate limits. It applies Stripe's limits with
// Stripe-Rate-Limited-Reason (global, per endpoint, Search, per
// subscription; limits.go), the 50-key metadata limit, idempotency windows
// on wall time, and can switch Search off as for an account in India.
//
// Stripe's test PaymentMethods decide payments (see paymentmethods.go):
// attaching one makes a new pm_...; pm_card_visa pays,
// pm_card_chargeCustomerFail attaches and is then declined (card_declined),
// pm_card_authenticationRequired needs customer action, and
// pm_card_chargeDeclined is declined when attached.
//
// It is test infrastructure and the engine of local mode; it never handles
// real money and is not a product feature.
package stripefake
