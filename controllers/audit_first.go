package controllers

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/kinds"
)

// A first report that is not empty by accident (issue 23, item 3). When the
// manager starts, the resources' reconcilers have not recorded their Stripe
// objects yet, and in `make dev` the samples do not even exist when the
// report is created. So:
//
//   - the first audit waits until every resource of the audited kinds
//     (StripeCustomer, StripePlan, StripeSubscription) has had its first pass (it is Synced or Stalled:
//     status.observedGeneration is set),
//     at most firstAuditMaxWait after the reconciler started, polling the
//     cache every firstAuditPoll;
//   - a report that audited 0 objects says so (Clean reason
//     NothingAudited), and the audit runs again, without waiting for the
//     period, as soon as a resource records a Stripe object and every
//     resource has had its first pass (the cache is checked every
//     emptyReportPoll while the report is empty);
//   - an audit asked for with the audit-now annotation runs at once.
const (
	firstAuditMaxWait = 2 * time.Minute
	firstAuditPoll    = 2 * time.Second
	emptyReportPoll   = 5 * time.Second
)

// audited is how many objects the report's last audit classified.
func audited(st *billingv1alpha1.StripeBillingReportStatus) int64 {
	t := st.Totals
	return t.Managed + t.OrphanedExpected + t.OrphanedUnexplained + t.Missing + t.Duplicate + t.Drifted +
		t.CanceledForNonPayment + t.CanceledByOperator
}

// holdFirstAudit returns how long to wait before the first audit (0: run
// it), and records the reason on the report once.
func (r *BillingAuditReconciler) holdFirstAudit(ctx context.Context, report *billingv1alpha1.StripeBillingReport, asked string) time.Duration {
	r.mu.Lock()
	if r.started.IsZero() {
		r.started = time.Now()
	}
	started := r.started
	r.mu.Unlock()
	if report.Status.LastAuditTime != nil || (asked != "" && asked != report.Status.LastAuditRequest) || time.Since(started) > firstAuditMaxWait {
		return 0
	}
	pending, err := r.firstPassesPending(ctx)
	if err != nil || pending == 0 {
		return 0
	}
	log.FromContext(ctx).V(1).Info("First billing audit waits for the resources' first passes", "pending", pending)
	r.mu.Lock()
	announce := !r.waitAnnounced
	r.waitAnnounced = true
	r.mu.Unlock()
	if announce {
		emit(r.Recorder, report, false, "WaitingForFirstPasses",
			"The first billing audit waits until every StripeCustomer, StripePlan and StripeSubscription has been reconciled once.")
	}
	return firstAuditPoll
}

// firstPassesPending counts the resources of the audited kinds (the table
// of kinds, internal/kinds) whose first pass has not come to an end yet,
// deleted ones aside. A pass ends when the resource is Synced or Stalled;
// either sets status.observedGeneration, which stays 0 while the first pass
// is in flight (Reconciling, such as a subscription waiting for its
// customer).
func (r *BillingAuditReconciler) firstPassesPending(ctx context.Context) (int, error) {
	n := 0
	err := r.eachAudited(ctx, func(o kinds.Object, _ []kinds.Ref) bool {
		if g, ok := o.(interface{ GetObservedGeneration() int64 }); ok && o.GetDeletionTimestamp().IsZero() && g.GetObservedGeneration() == 0 {
			n++
		}
		return true
	})
	return n, err
}

// recordsAny tells whether some resource records a Stripe object.
func (r *BillingAuditReconciler) recordsAny(ctx context.Context) (bool, error) {
	found := false
	err := r.eachAudited(ctx, func(_ kinds.Object, refs []kinds.Ref) bool {
		for _, ref := range refs {
			if ref.ID != "" {
				found = true
				return false
			}
		}
		return true
	})
	return found, err
}

// eachAudited calls fn with every resource of the audited kinds (from the
// cache, not copied) and the Stripe objects it records, until fn returns
// false.
func (r *BillingAuditReconciler) eachAudited(ctx context.Context, fn func(kinds.Object, []kinds.Ref) bool) error {
	for _, k := range kinds.Audited() {
		list := k.NewList()
		if err := r.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			return err
		}
		for _, o := range k.Items(list) {
			if !fn(o, k.Refs(o)) {
				return nil
			}
		}
	}
	return nil
}

// rerunEmpty tells whether a report that audited nothing should be audited
// again now: a resource records a Stripe object and every resource has had
// its first pass.
func (r *BillingAuditReconciler) rerunEmpty(ctx context.Context, report *billingv1alpha1.StripeBillingReport) bool {
	if report.Status.LastAuditTime == nil || audited(&report.Status) > 0 {
		return false
	}
	if has, err := r.recordsAny(ctx); err != nil || !has {
		return false
	}
	pending, err := r.firstPassesPending(ctx)
	return err == nil && pending == 0
}

// emptyPoll is how soon an empty report looks again for resources.
func (r *BillingAuditReconciler) emptyPoll(report *billingv1alpha1.StripeBillingReport) time.Duration {
	if report.Status.LastAuditTime != nil && audited(&report.Status) == 0 {
		return emptyReportPoll
	}
	return r.period()
}
