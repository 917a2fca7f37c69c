// Package billing holds the billing rules that more than one writer of a
// StripeSubscription's status must apply identically: the PaymentFailed
// condition, derived only from the observed status fields, and the
// formatting of amounts in a currency's minor unit. The reconciler and the
// webhook server both call it, so the same facts always give the same
// reason and message and neither writer undoes the other.
package billing
