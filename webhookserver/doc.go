// Package webhookserver is the operator's public door: it receives Stripe's
// webhook events, lets in only events Stripe signed, and applies each one to
// the status of the StripeSubscription it concerns, exactly once and never
// older-over-newer.
//
// # Verification
//
// POST /webhooks/stripe. The body is read through a size limit (413 past
// it). The Stripe-Signature header (t=<unix>,v1=<hex>[,v1=...]) is checked
// with HMAC-SHA256 over "<t>.<body>" against every configured signing secret
// (several during rotation) and every v1 signature, in constant time; the
// timestamp must be within the tolerance (default 300 s) in both directions
// (stripe-go only rejects old ones). Failures answer 400 with a short reason
// (missing_header, malformed_header, no_valid_signature, timestamp_too_old,
// timestamp_in_future), are logged and counted; the body is never logged.
//
// Events are decoded in one streaming pass (go-faster/jx) into the few
// fields the operator needs, skipping and validating the rest, in every API
// version's shape from 2023-10-16 to Dahlia (see event.go and
// the README): an invoice's subscription in subscription or
// parent.subscription_details, the period on the subscription or its items,
// the payment state on the expanded payment intent or the invoice payments.
//
// # Applying an event
//
// The target is found through the status.subscriptionID index on the
// StripeSubscription informer (SetupIndexes), else by the metadata the
// reconciler writes on every subscription (stripe-operator.io/namespace,
// /name, /uid; invoices carry it in their subscription details) for a
// subscription whose ID status does not record yet. Unmanaged subscriptions
// and unused event types are acknowledged and counted as ignored.
//
// Order, per stream: subscription events are judged against
// status.lastEvent, each invoice's events against latestInvoice.lastEvent;
// an event about an invoice created before the latest one is superseded.
// Older events and duplicates change nothing and cost no write; same-second
// events are applied unless they would move the state back, and the IDs of
// the marker's second are remembered (EventRef.sameSecondIDs).
//
// Writes: one JSON merge patch of the status subresource with only the
// fields that changed, carrying the resourceVersion read as a precondition
// (optimistic concurrency, so the reconciler's conditions are never
// erased). The object is read from the informer cache, or from this
// server's own last write while the cache still shows the resourceVersion
// that write replaced (ownwrites.go). A conflict is retried on a fresh read
// with jittered backoff within Options.RetryBudget. 2xx is answered only after
// the write; a failure answers 503 so Stripe redelivers. PaymentFailed is
// derived from the status by internal/billing, as the reconciler derives it.
// An applied event moves a marker, which wakes the reconciler.
package webhookserver
