package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// The managed-resource core: one reconciler for every kind that manages a
// Stripe object, on the pattern of crossplane-runtime's managed reconciler.
//
// A kind brings its API type, an external client (Observe, Create through
// its creation, Update, Delete, each idempotent) and its own diff and report
// logic. The core owns everything else, in one place for every kind:
//
//   - the phases of a pass: finalizer, observe (which binds a Stripe object
//     first when none is), update, report;
//   - one deferred status write per pass (an optimistic-lock merge patch),
//     which carries the conditions and observedGeneration;
//   - identity and ownership: a Stripe object named in the spec is adopted
//     only when it carries this resource's identity, or none in a namespace
//     selected for adoption; before a first create, a live object with the
//     resource's identity is adopted instead (a cluster rebuilt from Git or
//     a restored backup bills nothing twice);
//   - the crash-safe, intent-keyed create (createExternal);
//   - Observe mode: never a Stripe write, drift reported;
//   - the deletion policy's outcome and the finalizer;
//   - the jittered resync.

// managedObject is what the core needs of a kind's API type.
type managedObject interface {
	conditioned
	GetObservedGeneration() int64
	// BoundStripeIDs lists the Stripe IDs the resource's status records as
	// bound to it: the only objects a pass may write to, besides those the
	// core binds during the pass (see writeGuard).
	BoundStripeIDs() []string
}

// external is a kind's Stripe side for one resource during one pass.
type external interface {
	// Observe resolves what the resource depends on and reads the Stripe
	// object bound to it (its ID in status). bound is false when no object
	// is bound yet (or, replaces set, the bound one ended and a new one is
	// requested); the core then binds one through Creation and observes
	// again. Observe records what it read in status.
	Observe(ctx context.Context) (observation, error)
	// Creation describes how an object is bound: adopted through the spec,
	// found in Observe mode, or created exactly once.
	Creation() creation
	// Update makes Stripe match the spec where Observe found it differs
	// (Manage mode only).
	Update(ctx context.Context) error
	// Report sets the kind's conditions at the end of a pass that got this
	// far. drift is what Observe mode found and did not correct; corrected
	// tells whether this pass's update undid a change made in Stripe.
	Report(ctx context.Context, drift []string, corrected bool)
	// Delete applies the deletion policy in Stripe. done false keeps the
	// finalizer and requeues after requeue (the kind set its conditions).
	Delete(ctx context.Context) (done bool, requeue time.Duration, err error)
}

// Optional capabilities. A kind's external client implements one of these
// named interfaces to take part in a step of the core; the core asks for
// each by its name, nowhere else.

// replacer is a kind whose Stripe object has terms Stripe never changes
// after create (a price's amount, currency and interval; an endpoint's API
// version and signing secret; a coupon's terms). Its Observe sets
// observation.replace when they differ from the spec; in Manage mode the
// core then replaces the object (replaceExternal): makes the new one,
// retires the old one, records the new one at once, and observes again
// before Update.
type replacer interface {
	// Replacement describes the replacement Observe asked for.
	Replacement() replacement
}

// earlyRequeuer is a kind that may need its next pass before the resync
// (a webhook endpoint's rotation overlap ends).
type earlyRequeuer interface {
	// nextPass is how soon the next pass is due after a pass that
	// succeeded; 0 leaves the resync.
	nextPass() time.Duration
}

// failureObserver is a kind that keeps in status what a pass read from
// Stripe when a later phase fails (the failed pass's status write is still
// the core's deferred one).
type failureObserver interface {
	// beforeFailure runs before the core turns a phase error into
	// conditions.
	beforeFailure()
}

// statusWatcher is a kind that acts once a status is written: an Event
// that must follow the written status and no other writer's (one
// PaymentFailed Warning per failure), or bookkeeping of what woke the pass
// (a webhook-woken pass that took the subscription from status).
type statusWatcher[O managedObject] interface {
	// statusWritten runs after each status write of the pass; before is
	// the status the write replaced.
	statusWritten(before O)
}

// replacement is how a kind replaces one Stripe object (replacer).
type replacement struct {
	// what names the object, e.g. "price"; old is the ID it replaces (""
	// when the resource records none yet); note says why, for the Created
	// Event.
	what, old, note string
	// intent: persist a create intent (the create-pending annotation)
	// before the create; its idempotency key's replay is the crash safety
	// when find cannot find what a crashed pass made (an endpoint's secret
	// is only in the create's answer).
	intent bool
	// find returns a replacement an earlier pass made and did not record
	// (a strongly consistent list), "" when none; nil: none is looked for.
	find func(ctx context.Context) (string, error)
	// create makes the new object (under the idempotency key of intent when
	// intent is set) and returns its ID.
	create func(ctx context.Context, intent string) (string, error)
	// record writes the new ID into status (in memory), with whatever the
	// kind keeps of the old one (previous IDs, an overlap). The core
	// persists it at once.
	record func(id string)
	// retire deals with the replaced object once the new one exists, before
	// it is recorded (in the same status write): archive it, delete it, or
	// keep it for an overlap. It must be idempotent. nil: nothing.
	retire func(ctx context.Context, old, id string) error
}

// observation is what Observe found.
type observation struct {
	// bound: a Stripe object is bound to the resource and was read.
	bound bool
	// replaces is the ended object a requested replacement replaces.
	replaces string
	// diff names what differs from the spec; Update removes it (Manage
	// mode) or it is reported as drift (Observe mode).
	diff []string
	// bookkeeping: diff is expected rather than drift (an identity backfill
	// on upgrade, a plan's price rollover); correcting it is an update,
	// never DriftCorrected.
	bookkeeping bool
	// replace: the bound object (or one the kind keeps beside it, such as a
	// plan's price) has terms Stripe never changes after create that are not
	// the spec's; diff names them. In Manage mode the core replaces the
	// object through the kind's replacer before Update (replaceExternal).
	replace bool
}

// creation is how a kind binds its resource to a Stripe object.
type creation struct {
	// what names the object in events and messages, e.g. "customer".
	what string
	// specID is the existing object the spec names for adoption ("" when
	// none), specField its field, e.g. "spec.customerID".
	specID, specField string
	// read reads the object the spec names and returns its metadata (a
	// spec error when it does not exist).
	read func(ctx context.Context, id string) (map[string]string, error)
	// observeFind finds, in Observe mode, the object made for this resource
	// ("" when none). nil: Observe mode needs specField.
	observeFind func(ctx context.Context) (string, error)
	// ready returns an error (a spec or wait error) while a create must not
	// happen yet.
	ready func() error
	// externalCreate: find, adopt (the identity lookup), create, record.
	externalCreate
	// createdNote is added to the Created event, e.g. "replacing ended
	// subscription sub_1".
	createdNote string
}

// managedReconciler is the core, configured for one kind.
type managedReconciler[O managedObject] struct {
	client   client.Client
	recorder record.EventRecorder
	resync   time.Duration
	instance string
	adoption adoptionPolicy
	backend  stripeBackend
	kind     managedKind[O]
	// lists, when set, lets a resync read from whole lists
	// (resync_listing.go).
	lists *ResyncLists
}

// managedKind is one kind's part of the core.
type managedKind[O managedObject] struct {
	// logKey names the resource in log lines, e.g. "stripeCustomer".
	logKey    string
	newObject func() O
	// status returns a pointer to obj's status struct; copyStatus copies
	// src's status into dst.
	status     func(O) any
	copyStatus func(dst, src O)
	// connect returns the kind's external client for one pass.
	connect func(p *pass[O]) external
}

// managedConfig is the configuration every kind's reconciler shares.
type managedConfig struct {
	client           client.Client
	recorder         record.EventRecorder
	resync           time.Duration
	instance         string
	adoptionSelector labels.Selector
	// stripe is the kind's Stripe client, reached for writes only through
	// the pass's guard.
	stripe stripeBackend
	// lists, when set, lets a resync read from whole lists.
	lists *ResyncLists
}

// managedKindOf is the core's view of the kind whose API type is T and
// status type S; status returns a pointer to an object's status.
func managedKindOf[T any, S any, O interface {
	*T
	managedObject
}](logKey string, status func(*T) *S, connect func(*pass[O]) external) managedKind[O] {
	return managedKind[O]{logKey: logKey, connect: connect,
		newObject:  func() O { return O(new(T)) },
		status:     func(o O) any { return status(o) },
		copyStatus: func(dst, src O) { *status(dst) = *status(src) }}
}

func newManaged[O managedObject](cfg managedConfig, kind managedKind[O]) *managedReconciler[O] {
	return &managedReconciler[O]{client: cfg.client, recorder: cfg.recorder, resync: resyncOr(cfg.resync), instance: cfg.instance,
		adoption: adoptionPolicy{reader: cfg.client, selector: cfg.adoptionSelector}, backend: cfg.stripe, kind: kind, lists: cfg.lists}
}

// pass is what one Reconcile knows about one resource: the scope the phases
// share.
type pass[O managedObject] struct {
	obj   O
	owner stripe.Owner
	// orig holds the status as last read from or written to the API server;
	// the deferred patch sends the difference with an optimistic lock.
	orig O
	// obs is what Observe found; drift what Observe mode left uncorrected;
	// corrected whether this pass's update undid a change made in Stripe.
	obs       observation
	drift     []string
	corrected bool
	ext       external
	// guard decides which Stripe objects this pass may write to; writes is
	// the only way a kind writes to Stripe.
	guard  *writeGuard
	writes guardedWrites
	// skip skips the deferred status write (the object is gone, or a
	// conflict showed the cached copy is stale).
	skip bool
	// drop are request annotations the deferred write removes after the
	// status (dropAnnotation).
	drop []string
	// listing is what this pass's observe read from whole lists.
	listing passListing

	core *managedReconciler[O]
}

func (p *pass[O]) observeMode() bool {
	return p.obj.GetManagementPolicy() == billingv1alpha1.ManagementPolicyObserve
}

// event records a Kubernetes Event about the resource.
func (p *pass[O]) event(warning bool, reason, msg string) {
	emit(p.core.recorder, p.obj, warning, reason, msg)
}

// Reconcile runs one pass over one resource and writes its status once.
func (m *managedReconciler[O]) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := m.kind.newObject()
	if err := m.client.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues(m.kind.logKey, klog.KObj(obj)))
	p := &pass[O]{obj: obj, orig: obj.DeepCopyObject().(O), owner: ownerOf(obj, m.instance), core: m}
	p.guard = newWriteGuard(obj.BoundStripeIDs())
	p.guard.check = func(ctx context.Context, what, id string, md map[string]string) error {
		return m.adoption.check(ctx, p.obj, p.owner, what, id, md)
	}
	p.guard.read = m.backend.readMetadata
	p.writes = guardedWrites{b: m.backend, g: p.guard}
	p.ext = m.kind.connect(p)
	defer func() {
		result, retErr = finishPass(ctx, p.persist, p.skip, result, retErr)
	}()
	if !obj.GetDeletionTimestamp().IsZero() {
		return m.reconcileDelete(ctx, p)
	}
	result, err := runPhases(ctx, p, []phase[*pass[O]]{
		{"finalizer", m.phaseFinalizer},
		{"observe", m.phaseObserve},
		{"update", m.phaseUpdate},
		{"report", m.phaseReport},
	}, m.resync, m.fail)
	// A kind may need the next pass before the resync (a rotation's
	// overlap ends).
	if h, ok := p.ext.(earlyRequeuer); ok && err == nil {
		if d := h.nextPass(); d > 0 && d < result.RequeueAfter {
			result.RequeueAfter = d
		}
	}
	return result, err
}

// fail turns a phase error into conditions and a result.
func (m *managedReconciler[O]) fail(ctx context.Context, p *pass[O], phaseName string, err error) (ctrl.Result, error) {
	if h, ok := p.ext.(failureObserver); ok {
		h.beforeFailure()
	}
	res, err, skip := failPass(ctx, p.obj, phaseName, err, m.resync)
	p.skip = skip
	return res, err
}

// phaseFinalizer adds the finalizer in Manage mode (Observe mode never
// writes to Stripe, so there is nothing to do on deletion).
func (m *managedReconciler[O]) phaseFinalizer(ctx context.Context, p *pass[O]) error {
	if p.observeMode() || controllerutil.ContainsFinalizer(p.obj, billingv1alpha1.Finalizer) {
		return nil
	}
	return p.patchMeta(ctx, func() { controllerutil.AddFinalizer(p.obj, billingv1alpha1.Finalizer) })
}

// phaseObserve observes Stripe, binding an object first when none is.
func (m *managedReconciler[O]) phaseObserve(ctx context.Context, p *pass[O]) error {
	obs, err := m.observe(ctx, p)
	if err != nil {
		return err
	}
	if !obs.bound {
		if err := m.bind(ctx, p, obs.replaces); err != nil {
			return err
		}
		if obs, err = p.ext.Observe(ctx); err != nil {
			return err
		}
	}
	// The ID may have reached status another way than through
	// createExternal (the webhook server can record it first): the create
	// intent is over either way, unless it is a replacement's, still due.
	if !obs.replace {
		if err := p.clearCreatePending(ctx); err != nil {
			return err
		}
	}
	p.obs = obs
	return nil
}

// bind binds a Stripe object to the resource: the one the spec names
// (adopted when ownership allows), in Observe mode the one made for this
// resource, else one created exactly once (or the live one that already
// carries this resource's identity).
func (m *managedReconciler[O]) bind(ctx context.Context, p *pass[O], replaces string) error {
	c := p.ext.Creation()
	if c.specID != "" && replaces == "" {
		md, err := c.read(ctx, c.specID)
		if err != nil {
			return err
		}
		if err := m.adoption.check(ctx, p.obj, p.owner, c.what, c.specID, md); err != nil {
			return err
		}
		p.guard.bind(c.specID)
		p.guard.observed(c.specID, md)
		c.record(c.specID)
		p.event(false, "Adopted", fmt.Sprintf("Adopted Stripe %s %s.", c.what, c.specID))
		return nil
	}
	if p.observeMode() {
		if c.observeFind == nil {
			return newSpecError(billingv1alpha1.ReasonInvalidSpec, "managementPolicy Observe needs %s: there is no Stripe %s to observe.", c.specField, c.what)
		}
		id, err := c.observeFind(ctx)
		if err != nil {
			return fmt.Errorf("looking up the Stripe %s of this resource: %w", c.what, err)
		}
		if id == "" {
			return newSpecError(billingv1alpha1.ReasonNotFound, "Observe mode found no Stripe %s for this resource and never creates one; set %s to observe an existing one.", c.what, c.specField)
		}
		p.guard.bind(id)
		c.record(id)
		return nil
	}
	if c.ready != nil {
		if err := c.ready(); err != nil {
			return err
		}
	}
	markReconciling(p.obj, billingv1alpha1.ReasonCreating, fmt.Sprintf("Creating the Stripe %s.", c.what))
	ec := c.externalCreate
	ec.persistStatus = p.persistStatus
	// What the crash-recovery lookup finds under this resource's identity,
	// or this pass creates, is bound (its ownership is checked again by the
	// guard before any write).
	record := ec.record
	ec.record = func(id string) { p.guard.bind(id); record(id) }
	made := false
	ec.create = func(ctx context.Context, intent string) (string, error) {
		id, err := c.create(ctx, intent)
		made = err == nil
		return id, err
	}
	id, adopted, err := createExternal(ctx, m.client, p.obj, ec)
	if made && id != "" {
		// This pass created it: one Created Event, also when recording the
		// ID then failed (the webhook server may have recorded it first,
		// and the reconciler's write conflicted): no later pass creates it,
		// it finds it bound or recovers it, and emits nothing.
		msg := fmt.Sprintf("Created Stripe %s %s.", c.what, id)
		if c.createdNote != "" {
			msg = fmt.Sprintf("Created Stripe %s %s %s.", c.what, id, c.createdNote)
		}
		p.event(false, "Created", msg)
	}
	if err != nil {
		return err
	}
	// createExternal's metadata patches returned the persisted status.
	p.orig = p.obj.DeepCopyObject().(O)
	if adopted {
		p.event(false, "Adopted", fmt.Sprintf("Adopted Stripe %s %s, which carries this resource's identity.", c.what, id))
	}
	// Otherwise recovered: an earlier pass created it (createExternal logs it).
	return nil
}

// phaseUpdate corrects what differs (Manage mode) or records it as drift
// (Observe mode): a replacement first (replaceExternal, then the kind
// observes again), then the kind's in-place Update. A correction made while
// the spec is the one the last successful pass applied undid a change made
// in Stripe: DriftCorrected.
func (m *managedReconciler[O]) phaseUpdate(ctx context.Context, p *pass[O]) error {
	first := p.obs
	if len(first.diff) == 0 && !first.replace {
		return nil
	}
	if p.observeMode() {
		p.drift = first.diff
		return nil
	}
	what := p.ext.Creation().what
	markReconciling(p.obj, billingv1alpha1.ReasonUpdating, fmt.Sprintf("Updating the Stripe %s.", what))
	if first.replace {
		if err := m.replaceExternal(ctx, p); err != nil {
			return err
		}
		obs, err := p.ext.Observe(ctx)
		if err != nil {
			return err
		}
		p.obs = obs
	}
	if len(p.obs.diff) > 0 {
		if err := p.ext.Update(ctx); err != nil {
			return err
		}
	}
	gen := p.orig.GetObservedGeneration()
	p.corrected = gen != 0 && gen == p.obj.GetGeneration() && !first.bookkeeping
	changes := joinDifferences(first.diff)
	switch {
	case p.corrected:
		p.event(true, "DriftCorrected", fmt.Sprintf("Stripe %s differed from the spec and was corrected: %s.", what, changes))
	case first.replace && len(p.obs.diff) == 0:
		// The replacement's own Events (Created, and what the kind's
		// retire records) say what happened; nothing else was updated.
	case first.replace:
		p.event(false, "Updated", fmt.Sprintf("Updated Stripe %s: %s.", what, joinDifferences(p.obs.diff)))
	default:
		p.event(false, "Updated", fmt.Sprintf("Updated Stripe %s: %s.", what, changes))
	}
	log.FromContext(ctx).Info("Updated Stripe object", "what", what, "changes", strings.Join(first.diff, "; "))
	return nil
}

// replaceExternal replaces a Stripe object whose fixed terms are not the
// spec's, for every kind with a replacer, exactly once also across a crash:
//
//  1. an earlier pass's unrecorded replacement is looked up first (find);
//  2. otherwise, when the kind asks for it, the create intent is persisted
//     before the create (the create-pending annotation, kept until the
//     replacement is recorded), and the create is made under its key;
//  3. the old object is retired (archived, deleted, or kept for an
//     overlap), idempotently: a pass that fails before step 4 finds the
//     same replacement again and retires again;
//  4. the new ID is recorded and the status persisted at once, with what
//     the retirement recorded (a condition, an overlap), so no later
//     failure of the pass loses it.
func (m *managedReconciler[O]) replaceExternal(ctx context.Context, p *pass[O]) error {
	r, ok := p.ext.(replacer)
	if !ok {
		return fmt.Errorf("the %s kind asked for a replacement but has no replacer", m.kind.logKey)
	}
	rep := r.Replacement()
	id := ""
	if rep.find != nil {
		var err error
		if id, err = rep.find(ctx); err != nil {
			return fmt.Errorf("looking for a replacement %s made earlier: %w", rep.what, err)
		}
		p.guard.bind(id)
	}
	if id == "" {
		intent := ""
		if rep.intent {
			var pending bool
			if intent, pending = p.obj.GetAnnotations()[billingv1alpha1.AnnotationCreatePending]; !pending {
				intent = stripe.NewIntent()
				if err := p.setCreatePending(ctx, intent); err != nil {
					return err
				}
			}
		}
		var err error
		if id, err = rep.create(ctx, intent); err != nil {
			if rep.intent && stripe.AnswerStored(err) {
				// Stripe keeps this answer under the key: the next pass
				// tries under a new one (best effort, as createExternal).
				if perr := p.setCreatePending(ctx, stripe.NewIntent()); perr != nil {
					log.FromContext(ctx).V(1).Info("Could not start a new create intent", "error", perr.Error())
				}
			}
			return err
		}
		msg := fmt.Sprintf("Created Stripe %s %s.", rep.what, id)
		if rep.old != "" {
			msg = fmt.Sprintf("Created Stripe %s %s replacing %s", rep.what, id, rep.old)
			if rep.note != "" {
				msg += " (" + rep.note + ")"
			}
			msg += "."
		}
		p.event(false, "Created", msg)
	}
	if rep.old != "" && rep.old != id && rep.retire != nil {
		if err := rep.retire(ctx, rep.old, id); err != nil {
			return err
		}
	}
	rep.record(id)
	if err := p.persistStatus(ctx); err != nil {
		return fmt.Errorf("recording Stripe %s %s: %w", rep.what, id, err)
	}
	return p.clearCreatePending(ctx)
}

func (m *managedReconciler[O]) phaseReport(ctx context.Context, p *pass[O]) error {
	p.ext.Report(ctx, p.drift, p.corrected)
	return nil
}

// reconcileDelete applies the deletion policy and releases the finalizer.
func (m *managedReconciler[O]) reconcileDelete(ctx context.Context, p *pass[O]) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(p.obj, billingv1alpha1.Finalizer) {
		p.skip = true
		return ctrl.Result{}, nil
	}
	if !p.observeMode() {
		p.noteUnboundSpecID()
		done, requeue, err := p.ext.Delete(ctx)
		var refused *refusedWrite
		switch {
		case errors.As(err, &refused):
			// Not this resource's to touch: the deletion policy is not
			// applied to it, and the resource goes.
			p.event(true, reasonLeftAlone, fmt.Sprintf("Left Stripe %s %s alone on deletion: %s", refused.what, refused.id, refused.Error()))
			log.FromContext(ctx).Info("Deletion left a Stripe object alone", "what", refused.what, "stripeID", refused.id, "why", refused.Error())
		case err != nil:
			return m.fail(ctx, p, "delete", err)
		case !done:
			return ctrl.Result{RequeueAfter: requeue}, nil
		}
	}
	if err := releaseFinalizer(ctx, m.client, p.obj); err != nil {
		return m.fail(ctx, p, "release", client.IgnoreNotFound(err))
	}
	p.skip = true
	return ctrl.Result{}, nil
}

// persist is the pass's deferred write: the status, then the removal of
// the request annotations the pass answered (dropAnnotation).
func (p *pass[O]) persist(ctx context.Context) error {
	if err := p.persistStatus(ctx); err != nil {
		return err
	}
	if len(p.drop) == 0 {
		return nil
	}
	return p.patchMeta(ctx, func() {
		ann := p.obj.GetAnnotations()
		for _, k := range p.drop {
			delete(ann, k)
		}
		p.obj.SetAnnotations(ann)
	})
}

// dropAnnotation asks the deferred write to remove a request annotation
// (a recreate request answered or ignored) once the status is written: a
// request is over only when what answers it is recorded.
func (p *pass[O]) dropAnnotation(key string) {
	if _, ok := p.obj.GetAnnotations()[key]; ok && !slices.Contains(p.drop, key) {
		p.drop = append(p.drop, key)
	}
}

// recordBeforeWrite writes the status now, before a Stripe write whose
// safety depends on status recording something first: a charge attempt is
// counted before the request that can charge, and its decline is kept
// before the create's intent is renewed (stripesubscription_charges.go).
// It is the one status write a kind asks for outside the deferred one;
// the create and replacement steps of the core make their own.
func (p *pass[O]) recordBeforeWrite(ctx context.Context) error {
	return p.persistStatus(ctx)
}

// persistStatus writes the status difference now (optimistic lock) and
// makes the written status the new baseline.
func (p *pass[O]) persistStatus(ctx context.Context) error {
	kind := p.core.kind
	before := p.orig
	if err := patchStatus(ctx, p.core.client, p.obj, kind.status(p.orig), func(o client.Object) any { return kind.status(o.(O)) },
		func(o client.Object) { kind.copyStatus(o.(O), before) }); err != nil {
		return err
	}
	p.orig = p.obj.DeepCopyObject().(O)
	if h, ok := p.ext.(statusWatcher[O]); ok {
		h.statusWritten(before)
	}
	return nil
}

// patchMeta persists a metadata change (finalizer, annotations) without
// losing the status computed so far in memory (a patch response overwrites
// the object).
func (p *pass[O]) patchMeta(ctx context.Context, mutate func()) error {
	want := p.obj.DeepCopyObject().(O)
	if err := patchMeta(ctx, p.core.client, p.obj, mutate); err != nil {
		return err
	}
	p.orig = p.obj.DeepCopyObject().(O)
	p.core.kind.copyStatus(p.obj, want)
	return nil
}

// setCreatePending persists the create-pending annotation with intent
// (a replacement's create intent), keeping the status computed so far.
func (p *pass[O]) setCreatePending(ctx context.Context, intent string) error {
	return p.patchMeta(ctx, func() {
		ann := p.obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[billingv1alpha1.AnnotationCreatePending] = intent
		p.obj.SetAnnotations(ann)
	})
}

// clearCreatePending removes the create-pending annotation once an object
// is bound.
func (p *pass[O]) clearCreatePending(ctx context.Context) error {
	if _, pending := p.obj.GetAnnotations()[billingv1alpha1.AnnotationCreatePending]; !pending {
		return nil
	}
	return p.patchMeta(ctx, func() {
		ann := p.obj.GetAnnotations()
		delete(ann, billingv1alpha1.AnnotationCreatePending)
		p.obj.SetAnnotations(ann)
	})
}

// enqueueAll maps any event to a request for every object of list's kind
// (after the Stripe credentials changed, every resource is looked at again).
func enqueueAll(c client.Reader, list client.ObjectList) handler.MapFunc {
	return func(ctx context.Context, _ client.Object) []reconcile.Request {
		l := list.DeepCopyObject().(client.ObjectList)
		if err := c.List(ctx, l); err != nil {
			log.FromContext(ctx).Error(err, "Listing resources to enqueue")
			return nil
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(items))
		for _, it := range items {
			if o, ok := it.(client.Object); ok {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
			}
		}
		return reqs
	}
}
