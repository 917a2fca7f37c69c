package webhookserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
)

// IndexSubscriptionID indexes StripeSubscriptions by status.subscriptionID.
const IndexSubscriptionID = "status.subscriptionID"

// maxSameSecondIDs bounds EventRef.sameSecondIDs (the CRD allows 16).
const maxSameSecondIDs = 15

// Outcomes of an event, in responses and logs.
const (
	OutcomeApplied    = "applied"
	OutcomeDuplicate  = "duplicate"
	OutcomeOutOfOrder = "out_of_order"
	// OutcomeSuperseded: the event is about an invoice older than the
	// subscription's latest invoice.
	OutcomeSuperseded = "superseded"
	OutcomeIgnored    = "ignored"
	// OutcomeDeferred: the event was created within a second of the
	// operator's last read of Stripe (status.readAt), so it may be older
	// than what status shows. It is recorded in status.deferredEvent, which
	// makes the operator read Stripe again, and not applied.
	OutcomeDeferred = "deferred"
)

// SetupIndexes adds the status.subscriptionID index to the manager's
// StripeSubscription informer; call once per manager, and give the webhook
// server the manager's cache (Options.Cache). The index sits on the
// informer itself, not behind the client's field selectors, so that a
// lookup is one map read with no copy and no reflection: every delivery,
// duplicates included, makes one.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	inf, err := mgr.GetCache().GetInformer(ctx, &billingv1alpha1.StripeSubscription{}, cache.BlockUntilSynced(false))
	if err != nil {
		return fmt.Errorf("getting the StripeSubscription informer: %w", err)
	}
	return inf.AddIndexers(toolscache.Indexers{IndexSubscriptionID: func(o any) ([]string, error) {
		if s, ok := o.(*billingv1alpha1.StripeSubscription); ok && s.Status.SubscriptionID != "" {
			return []string{s.Status.SubscriptionID}, nil
		}
		return nil, nil
	}})
}

// subscriptionIndex finds the index SetupIndexes added; once found (or
// found missing), the answer is kept; an error is not, so the next delivery
// asks again. It is nil when the cache's informer exposes no indexer (a
// cache restricted to some namespaces combines one informer per namespace):
// lookups then scan the cached list.
func (s *Server) subscriptionIndex(ctx context.Context) (toolscache.Indexer, error) {
	s.byIDMu.Lock()
	defer s.byIDMu.Unlock()
	if s.byIDKnown || s.opts.Cache == nil {
		return s.byID, nil
	}
	inf, err := s.opts.Cache.GetInformer(ctx, &billingv1alpha1.StripeSubscription{}, cache.BlockUntilSynced(false))
	if err != nil {
		return nil, fmt.Errorf("getting the StripeSubscription informer: %w", err)
	}
	if ii, ok := inf.(interface{ GetIndexer() toolscache.Indexer }); ok {
		if _, ok := ii.GetIndexer().GetIndexers()[IndexSubscriptionID]; !ok {
			return nil, errors.New("the StripeSubscription informer has no subscription-ID index: call SetupIndexes")
		}
		s.byID = ii.GetIndexer()
	}
	s.byIDKnown = true
	return s.byID, nil
}

// subscriptionsByID returns the cached StripeSubscriptions whose
// status.subscriptionID is subID, shared with the cache (not copies).
func (s *Server) subscriptionsByID(ctx context.Context, subID string) ([]*billingv1alpha1.StripeSubscription, error) {
	idx, err := s.subscriptionIndex(ctx)
	if err != nil {
		return nil, err
	}
	var out []*billingv1alpha1.StripeSubscription
	if idx != nil {
		objs, err := idx.ByIndex(IndexSubscriptionID, subID)
		if err != nil {
			return nil, fmt.Errorf("looking up StripeSubscriptions by subscription ID: %w", err)
		}
		for _, o := range objs {
			if obj, ok := o.(*billingv1alpha1.StripeSubscription); ok {
				out = append(out, obj)
			}
		}
		return out, nil
	}
	var list billingv1alpha1.StripeSubscriptionList
	if err := s.opts.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing StripeSubscriptions: %w", err)
	}
	for i := range list.Items {
		if list.Items[i].Status.SubscriptionID == subID {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// mutation applies one event to a StripeSubscription's status and returns
// the outcome; only OutcomeApplied may change the status.
type mutation func(obj *billingv1alpha1.StripeSubscription) string

// handledInvoiceEvents change the latest invoice. invoice.upcoming is
// informational (no invoice exists yet) and is not among them.
var handledInvoiceEvents = map[string]bool{
	"invoice.created": true, "invoice.finalized": true, "invoice.paid": true, "invoice.payment_succeeded": true,
	"invoice.payment_failed": true, "invoice.payment_action_required": true, "invoice.voided": true,
	"invoice.marked_uncollectible": true, "invoice.updated": true, "invoice.overdue": true,
}

func (s *Server) apply(ctx context.Context, ev *event) (string, error) {
	var (
		subID string
		md    map[string]string
		mut   mutation
	)
	switch {
	case ev.ObjectErr != nil:
		logr.FromContextOrDiscard(ctx).Info("Event object unreadable; acknowledged without effect", "error", ev.ObjectErr.Error())
		ignored.WithLabelValues("undecodable_object").Inc()
		return OutcomeIgnored, nil
	case ev.Sub != nil:
		if ev.Sub.ID == "" {
			ignored.WithLabelValues("undecodable_object").Inc()
			return OutcomeIgnored, nil
		}
		subID, md, mut = ev.Sub.ID, ev.Sub.Metadata, subscriptionMutation(ev)
	case ev.Inv != nil && handledInvoiceEvents[ev.Type]:
		if ev.Inv.ID == "" {
			ignored.WithLabelValues("undecodable_object").Inc()
			return OutcomeIgnored, nil
		}
		subID, md, mut = ev.Inv.subscriptionID(), ev.Inv.metadata(), invoiceMutation(ev)
	default:
		ignored.WithLabelValues("unhandled_type").Inc()
		return OutcomeIgnored, nil
	}
	target, shared, err := s.findTarget(ctx, subID, md)
	if err != nil {
		return "", err
	}
	if target == nil {
		ignored.WithLabelValues("unmanaged").Inc()
		return OutcomeIgnored, nil
	}
	if t, ours := s.written.newer(target); ours {
		target, shared = t, true
	}
	if redelivered(&target.Status, ev) {
		// Judged on the cached object, read without copying it.
		countOutcome(OutcomeDuplicate, ev)
		return OutcomeDuplicate, nil
	}
	if shared {
		target = target.DeepCopy()
	}
	return s.persist(ctx, target, ev, mut)
}

// findTarget resolves the StripeSubscription an event concerns, or nil. It
// reads the informer cache, and the API server only when the cache does not
// know a name the metadata gives. shared reports an object the cache still
// holds (read through the status.subscriptionID index without a copy): it
// must be copied before it is changed.
func (s *Server) findTarget(ctx context.Context, subID string, md map[string]string) (obj *billingv1alpha1.StripeSubscription, shared bool, err error) {
	if subID != "" {
		objs, err := s.subscriptionsByID(ctx, subID)
		if err != nil {
			return nil, false, err
		}
		if len(objs) > 0 {
			return objs[0], true, nil
		}
	}
	ns, name, uid := md[billingv1alpha1.StripeMetadataNamespace], md[billingv1alpha1.StripeMetadataName], md[billingv1alpha1.StripeMetadataUID]
	if ns != "" && name != "" {
		key := types.NamespacedName{Namespace: ns, Name: name}
		obj := &billingv1alpha1.StripeSubscription{}
		err := s.opts.Client.Get(ctx, key, obj)
		if apierrors.IsNotFound(err) {
			// The cache may lag a just-created object: ask the API server
			// before declaring the event unmanaged.
			err = s.opts.APIReader.Get(ctx, key, obj)
		}
		switch {
		case err == nil && (uid == "" || string(obj.UID) == uid):
			return obj, false, nil
		case err != nil && !apierrors.IsNotFound(err):
			return nil, false, fmt.Errorf("reading StripeSubscription %s: %w", key, err)
		}
	}
	return nil, false, nil
}

// persist applies ev to obj (read from the cache, or this server's own last
// write of it while the cache has not seen that write: ownWrites) and writes
// the status when it changed, with the resourceVersion read (optimistic
// concurrency).
// A duplicate, an out-of-order event or an event about an older invoice
// changes nothing and costs no write: the stream markers in the status
// (lastEvent, latestInvoice.lastEvent) only move forward, so a cache that
// lags can only judge an event newer than it is, never older; the write
// then conflicts and the event is judged again on a fresh read. Conflicts
// are retried with jittered backoff within the retry budget.
func (s *Server) persist(ctx context.Context, obj *billingv1alpha1.StripeSubscription, ev *event, mut mutation) (string, error) {
	log := logr.FromContextOrDiscard(ctx)
	key := client.ObjectKeyFromObject(obj)
	deadline := time.Now().Add(s.opts.RetryBudget)
	backoff := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		before := obj.Status.DeepCopy()
		outcome := mut(obj)
		if (outcome != OutcomeApplied && outcome != OutcomeDeferred) || equality.Semantic.DeepEqual(before, &obj.Status) {
			countOutcome(outcome, ev)
			return outcome, nil
		}
		replaced := obj.ResourceVersion
		patch, err := statusPatch(before, &obj.Status, replaced)
		if err != nil {
			return "", fmt.Errorf("writing the status of %s: %w", key, err)
		}
		err = s.opts.Client.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
		switch {
		case err == nil:
			s.written.record(replaced, obj, time.Now())
			countOutcome(outcome, ev)
			s.recordEvents(obj, before, ev)
			return outcome, nil
		case apierrors.IsNotFound(err):
			// Deleted between lookup and write (the reconciler released the
			// finalizer after a cancel): nothing manages it any more.
			ignored.WithLabelValues("unmanaged").Inc()
			return OutcomeIgnored, nil
		case !apierrors.IsConflict(err):
			return "", fmt.Errorf("writing the status of %s: %w", key, err)
		}
		conflicts.Inc()
		// Full jitter over [backoff/2, backoff), doubling up to 250 ms.
		wait := backoff/2 + rand.N(backoff/2+1)
		if time.Now().Add(wait).After(deadline) {
			return "", fmt.Errorf("writing the status of %s: conflicts for the whole retry budget of %s (%d attempts): %w", key, s.opts.RetryBudget, attempt, err)
		}
		log.V(1).Info("Status write conflicted; retrying on a fresh read", "attempt", attempt, "wait", wait.String())
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 250*time.Millisecond)
		fresh := &billingv1alpha1.StripeSubscription{}
		if err := s.opts.APIReader.Get(ctx, key, fresh); err != nil {
			if apierrors.IsNotFound(err) {
				ignored.WithLabelValues("unmanaged").Inc()
				return OutcomeIgnored, nil
			}
			return "", fmt.Errorf("reading StripeSubscription %s: %w", key, err)
		}
		if fresh.UID != obj.UID {
			// Deleted and created again under the same name: the event was
			// about the old one.
			ignored.WithLabelValues("unmanaged").Inc()
			return OutcomeIgnored, nil
		}
		obj = fresh
	}
}

// statusPatch is a JSON merge patch (RFC 7396) from before to after, under
// "status", with resourceVersion as a precondition: the API server answers
// 409 Conflict when the object has changed since it was read, as it does for
// an update. Only the fields that changed are sent.
func statusPatch(before, after *billingv1alpha1.StripeSubscriptionStatus, resourceVersion string) ([]byte, error) {
	b, err := json.Marshal(before)
	if err != nil {
		return nil, err
	}
	a, err := json.Marshal(after)
	if err != nil {
		return nil, err
	}
	diff, err := jsonpatch.CreateMergePatch(b, a)
	if err != nil {
		return nil, err
	}
	rv, err := json.Marshal(resourceVersion)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(diff)+len(rv)+48)
	out = append(out, `{"metadata":{"resourceVersion":`...)
	out = append(out, rv...)
	out = append(out, `},"status":`...)
	out = append(out, diff...)
	return append(out, '}'), nil
}

func countOutcome(outcome string, ev *event) {
	switch outcome {
	case OutcomeApplied:
		applied.WithLabelValues(ev.Type).Inc()
	case OutcomeDuplicate:
		duplicates.Inc()
	case OutcomeOutOfOrder:
		outOfOrder.Inc()
	case OutcomeSuperseded:
		superseded.Inc()
	case OutcomeDeferred:
		deferred.Inc()
	case OutcomeIgnored:
		ignored.WithLabelValues("other_subscription").Inc()
	}
}

// verdict is where an event stands against a stream's marker.
type verdict int

const (
	newer verdict = iota
	tie
	duplicate
	older
)

// judge places ev against the marker of its stream (nil: nothing applied
// yet). Stripe's created has one-second resolution, so several events can
// share a second: a tie is applied unless a guard of the stream says it
// would regress the state, and the IDs applied in the marker's second are
// remembered so a redelivery of one of them is a duplicate.
func judge(m *billingv1alpha1.EventRef, ev *event) verdict {
	switch {
	case m == nil:
		return newer
	case m.ID == ev.ID || (m.Created == ev.Created && slices.Contains(m.SameSecondIDs, ev.ID)):
		return duplicate
	case ev.Created < m.Created:
		return older
	case ev.Created == m.Created:
		return tie
	}
	return newer
}

// redelivered tells, reading st only, whether ev is one status already
// holds: the marker of its stream (or its same-second IDs) names it, or it
// is the deferred event. The mutations judge the same way; this lets a
// duplicate, the common case of Stripe's redeliveries, cost no copy.
func redelivered(st *billingv1alpha1.StripeSubscriptionStatus, ev *event) bool {
	if st.DeferredEvent != nil && st.DeferredEvent.ID == ev.ID {
		return true
	}
	switch {
	case ev.Sub != nil:
		return (st.SubscriptionID == "" || st.SubscriptionID == ev.Sub.ID) && judge(st.LastEvent, ev) == duplicate
	case ev.Inv != nil:
		cur := st.LatestInvoice
		return cur != nil && cur.ID == ev.Inv.ID && judge(cur.LastEvent, ev) == duplicate
	}
	return false
}

// readSkew is how far apart, in seconds, Stripe's clocks may stamp an
// event's created and an answer's Date for the same moment.
const readSkew = 1

// judgeRead places ev against status.readAt, the Stripe time of the
// operator's read that status shows (nil: status holds no read). An event
// created more than readSkew seconds before it is older than the read; one
// within readSkew of it or in the same second may be either (both have
// one-second resolution), so it is a tie; a later one is newer.
func judgeRead(readAt *metav1.Time, ev *event) verdict {
	switch {
	case readAt == nil:
		return newer
	case ev.Created < readAt.Unix()-readSkew:
		return older
	case ev.Created <= readAt.Unix():
		return tie
	}
	return newer
}

// readGuard places an event its stream would apply against the operator's
// last read. ok false: the event is older than the read (OutcomeOutOfOrder).
// Otherwise, after the mutation applied the event, finish settles a tie:
// an event that changes nothing status shows agrees with the read and is
// applied (its stream's marker moves); one that would change it may be
// older than the read, so the change is undone, the event is recorded in
// status.deferredEvent (the operator's watch wakes on it and reads Stripe
// again) and a redelivery of it is a duplicate.
type readGuard struct {
	st     *billingv1alpha1.StripeSubscriptionStatus
	before *billingv1alpha1.StripeSubscriptionStatus // set on a tie
}

func guardRead(st *billingv1alpha1.StripeSubscriptionStatus, ev *event) (g readGuard, ok bool) {
	g.st = st
	switch judgeRead(st.ReadAt, ev) {
	case older:
		return g, false
	case tie:
		g.before = st.DeepCopy()
	}
	return g, true
}

func (g readGuard) finish(ev *event) string {
	if g.before == nil || sameObserved(g.before, g.st) {
		return OutcomeApplied
	}
	*g.st = *g.before
	if g.st.DeferredEvent != nil && g.st.DeferredEvent.ID == ev.ID {
		return OutcomeDuplicate
	}
	g.st.DeferredEvent = &billingv1alpha1.EventRef{ID: ev.ID, Type: ev.Type, Created: ev.Created}
	return OutcomeDeferred
}

// sameObserved tells whether a and b show the same Stripe state, markers
// and the conditions derived from that state aside.
func sameObserved(a, b *billingv1alpha1.StripeSubscriptionStatus) bool {
	strip := func(st *billingv1alpha1.StripeSubscriptionStatus) *billingv1alpha1.StripeSubscriptionStatus {
		c := st.DeepCopy()
		c.LastEvent, c.DeferredEvent, c.Conditions = nil, nil, nil
		if c.LatestInvoice != nil {
			c.LatestInvoice.LastEvent = nil
		}
		return c
	}
	return equality.Semantic.DeepEqual(strip(a), strip(b))
}

// advance is the marker after applying ev.
func advance(m *billingv1alpha1.EventRef, ev *event) *billingv1alpha1.EventRef {
	next := &billingv1alpha1.EventRef{ID: ev.ID, Type: ev.Type, Created: ev.Created}
	if m != nil && m.Created == ev.Created {
		ids := append(slices.Clone(m.SameSecondIDs), m.ID)
		if len(ids) > maxSameSecondIDs {
			ids = ids[len(ids)-maxSameSecondIDs:]
		}
		next.SameSecondIDs = ids
	}
	return next
}

func unixTime(sec int64) *metav1.Time {
	if sec == 0 {
		return nil
	}
	t := metav1.NewTime(time.Unix(sec, 0).UTC())
	return &t
}

func terminal(status string) bool { return status == "canceled" || status == "incomplete_expired" }

// subscriptionMutation copies a subscription into status, ordered by the
// subscription's own events (status.lastEvent).
func subscriptionMutation(ev *event) mutation {
	so := ev.Sub
	return func(obj *billingv1alpha1.StripeSubscription) string {
		st := &obj.Status
		if st.SubscriptionID != "" && st.SubscriptionID != so.ID {
			return OutcomeIgnored // an earlier subscription of a recreated resource
		}
		switch judge(st.LastEvent, ev) {
		case duplicate:
			return OutcomeDuplicate
		case older:
			return OutcomeOutOfOrder
		case tie:
			// A same-second event never brings an ended subscription back.
			if terminal(st.StripeStatus) && !terminal(so.Status) {
				return OutcomeOutOfOrder
			}
		}
		guard, ok := guardRead(st, ev)
		if !ok {
			return OutcomeOutOfOrder
		}
		st.SubscriptionID = so.ID
		st.StripeStatus = so.Status
		if ev.Type == "customer.subscription.deleted" && !terminal(so.Status) {
			st.StripeStatus = "canceled"
		}
		if so.Customer != "" {
			st.CustomerID = so.Customer
		}
		st.Items = nil
		for _, it := range so.Items {
			st.Items = append(st.Items, billingv1alpha1.ObservedItem{ItemID: it.ID, PriceID: it.PriceID, Quantity: it.Quantity})
		}
		start, end := so.period()
		st.CurrentPeriodStart, st.CurrentPeriodEnd = unixTime(start), unixTime(end)
		st.CancelAtPeriodEnd = so.CancelAtPeriodEnd
		st.CancelAt, st.CanceledAt, st.TrialEnd = unixTime(so.CancelAt), unixTime(so.CanceledAt), unixTime(so.TrialEnd)
		st.PauseCollection = so.PauseCollection
		st.LastEvent = advance(st.LastEvent, ev)
		setPaymentFailed(obj)
		return guard.finish(ev)
	}
}

// invoiceProgress ranks invoice statuses along Stripe's lifecycle (draft,
// open, then paid, void or uncollectible; an uncollectible invoice can
// still be paid).
func invoiceProgress(status string) int {
	switch status {
	case "draft":
		return 0
	case "open":
		return 1
	case "uncollectible":
		return 2
	case "paid", "void":
		return 3
	}
	return -1
}

// invoiceMutation records the latest invoice, ordered per invoice by
// latestInvoice.lastEvent. An event about an invoice created before the
// latest one changes nothing.
func invoiceMutation(ev *event) mutation {
	in := ev.Inv
	return func(obj *billingv1alpha1.StripeSubscription) string {
		st := &obj.Status
		if sid := in.subscriptionID(); st.SubscriptionID != "" && sid != "" && st.SubscriptionID != sid {
			return OutcomeIgnored
		}
		cur := st.LatestInvoice
		if cur != nil && cur.ID != in.ID {
			// Another invoice is the latest; this one replaces it only when
			// Stripe created it later.
			if cur.Created != nil && in.Created <= cur.Created.Unix() {
				return OutcomeSuperseded
			}
			cur = nil
		}
		var marker *billingv1alpha1.EventRef
		if cur != nil {
			marker = cur.LastEvent
		}
		switch judge(marker, ev) {
		case duplicate:
			return OutcomeDuplicate
		case older:
			return OutcomeOutOfOrder
		case tie:
			// A same-second event never moves the invoice back along its
			// lifecycle or to fewer attempts.
			if invoiceProgress(in.Status) < invoiceProgress(cur.Status) || in.AttemptCount < cur.AttemptCount {
				return OutcomeOutOfOrder
			}
		}
		guard, ok := guardRead(st, ev)
		if !ok {
			return OutcomeOutOfOrder
		}
		inv := &billingv1alpha1.InvoiceStatus{
			ID: in.ID, Status: in.Status, AmountDue: in.AmountDue, AmountPaid: in.AmountPaid, Currency: in.Currency,
			AttemptCount: in.AttemptCount, NextPaymentAttempt: unixTime(in.NextPaymentAttempt),
			HostedInvoiceURL: in.HostedInvoiceURL, BillingReason: in.BillingReason,
			Created: unixTime(in.Created), LastEvent: advance(marker, ev),
		}
		if inv.Created == nil && cur != nil {
			inv.Created = cur.Created
		}
		paymentFacts(inv, cur, in, ev.Type)
		st.LatestInvoice = inv
		setPaymentFailed(obj)
		return guard.finish(ev)
	}
}

// paymentFacts fills the payment intent status and error: from the expanded
// payment intent, else from the invoice payments, else what the event type
// itself says (Stripe sends invoice.payment_failed when an attempt failed,
// which returns the payment intent to requires_payment_method, and
// invoice.payment_action_required when it requires_action), else what the
// status already knew about the same attempt of the same invoice. Stripe
// does not expand objects in event payloads, so from real Stripe the error
// code comes from the reconciler's read.
func paymentFacts(inv, cur *billingv1alpha1.InvoiceStatus, in *invoiceObject, evType string) {
	if pi := in.payment(); pi != nil {
		inv.PaymentIntentStatus, inv.PaymentError = pi.Status, pi.paymentError()
		return
	}
	switch evType {
	case "invoice.payment_failed":
		inv.PaymentIntentStatus = billing.PaymentIntentRequiresPaymentMethod
	case "invoice.payment_action_required":
		inv.PaymentIntentStatus = billing.PaymentIntentRequiresAction
	}
	// The outcome of an attempt does not change: an event without payment
	// details about the same attempt keeps what was known about it.
	if cur != nil && cur.ID == inv.ID && cur.AttemptCount == inv.AttemptCount {
		if inv.PaymentIntentStatus == "" {
			inv.PaymentIntentStatus = cur.PaymentIntentStatus
		}
		inv.PaymentError = cur.PaymentError
	}
}

// setPaymentFailed derives PaymentFailed from the status, as the reconciler
// does.
func setPaymentFailed(obj *billingv1alpha1.StripeSubscription) {
	c := billing.PaymentFailed(obj.Status.StripeStatus, obj.Status.LatestInvoice)
	meta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type: billingv1alpha1.ConditionPaymentFailed, Status: c.Status, Reason: c.Reason, Message: c.Message, ObservedGeneration: obj.Generation,
	})
}

// recordEvents emits Kubernetes Events for changes a person cares about,
// after the status that shows them is written. A payment failure gives one
// Warning per failed attempt, whichever of this server and the reconciler
// wrote it first (billing.NewFailure).
func (s *Server) recordEvents(obj *billingv1alpha1.StripeSubscription, before *billingv1alpha1.StripeSubscriptionStatus, ev *event) {
	if s.opts.Recorder == nil {
		return
	}
	now := meta.FindStatusCondition(obj.Status.Conditions, billingv1alpha1.ConditionPaymentFailed)
	if now != nil {
		c := billing.Condition{Status: now.Status, Reason: now.Reason, Message: now.Message}
		was := meta.FindStatusCondition(before.Conditions, billingv1alpha1.ConditionPaymentFailed)
		if billing.NewFailure(was, before.LatestInvoice, c, obj.Status.LatestInvoice) {
			s.opts.Recorder.Event(obj, corev1.EventTypeWarning, "PaymentFailed", now.Message)
		}
	}
	switch ev.Type {
	case "invoice.paid":
		if before.LatestInvoice == nil || before.LatestInvoice.ID != ev.Inv.ID || before.LatestInvoice.Status != "paid" {
			s.opts.Recorder.Event(obj, corev1.EventTypeNormal, "PaymentSucceeded", fmt.Sprintf("Invoice %s is paid.", ev.Inv.ID))
		}
	case "customer.subscription.deleted":
		if !terminal(before.StripeStatus) {
			s.opts.Recorder.Event(obj, corev1.EventTypeNormal, "SubscriptionCanceled", "The subscription was canceled in Stripe.")
		}
	case "customer.subscription.trial_will_end":
		s.opts.Recorder.Event(obj, corev1.EventTypeNormal, "TrialWillEnd", "The trial ends in three days.")
	}
}
