package controllers

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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
	// status returns a pointer to obj's status struct.
	status func(O) any
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

// managedKindOf is the core's view of the kind whose API type is T.
func managedKindOf[T any, O interface {
	*T
	managedObject
}](logKey string, connect func(*pass[O]) external) managedKind[O] {
	return managedKind[O]{logKey: logKey, connect: connect,
		newObject: func() O { return O(new(T)) },
		status:    func(o O) any { return reflect.ValueOf(o).Elem().FieldByName("Status").Addr().Interface() }}
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
		result, retErr = finishPass(ctx, p.persistStatus, p.skip, result, retErr)
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
	if h, ok := p.ext.(interface{ nextPass() time.Duration }); ok && err == nil {
		if d := h.nextPass(); d > 0 && d < result.RequeueAfter {
			result.RequeueAfter = d
		}
	}
	return result, err
}

// fail turns a phase error into conditions and a result.
func (m *managedReconciler[O]) fail(ctx context.Context, p *pass[O], phaseName string, err error) (ctrl.Result, error) {
	if h, ok := p.ext.(interface{ beforeFailure() }); ok {
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
	// intent is over either way.
	if err := p.clearCreatePending(ctx); err != nil {
		return err
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
// (Observe mode). A correction made while the spec is the one the last
// successful pass applied undid a change made in Stripe: DriftCorrected.
func (m *managedReconciler[O]) phaseUpdate(ctx context.Context, p *pass[O]) error {
	if len(p.obs.diff) == 0 {
		return nil
	}
	if p.observeMode() {
		p.drift = p.obs.diff
		return nil
	}
	what := p.ext.Creation().what
	markReconciling(p.obj, billingv1alpha1.ReasonUpdating, fmt.Sprintf("Updating the Stripe %s.", what))
	if err := p.ext.Update(ctx); err != nil {
		return err
	}
	gen := p.orig.GetObservedGeneration()
	p.corrected = gen != 0 && gen == p.obj.GetGeneration() && !p.obs.bookkeeping
	changes := joinDifferences(p.obs.diff)
	if p.corrected {
		p.event(true, "DriftCorrected", fmt.Sprintf("Stripe %s differed from the spec and was corrected: %s.", what, changes))
	} else {
		p.event(false, "Updated", fmt.Sprintf("Updated Stripe %s: %s.", what, changes))
	}
	log.FromContext(ctx).Info("Updated Stripe object", "what", what, "changes", strings.Join(p.obs.diff, "; "))
	return nil
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

// persistStatus writes the status difference now (optimistic lock) and
// makes the written status the new baseline.
func (p *pass[O]) persistStatus(ctx context.Context) error {
	status := p.core.kind.status
	before := p.orig
	if err := patchStatus(ctx, p.core.client, p.obj, status(p.orig), func(o client.Object) any { return status(o.(O)) },
		func(o client.Object, st any) { copyStatus(status(o.(O)), st) }); err != nil {
		return err
	}
	p.orig = p.obj.DeepCopyObject().(O)
	if h, ok := p.ext.(interface{ statusWritten(before O) }); ok {
		h.statusWritten(before)
	}
	return nil
}

// copyStatus copies the status struct src points to into dst (both
// pointers to the same status type).
func copyStatus(dst, src any) {
	reflect.ValueOf(dst).Elem().Set(reflect.ValueOf(src).Elem())
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
	status := p.core.kind.status
	copyStatus(status(p.obj), status(want))
	return nil
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
