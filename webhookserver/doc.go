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
// Events are decoded into the few fields the operator needs, tolerant of
// unknown fields, so an endpoint on an API version other than stripe-go
// v76's 2023-10-16 still works. We recommend creating the endpoint with API
// version 2023-10-16, the version the operator's Stripe client speaks, so
// that event payloads and API reads have the same shape.
//
// # Applying an event
//
// The target is found by the metadata the reconciler writes on every
// subscription (stripe-operator.io/namespace, /name, /uid; invoices carry it
// in subscription_details.metadata), else through the status.subscriptionID
// field index (adopted subscriptions). Unmanaged subscriptions and unused
// event types are acknowledged and counted as ignored.
//
// Exactly once: applied event IDs are recorded on the object in the
// annotations billing.stripe-operator.io/last-event-id and
// billing.stripe-operator.io/recent-event-ids (the last 20, newest last). A
// recorded ID (or status.lastEvent.id) is acknowledged without a write; the
// informer cache is checked first so a storm of duplicates costs no API
// call, then the object is re-read from the API server before writing.
//
// Order: an event older than status.lastEvent.created is recorded as seen
// but changes no state. Events of the same second as lastEvent are applied
// (ties are normal: several events per second), in arrival order, with two
// guards so a tie never regresses state: a subscription that is canceled or
// incomplete_expired is not brought back by a same-second event, and an
// invoice already paid is not moved back to open by a same-second event
// about the same invoice.
//
// Writes: status first (an Update of the status subresource carrying the
// resourceVersion just read: optimistic concurrency, retried on conflict, so
// the reconciler's conditions are never erased), then the annotations (a
// merge patch with the same optimistic lock). 2xx is answered only after both
// are persisted; any failure answers 503 so Stripe redelivers. A redelivery
// after a crash between the two writes re-applies the same state (harmless)
// and records the ID. The annotation change also wakes the reconciler, which
// watches annotation changes.
package webhookserver
