// Package controllers reconciles the kinds that manage Stripe objects
// (StripeCustomer, StripePlan, StripeSubscription, StripeWebhookEndpoint)
// through one managed-resource core (managed.go), on the pattern of
// crossplane-runtime's managed reconciler. The billing audit
// (StripeBillingReport) only reads, and has its own reconciler.
//
// The core runs every pass of every kind:
//
//   - Reconcile loads the object into a pass (the scope), runs four named
//     phases (finalizer, observe, update, report) and, in one deferred step,
//     patches status with an optimistic lock (so the webhook server's status
//     writes are never erased) only when it changed. That write carries the
//     conditions and observedGeneration.
//   - Binding: a Stripe object named in the spec is adopted only when it
//     carries this resource's identity, or none in a namespace selected for
//     adoption (identity.go); in Observe mode the object is found, never
//     created; otherwise it is created exactly once (shared_create.go): a
//     live object with this resource's identity is adopted first, the
//     create-pending annotation with the create's intent is persisted before
//     the call, and a pass that finds the annotation without an ID looks the
//     object up by metadata (a List call, never the eventually consistent
//     Search API) before it would create anything.
//   - Observe, then act: the kind reads Stripe and compares it field by
//     field; only differences are written, never in Observe mode, where they
//     are reported. A correction made under an unchanged spec is
//     DriftCorrected.
//   - Conditions follow kstatus: Ready, Synced, and the abnormal-true
//     Reconciling and Stalled, which are removed when false. Messages are
//     stable between identical passes: Stripe request IDs go to logs only.
//   - A finalizer (Manage mode) applies the kind's deletionPolicy.
//
// A kind brings its API type and an external client: Observe, Creation,
// Update, Report and Delete (stripe*_external.go, and the webhook
// endpoint's in its controller file), plus its own diff. Optional
// capabilities (replace-on-change, an early next pass, keeping what a
// failed pass read, acting once status is written) are the named
// interfaces of managed.go. Every kind is registered once in the table of
// kinds (internal/kinds, and its attachment in kinds.go), which identity,
// the audit, the metrics, the wiring (SetupKinds) and kubectl stripe read;
// docs/adding-a-kind.md walks through a new kind.
package controllers
