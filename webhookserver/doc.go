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
// version's shape from 2023-10-16 to Endive (see event.go and
// docs/webhooks.md): an invoice's subscription in subscription or
// parent.subscription_details, the period on the subscription or its items.
// Stripe never expands event payloads, so the payment intent's status comes
// from the event type (payment_failed, payment_action_required) and a
// decline code from the reconciler's read; an expanded intent or invoice
// payments list, should a payload carry one, is still read.
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
// Order, per stream (a subscription's own state; each invoice), is one
// rule, place in apply.go: an event is applied only when it was created
// after both its stream's last applied event (status.lastEvent,
// latestInvoice.lastEvent) and the operator's last read (status.readAt).
// Created before the last applied event: older, changes nothing (an event
// about an invoice created before the latest one is superseded). Otherwise
// its order is unknown: applied if it changes nothing status shows, else
// recorded in status.deferredEvent, and the reconciler reads Stripe.
// Duplicates are recognised from the event-ID annotations and the markers.
//
// Writes: one JSON merge patch of the status subresource with only the
// fields that changed, carrying the resourceVersion read as a precondition
// (optimistic concurrency, so the reconciler's conditions are never
// erased); it is the commit point. Then one merge patch of the resource's
// event-ID annotations (last-event-id, recent-event-ids), with the
// resourceVersion the status write returned; if it fails the event is
// answered 503 and its redelivery, a duplicate by the status marker, is
// recorded then. The object is read from the informer cache, or from this
// server's own last write while the cache still shows the resourceVersion
// that write replaced (ownwrites.go). A conflict is retried on a fresh read
// with jittered backoff within Options.RetryBudget. 2xx is answered only after
// the write; a failure answers 503 so Stripe redelivers. PaymentFailed is
// derived from the status by internal/billing, as the reconciler derives it.
// An applied event moves a marker, which wakes the reconciler.
package webhookserver
