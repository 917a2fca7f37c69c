// Package controllers holds one reconciler per billing kind
// (StripeCustomer, StripePlan, StripeSubscription).
//
// Every reconciler follows the same shape, written once in the shared_*.go
// files:
//
//   - Reconcile loads the object into a scope, runs a short list of named
//     phase functions over it and, in one deferred step, patches status with
//     an optimistic lock (so the webhook server's status writes are never
//     erased) only when it changed.
//   - Crash-safe create (createExternal): the create-pending annotation is
//     persisted before the Stripe create call, the create carries a
//     deterministic idempotency key, the new ID is written to status right
//     after, and a pass that finds the annotation without an ID looks the
//     Stripe object up by the operator's metadata (a List call, never the
//     eventually consistent Search API) before it would create anything.
//   - Observe, then act: the Stripe object is read and compared with the spec
//     field by field; only differences are written (never in Observe mode).
//   - Conditions follow kstatus: Ready, Synced, and the abnormal-true
//     Reconciling and Stalled, which are removed when false.
//     observedGeneration is set when a pass succeeds. Messages are stable
//     between identical passes: Stripe request IDs go to logs only.
//   - A finalizer applies the kind's deletionPolicy.
package controllers
