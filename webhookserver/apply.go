package webhookserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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
	"github.com/stripe-operator/stripe-operator/internal/identity"
)

// IndexSubscriptionID indexes StripeSubscriptions by status.subscriptionID.
const IndexSubscriptionID = "status.subscriptionID"

// Outcomes of an event, in responses and logs.
const (
	OutcomeApplied    = "applied"
	OutcomeDuplicate  = "duplicate"
	OutcomeOutOfOrder = "out_of_order"
	// OutcomeSuperseded: the event is about an invoice older than the
	// subscription's latest invoice.
	OutcomeSuperseded = "superseded"
	OutcomeIgnored    = "ignored"
	// OutcomeDeferred: the event's order against what status shows cannot
	// be known (see place) and it would change status. It is recorded in
	// status.deferredEvent, which makes the operator read Stripe, and not
	// applied.
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
	// Judged on the cached object, read without copying it.
	if recorded(target, ev.ID) {
		countOutcome(OutcomeDuplicate, ev)
		return OutcomeDuplicate, nil
	}
	if redelivered(&target.Status, ev) {
		// Its status was written but its annotations were not (the server
		// stopped, or the annotation write failed, between the two): a
		// duplicate, recorded now.
		countOutcome(OutcomeDuplicate, ev)
		applied := !(target.Status.DeferredEvent != nil && target.Status.DeferredEvent.ID == ev.ID)
		if _, err := s.recordIDs(ctx, target, "", ev, applied, time.Now().Add(s.opts.RetryBudget)); err != nil {
			return "", err
		}
		return OutcomeDuplicate, nil
	}
	if shared {
		target = target.DeepCopy()
	}
	return s.persist(ctx, target, ev, mut)
}

// maxRecentEventIDs bounds the recent-event-ids annotation. Stripe
// redelivers an event it got no 2xx for, and sometimes one it did, mostly
// within minutes; a subscription sees a handful of events per change, so the
// last 20 cover the redeliveries of several changes. An older redelivery
// is still placed by the ordering rule (older than what status shows) and
// changes nothing.
const maxRecentEventIDs = 20

// recorded tells whether obj's event-ID annotations name id.
func recorded(obj *billingv1alpha1.StripeSubscription, id string) bool {
	ann := obj.GetAnnotations()
	if ann[billingv1alpha1.AnnotationLastEventID] == id {
		return true
	}
	for rest := ann[billingv1alpha1.AnnotationRecentEventIDs]; rest != ""; {
		var one string
		one, rest, _ = strings.Cut(rest, ",")
		if one == id {
			return true
		}
	}
	return false
}

// withRecent is the recent-event-ids value with id appended, the oldest
// dropped past maxRecentEventIDs.
func withRecent(list, id string) string {
	var ids []string
	if list != "" {
		ids = strings.Split(list, ",")
	}
	ids = append(slices.DeleteFunc(ids, func(s string) bool { return s == id || s == "" }), id)
	if len(ids) > maxRecentEventIDs {
		ids = ids[len(ids)-maxRecentEventIDs:]
	}
	return strings.Join(ids, ",")
}

// recordIDs writes ev's ID into obj's event-ID annotations, after the
// status write that applied (or deferred) it: recent-event-ids always,
// last-event-id when it was applied. One merge patch of the resource's
// metadata, with the resourceVersion as a precondition so that two writers
// of the list never lose each other's IDs; a conflict is retried on a
// fresh read until deadline. obj is not changed; the object written is
// returned. via is the resourceVersion obj's status write replaced ("" when
// there was none), for the own-writes overlay.
func (s *Server) recordIDs(ctx context.Context, obj *billingv1alpha1.StripeSubscription, via string, ev *event, applied bool, deadline time.Time) (*billingv1alpha1.StripeSubscription, error) {
	key := client.ObjectKeyFromObject(obj)
	backoff := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ann := obj.GetAnnotations()
		set := map[string]string{billingv1alpha1.AnnotationRecentEventIDs: withRecent(ann[billingv1alpha1.AnnotationRecentEventIDs], ev.ID)}
		if applied {
			set[billingv1alpha1.AnnotationLastEventID] = ev.ID
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": obj.ResourceVersion, "annotations": set}})
		if err != nil {
			return nil, err
		}
		out := &billingv1alpha1.StripeSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: obj.Namespace, Name: obj.Name}}
		err = s.opts.Client.Patch(ctx, out, client.RawPatch(types.MergePatchType, patch))
		switch {
		case err == nil:
			replaced := obj.ResourceVersion
			if via != "" {
				replaced, via = via, obj.ResourceVersion
			}
			s.written.recordVia(replaced, via, out, time.Now())
			return out, nil
		case apierrors.IsNotFound(err):
			return nil, nil
		case !apierrors.IsConflict(err):
			return nil, fmt.Errorf("recording event %s on %s: %w", ev.ID, key, err)
		}
		conflicts.Inc()
		wait := backoff/2 + rand.N(backoff/2+1)
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("recording event %s on %s: conflicts for the whole retry budget (%d attempts): %w", ev.ID, key, attempt, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 250*time.Millisecond)
		fresh := &billingv1alpha1.StripeSubscription{}
		if err := s.opts.APIReader.Get(ctx, key, fresh); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("reading StripeSubscription %s: %w", key, err)
		}
		if fresh.UID != obj.UID {
			return nil, nil
		}
		if recorded(fresh, ev.ID) && (!applied || fresh.GetAnnotations()[billingv1alpha1.AnnotationLastEventID] == ev.ID) {
			return fresh, nil // another replica recorded it
		}
		obj, via = fresh, ""
	}
}

// kindSubscription is the resource kind the server applies events to.
const kindSubscription = "StripeSubscription"

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
	// The metadata names the resource by the identity rule (internal/identity,
	// the reconcilers' and the audit's rule): a StripeSubscription of this
	// operator instance (any instance when Options.Instance is empty).
	id, ok := identity.Read(md, s.opts.Instance, kindSubscription)
	if ok && id.Kind == kindSubscription && id.Namespace != "" && id.Name != "" &&
		(s.opts.Instance == "" || id.Instance == s.opts.Instance) {
		uid := id.UID
		key := types.NamespacedName{Namespace: id.Namespace, Name: id.Name}
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
			// The status write is the commit point: the event's effect
			// and its stream's marker (or status.deferredEvent) are
			// persisted, and the Events about it are recorded. The
			// annotations follow; if that write fails the event is answered
			// 503, and the redelivery is recognised from the marker and
			// recorded then (apply), never applied twice.
			s.written.record(replaced, obj, time.Now())
			countOutcome(outcome, ev)
			s.recordEvents(obj, before, ev)
			if _, err := s.recordIDs(ctx, obj, replaced, ev, outcome == OutcomeApplied, deadline); err != nil {
				return "", err
			}
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

// verdict is where an event stands against the source of the fields it
// would change.
type verdict int

const (
	newer verdict = iota
	unknown
	duplicate
	older
)

// place is the ordering rule, the only one, for both streams (a
// subscription's own state, ordered by status.lastEvent; each invoice,
// ordered by latestInvoice.lastEvent). The fields an event would change
// come from the stream's last applied event (marker) or from the
// operator's last read of Stripe (readAt), both stamped by Stripe to the
// second. An event is
//   - a duplicate when the marker or status.deferredEvent names it (the
//     event-ID annotations name the others: apply);
//   - older when it was created before the marker, whose payload already
//     shows a later state: it changes nothing;
//   - newer when it was created after both the marker and the read: it is
//     applied;
//   - otherwise of unknown order (created in the marker's second, or not
//     after the read): applied only when it changes nothing status shows
//     (its marker moves), else recorded in status.deferredEvent and not
//     applied; the operator then reads Stripe, which is the truth (settle).
func place(st *billingv1alpha1.StripeSubscriptionStatus, marker *billingv1alpha1.EventRef, ev *event) verdict {
	switch {
	case st.DeferredEvent != nil && st.DeferredEvent.ID == ev.ID, marker != nil && marker.ID == ev.ID:
		return duplicate
	case marker != nil && ev.Created < marker.Created:
		return older
	case marker != nil && ev.Created == marker.Created, st.ReadAt != nil && ev.Created <= st.ReadAt.Unix():
		return unknown
	}
	return newer
}

// redelivered tells, reading st only, whether the ordering rule makes ev a
// duplicate. The mutations place events the same way; this lets a
// duplicate cost no copy.
func redelivered(st *billingv1alpha1.StripeSubscriptionStatus, ev *event) bool {
	switch {
	case ev.Sub != nil:
		return (st.SubscriptionID == "" || st.SubscriptionID == ev.Sub.ID) && place(st, st.LastEvent, ev) == duplicate
	case ev.Inv != nil:
		var marker *billingv1alpha1.EventRef
		if cur := st.LatestInvoice; cur != nil && cur.ID == ev.Inv.ID {
			marker = cur.LastEvent
		}
		return place(st, marker, ev) == duplicate
	}
	return false
}

// settle finishes a mutation that placed ev as v and applied it to st
// (before: st as it was, kept for an unknown one). An event of unknown
// order that changes what status shows is undone and recorded in
// status.deferredEvent: the operator's watch wakes on it and reads Stripe.
func settle(v verdict, before, st *billingv1alpha1.StripeSubscriptionStatus, ev *event) string {
	if v != unknown || sameObserved(before, st) {
		return OutcomeApplied
	}
	*st = *before
	st.DeferredEvent = &billingv1alpha1.EventRef{ID: ev.ID, Type: ev.Type, Created: ev.Created}
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

// marker is the marker of ev's stream after applying it.
func marker(ev *event) *billingv1alpha1.EventRef {
	return &billingv1alpha1.EventRef{ID: ev.ID, Type: ev.Type, Created: ev.Created}
}

func terminal(status string) bool { return status == "canceled" || status == "incomplete_expired" }

// subscriptionMutation copies a subscription into status, ordered by the
// subscription's own events (status.lastEvent, place).
func subscriptionMutation(ev *event) mutation {
	so := ev.Sub
	return func(obj *billingv1alpha1.StripeSubscription) string {
		st := &obj.Status
		if st.SubscriptionID != "" && st.SubscriptionID != so.ID {
			return OutcomeIgnored // an earlier subscription of a recreated resource
		}
		v := place(st, st.LastEvent, ev)
		switch v {
		case duplicate:
			return OutcomeDuplicate
		case older:
			return OutcomeOutOfOrder
		}
		var before *billingv1alpha1.StripeSubscriptionStatus
		if v == unknown {
			before = st.DeepCopy()
		}
		// The reconciler's mapping (internal/billing), from the event's
		// subscription in internal/stripe's shape.
		billing.SetSubscription(st, so.subscription())
		if ev.Type == "customer.subscription.deleted" && !terminal(so.Status) {
			st.StripeStatus = "canceled"
		}
		st.LastEvent = marker(ev)
		setPaymentFailed(obj)
		return settle(v, before, st, ev)
	}
}

// invoiceMutation records the latest invoice, ordered per invoice by
// latestInvoice.lastEvent (place). An event about another invoice than the
// latest one replaces it when Stripe created that invoice later; one
// created earlier changes nothing (superseded), and one created in the
// same second is of unknown order.
func invoiceMutation(ev *event) mutation {
	in := ev.Inv
	return func(obj *billingv1alpha1.StripeSubscription) string {
		st := &obj.Status
		if sid := in.subscriptionID(); st.SubscriptionID != "" && sid != "" && st.SubscriptionID != sid {
			return OutcomeIgnored
		}
		cur := st.LatestInvoice
		sameSecond := false
		if cur != nil && cur.ID != in.ID {
			if cur.Created != nil && in.Created < cur.Created.Unix() {
				return OutcomeSuperseded
			}
			sameSecond = cur.Created != nil && in.Created == cur.Created.Unix()
			cur = nil
		}
		var m *billingv1alpha1.EventRef
		if cur != nil {
			m = cur.LastEvent
		}
		v := place(st, m, ev)
		switch {
		case v == duplicate:
			return OutcomeDuplicate
		case v == older:
			return OutcomeOutOfOrder
		case sameSecond:
			v = unknown
		}
		var before *billingv1alpha1.StripeSubscriptionStatus
		if v == unknown {
			before = st.DeepCopy()
		}
		// The reconciler's mapping (internal/billing); the payment facts
		// are this event's (paymentFacts).
		inv := billing.InvoiceStatus(in.invoice())
		inv.LastEvent = marker(ev)
		if inv.Created == nil && cur != nil {
			inv.Created = cur.Created
		}
		paymentFacts(inv, cur, in, ev.Type)
		st.LatestInvoice = inv
		setPaymentFailed(obj)
		return settle(v, before, st, ev)
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
	sameAttempt := cur != nil && cur.ID == inv.ID && cur.AttemptCount == inv.AttemptCount
	switch evType {
	case "invoice.payment_failed":
		// Stripe sends invoice.payment_failed for an attempt that needs
		// authentication too, with invoice.payment_action_required, in
		// either order: the failure does not erase that authentication is
		// required for the same attempt.
		inv.PaymentIntentStatus = billing.PaymentIntentRequiresPaymentMethod
		if sameAttempt && cur.PaymentIntentStatus == billing.PaymentIntentRequiresAction {
			inv.PaymentIntentStatus = billing.PaymentIntentRequiresAction
		}
	case "invoice.payment_action_required":
		inv.PaymentIntentStatus = billing.PaymentIntentRequiresAction
	}
	// The outcome of an attempt does not change: an event without payment
	// details about the same attempt keeps what was known about it.
	if sameAttempt {
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
