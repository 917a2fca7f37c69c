package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/audit"
	"github.com/stripe-operator/stripe-operator/internal/kinds"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// DefaultAuditPeriod is how often the billing audit runs when AuditPeriod
// is unset.
const DefaultAuditPeriod = 10 * time.Minute

// DefaultInstance is the operator instance name when none is given.
const DefaultInstance = "default"

// maxReportEntries is how many non-Managed objects the report lists.
const maxReportEntries = 100

// auditRetry is how soon a failed audit is tried again.
const auditRetry = time.Minute

// BillingAuditReconciler runs the billing audit of one operator instance:
// every Period (jittered), or at once when the report's audit-now
// annotation changes, it pages through Stripe's customers, products, prices
// and subscriptions, classifies every object against the declared resources
// and writes the result into the instance's StripeBillingReport. Like every
// controller it runs on the leader only.
type BillingAuditReconciler struct {
	client.Client
	Stripe   stripe.Lister
	Recorder record.EventRecorder
	// Instance names the operator instance and its report; default
	// "default".
	Instance string
	// Period is the time between audits; default 10 minutes.
	Period time.Duration
	// Lists, when set, receives the audit's subscription pages for the
	// subscription reconciler's list-based resync.
	Lists *ResyncLists
	// SkipNameValidation lets tests start several managers in one process.
	SkipNameValidation bool
	// Now is the clock that decides the current calendar month of the
	// financial report; nil means the wall clock (tests and `make dev` give
	// the test-mode Stripe's clock).
	Now func() time.Time

	mu sync.Mutex
	// started is when the reconciler first ran, for the bounded wait of the
	// first audit (audit_first.go).
	started time.Time
	// waitAnnounced is set once the first audit's wait was recorded.
	waitAnnounced bool
	// announced holds the Missing and Duplicate findings a Warning Event
	// was recorded for, so each is announced once while it lasts.
	announced map[string]bool
}

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripebillingreports,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripebillingreports/status,verbs=get;update;patch
// The audit reads every audited kind of the table of kinds; each kind's
// reconciler markers grant get, list and watch on it (the manager's role is
// their union), so no list of kinds is kept here.
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

func (r *BillingAuditReconciler) instance() string {
	if r.Instance == "" {
		return DefaultInstance
	}
	return r.Instance
}

func (r *BillingAuditReconciler) period() time.Duration {
	if r.Period > 0 {
		return r.Period
	}
	return DefaultAuditPeriod
}

// SetupWithManager registers the controller and a leader-only runnable that
// creates the instance's report when it does not exist.
func (r *BillingAuditReconciler) SetupWithManager(mgr ctrl.Manager) error {
	name := r.instance()
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == name })
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("billingaudit-"+name).
		For(&billingv1alpha1.StripeBillingReport{}, builder.WithPredicates(ours, predicate.Funcs{
			// Status writes (the audit's own) do not start an audit; a new
			// audit-now value does.
			UpdateFunc: func(e event.UpdateEvent) bool {
				return e.ObjectOld.GetAnnotations()[billingv1alpha1.AnnotationAuditNow] != e.ObjectNew.GetAnnotations()[billingv1alpha1.AnnotationAuditNow]
			},
		})).
		WithOptions(controllerOptions(r.SkipNameValidation, 1)).
		Complete(r); err != nil {
		return err
	}
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		// RunnableFunc needs leader election: only the leader creates it.
		err := r.Create(ctx, &billingv1alpha1.StripeBillingReport{ObjectMeta: metav1.ObjectMeta{Name: name}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating StripeBillingReport %s: %w", name, err)
		}
		return nil
	}))
}

// Reconcile runs an audit when one is due or asked for and requeues for the
// next one.
func (r *BillingAuditReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	report := &billingv1alpha1.StripeBillingReport{}
	if err := r.Get(ctx, req.NamespacedName, report); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("stripeBillingReport", report.Name))
	asked := report.GetAnnotations()[billingv1alpha1.AnnotationAuditNow]
	if hold := r.holdFirstAudit(ctx, report, asked); hold > 0 {
		return ctrl.Result{RequeueAfter: hold}, nil
	}
	if last := report.Status.LastAuditTime; last != nil && (asked == "" || asked == report.Status.LastAuditRequest) {
		if wait := time.Until(last.Add(r.period())); wait > 0 && !r.rerunEmpty(ctx, report) {
			return ctrl.Result{RequeueAfter: min(jitter(wait), r.emptyPoll(report))}, nil
		}
	}
	if err := r.Audit(ctx, report); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: conflictBackoff()}, nil
		}
		log.FromContext(ctx).Error(err, "Billing audit failed")
		return ctrl.Result{RequeueAfter: auditRetry}, nil
	}
	return ctrl.Result{RequeueAfter: min(jitter(r.period()), r.emptyPoll(report))}, nil
}

// Audit runs one audit now and writes its result into report's status. A
// failed audit keeps the last result and sets Ready False.
func (r *BillingAuditReconciler) Audit(ctx context.Context, report *billingv1alpha1.StripeBillingReport) error {
	before := report.DeepCopy()
	asked := report.GetAnnotations()[billingv1alpha1.AnnotationAuditNow]
	started := time.Now()
	res, calls, err := r.run(ctx)
	st := &report.Status
	if err != nil {
		setReportCondition(report, billingv1alpha1.ConditionReady, metav1.ConditionFalse, billingv1alpha1.ReasonAuditFailed,
			"The last billing audit could not complete; the report shows the previous audit's result. The operator log has the error.")
		if c := findCondition(st.Conditions, billingv1alpha1.ConditionClean); c == nil {
			setReportCondition(report, billingv1alpha1.ConditionClean, metav1.ConditionUnknown, billingv1alpha1.ReasonAuditPending, "No billing audit has completed yet.")
		}
		if perr := r.writeStatus(ctx, report, before); perr != nil {
			return errors.Join(err, perr)
		}
		return err
	}
	r.fill(report, res, metav1.NewTime(started.UTC().Truncate(time.Second)), int64(calls), asked)
	r.announce(ctx, res)
	observeAudit(res, int64(calls), started.Unix())
	observeFinance(res.finance)
	return r.writeStatus(ctx, report, before)
}

func (r *BillingAuditReconciler) writeStatus(ctx context.Context, report, before *billingv1alpha1.StripeBillingReport) error {
	report.Status.SetConditions(keepTransitionTimes(before.Status.Conditions, report.Status.Conditions))
	if err := r.Status().Patch(ctx, report, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("writing the billing report: %w", err)
	}
	return nil
}

// auditRun is what one audit found.
type auditRun struct {
	result    audit.Result
	resources map[audit.Identity]client.Object
	// finance is the financial part (audit_finance.go), nil when the
	// Stripe client cannot list invoices.
	finance *billingv1alpha1.BillingFinance
}

// run reads Stripe, then the cluster, and classifies. Stripe is read
// first: a resource created meanwhile then has no object in the lists yet,
// and a Missing finding is confirmed by reading the object on its own before
// it is reported.
func (r *BillingAuditReconciler) run(ctx context.Context) (auditRun, int, error) {
	cctx, counter := stripe.WithCallCounter(ctx)
	var objs []audit.Object
	// The financial report (audit_finance.go) sees the same lists.
	var seen financeSeen
	listing := auditListing{lister: seen.recording(r.Stripe), lists: r.Lists, add: func(o audit.Object) { objs = append(objs, o) }}
	for _, t := range kinds.AuditedStripeTypes() {
		if err := stripeTypes[t].list(cctx, listing); err != nil {
			return auditRun{}, counter.Calls(), fmt.Errorf("listing %ss: %w", t, err)
		}
	}

	resources, objects, err := r.declared(ctx)
	if err != nil {
		return auditRun{}, counter.Calls(), err
	}
	res := audit.Classify(r.instance(), objs, resources)
	if err := r.confirmMissing(cctx, &res); err != nil {
		return auditRun{}, counter.Calls(), err
	}
	fin, err := r.finance(cctx, seen)
	if err != nil {
		return auditRun{}, counter.Calls(), fmt.Errorf("financial report: %w", err)
	}
	calls := counter.Calls()
	if fin != nil {
		calls += int(fin.Calls) // counted on their own context
	}
	return auditRun{result: res, resources: objects, finance: fin}, calls, nil
}

// confirmMissing reads each Missing object on its own: one created after
// its kind was listed exists, and is Managed.
func (r *BillingAuditReconciler) confirmMissing(ctx context.Context, res *audit.Result) error {
	api, ok := r.Stripe.(stripe.API)
	if !ok {
		return nil
	}
	kept := res.Findings[:0]
	for _, f := range res.Findings {
		if f.Class != billingv1alpha1.BillingClassMissing {
			kept = append(kept, f)
			continue
		}
		exists, err := stillThere(ctx, api, f)
		if err != nil {
			return fmt.Errorf("confirming that %s %s is missing: %w", f.Kind, f.StripeID, err)
		}
		if exists {
			res.Counts[f.Kind][billingv1alpha1.BillingClassMissing]--
			res.Counts[f.Kind][billingv1alpha1.BillingClassManaged]++
			continue
		}
		kept = append(kept, f)
	}
	res.Findings = kept
	return nil
}

func stillThere(ctx context.Context, api stripe.API, f audit.Finding) (bool, error) {
	t, ok := stripeTypes[f.Kind]
	if !ok || t.exists == nil {
		return false, fmt.Errorf("no confirmation for Stripe %s", f.Kind)
	}
	exists, err := t.exists(ctx, api, f.StripeID)
	if stripe.IsNotFound(err) {
		return false, nil
	}
	return exists, err
}

// declared lists the resources of every kind the audit classifies (the
// table of kinds) as the classifier sees them.
//
// The lists share the cache's objects (no deep copy of every resource per
// audit); they are only read, and an Event is recorded on them.
func (r *BillingAuditReconciler) declared(ctx context.Context) ([]audit.Resource, map[audit.Identity]client.Object, error) {
	var out []audit.Resource
	objects := map[audit.Identity]client.Object{}
	for _, k := range kinds.Audited() {
		list := k.NewList()
		if err := r.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			return nil, nil, fmt.Errorf("listing %ss: %w", k.Name, err)
		}
		for _, obj := range k.Items(list) {
			res := audit.Resource{ID: audit.Identity{Kind: k.Name, Namespace: obj.GetNamespace(), Name: obj.GetName()}, Refs: k.Refs(obj)}
			if c := driftCondition(obj.GetConditions()); c != nil {
				res.Drifted, res.DriftSince, res.DriftMessage = true, c.LastTransitionTime.Time, c.Message
			}
			out = append(out, res)
			objects[res.ID] = obj
		}
	}
	return out, objects, nil
}

// driftCondition is the condition that reports a resource's drift:
// BillingDrift True, or (customers and plans in Observe mode) Ready False
// with reason Drifted.
func driftCondition(conds []metav1.Condition) *metav1.Condition {
	if c := findCondition(conds, billingv1alpha1.ConditionBillingDrift); c != nil && c.Status == metav1.ConditionTrue {
		return c
	}
	if c := findCondition(conds, billingv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse && c.Reason == billingv1alpha1.ReasonDrifted {
		return c
	}
	return nil
}

// fill writes an audit's result into the report's status. An entry keeps
// its since from the previous report while it stays in the same class.
func (r *BillingAuditReconciler) fill(report *billingv1alpha1.StripeBillingReport, run auditRun, at metav1.Time, calls int64, asked string) {
	st := &report.Status
	prevSince := map[string]*metav1.Time{}
	for _, e := range st.Entries {
		prevSince[entryKey(e.Kind, e.StripeID, e.Class)] = e.Since
	}
	st.Counts = nil
	st.Totals = billingv1alpha1.BillingCounts{}
	attention := map[billingv1alpha1.BillingClass]int64{}
	for _, kind := range audit.Kinds {
		kc := billingv1alpha1.BillingKindCounts{Kind: kind}
		for class, n := range run.result.Counts[kind] {
			addCount(&kc.BillingCounts, class, n)
			addCount(&st.Totals, class, n)
			if audit.NeedsAttention(class) {
				attention[class] += n
			}
		}
		st.Counts = append(st.Counts, kc)
	}
	st.Entries = nil
	for _, f := range run.result.Findings {
		if len(st.Entries) == maxReportEntries {
			break
		}
		since := prevSince[entryKey(f.Kind, f.StripeID, f.Class)]
		switch {
		case !f.Since.IsZero():
			t := metav1.NewTime(f.Since.UTC())
			since = &t
		case since == nil:
			t := at
			since = &t
		}
		st.Entries = append(st.Entries, billingv1alpha1.BillingReportEntry{
			Kind: f.Kind, StripeID: f.StripeID, ResourceKind: f.Resource.Kind, Namespace: f.Resource.Namespace, Name: f.Resource.Name,
			Class: f.Class, Since: since, Message: f.Message,
		})
	}
	st.OmittedEntries = int64(len(run.result.Findings) - len(st.Entries))
	st.LastAuditTime = &at
	st.LastAuditCalls = calls
	st.LastAuditRequest = asked
	st.Finance = run.finance
	setReportCondition(report, billingv1alpha1.ConditionReady, metav1.ConditionTrue, billingv1alpha1.ReasonAudited,
		"The last billing audit completed; status holds its result.")
	if audited(st) == 0 {
		setReportCondition(report, billingv1alpha1.ConditionClean, metav1.ConditionTrue, billingv1alpha1.ReasonNothingAudited,
			"The billing audit found 0 objects: no Stripe object carries this instance's identity and no resource records one. It audits again as soon as a resource records a Stripe object.")
		return
	}
	if len(attention) == 0 {
		setReportCondition(report, billingv1alpha1.ConditionClean, metav1.ConditionTrue, billingv1alpha1.ReasonNoFindings,
			"Everything in Stripe with this instance's identity is declared, and every declared object is in Stripe as declared.")
		return
	}
	var parts []string
	for _, c := range []billingv1alpha1.BillingClass{billingv1alpha1.BillingClassMissing, billingv1alpha1.BillingClassDuplicate,
		billingv1alpha1.BillingClassOrphanedUnexplained, billingv1alpha1.BillingClassDrifted} {
		if n := attention[c]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, c))
		}
	}
	setReportCondition(report, billingv1alpha1.ConditionClean, metav1.ConditionFalse, billingv1alpha1.ReasonFindings,
		"The billing audit found objects that need attention: "+strings.Join(parts, ", ")+"; see status.entries.")
}

// setReportCondition sets one condition of the report; lastTransitionTime
// changes only when the status does.
func setReportCondition(report *billingv1alpha1.StripeBillingReport, condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&report.Status.Conditions, metav1.Condition{Type: condType, Status: status, Reason: reason,
		Message: message, ObservedGeneration: report.Generation})
	report.Status.ObservedGeneration = report.Generation
}

func entryKey(kind, id string, class billingv1alpha1.BillingClass) string {
	return kind + "/" + id + "/" + string(class)
}

func addCount(c *billingv1alpha1.BillingCounts, class billingv1alpha1.BillingClass, n int64) {
	switch class {
	case billingv1alpha1.BillingClassManaged:
		c.Managed += n
	case billingv1alpha1.BillingClassOrphanedExpected:
		c.OrphanedExpected += n
	case billingv1alpha1.BillingClassOrphanedUnexplained:
		c.OrphanedUnexplained += n
	case billingv1alpha1.BillingClassMissing:
		c.Missing += n
	case billingv1alpha1.BillingClassDuplicate:
		c.Duplicate += n
	case billingv1alpha1.BillingClassDrifted:
		c.Drifted += n
	case billingv1alpha1.BillingClassCanceledForNonPayment:
		c.CanceledForNonPayment += n
	case billingv1alpha1.BillingClassCanceledByOperator:
		c.CanceledByOperator += n
	}
}

// announce records a Warning Event on the resource for each Missing or
// Duplicate finding, once while the finding lasts.
func (r *BillingAuditReconciler) announce(ctx context.Context, run auditRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := map[string]bool{}
	for _, f := range run.result.Findings {
		if f.Class != billingv1alpha1.BillingClassMissing && f.Class != billingv1alpha1.BillingClassDuplicate {
			continue
		}
		key := entryKey(f.Kind, f.StripeID, f.Class)
		now[key] = true
		obj := run.resources[f.Resource]
		if r.announced[key] || obj == nil {
			continue
		}
		reason := "StripeObjectMissing"
		if f.Class == billingv1alpha1.BillingClassDuplicate {
			reason = "StripeObjectDuplicate"
		}
		emit(r.Recorder, obj, true, reason, f.Message)
		log.FromContext(ctx).Info("Billing audit finding", "class", f.Class, "kind", f.Kind, "stripeID", f.StripeID, "resource", f.Resource.String())
	}
	r.announced = now
}
