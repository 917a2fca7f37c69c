package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// WebhookEndpoints is what the endpoint reconciler needs from Stripe.
type WebhookEndpoints interface {
	CreateWebhookEndpoint(ctx context.Context, owner stripe.Owner, intent string, p stripe.WebhookEndpointParams) (*stripe.WebhookEndpoint, error)
	GetWebhookEndpoint(ctx context.Context, id string) (*stripe.WebhookEndpoint, error)
	UpdateWebhookEndpoint(ctx context.Context, owner stripe.Owner, id string, p stripe.WebhookEndpointParams) (*stripe.WebhookEndpoint, error)
	DeleteWebhookEndpoint(ctx context.Context, owner stripe.Owner, id string) error
	ListWebhookEndpointsByOwner(ctx context.Context, owner stripe.Owner) ([]*stripe.WebhookEndpoint, error)
}

// Keys the endpoint reconciler writes in the webhook Secret. Each endpoint
// has its own keys; webhookSigningSecrets, which the webhook server reads,
// is rebuilt from all of them plus extraSigningSecrets (secrets of
// endpoints made by hand).
const (
	secretKeyCurrentSuffix  = ".secret"
	secretKeyPreviousSuffix = ".previous-secret"
	secretKeyExtra          = "extraSigningSecrets"
	secretKeyAggregate      = "webhookSigningSecrets"
)

// StripeWebhookEndpointReconciler manages Stripe webhook endpoints and
// writes their signing secrets into the webhook Secret, rotating them on
// request with an overlap.
type StripeWebhookEndpointReconciler struct {
	client.Client
	// APIReader reads the webhook Secret (the manager's cache holds only
	// the credentials Secret).
	APIReader client.Reader
	Stripe    WebhookEndpoints
	Recorder  record.EventRecorder
	// Namespace is the operator's namespace: endpoints elsewhere are
	// refused, as the operator may write only the Secret there.
	Namespace string
	// Instance is this operator instance's name (--instance-name).
	Instance string
	// ResyncPeriod; default 10m.
	ResyncPeriod       time.Duration
	SkipNameValidation bool
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// CredentialsChanged, when set, re-queues every endpoint (a new key may
	// be another Stripe account's).
	CredentialsChanged <-chan event.GenericEvent
	// Lists, when set, lets the periodic resync of an unchanged endpoint
	// read it from the whole list (resync_lists.go).
	Lists *ResyncLists
}

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripewebhookendpoints,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripewebhookendpoints/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripewebhookendpoints/finalizers,verbs=update

// SetupWithManager registers the controller.
func (r *StripeWebhookEndpointReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).Named("stripewebhookendpoint").
		For(&billingv1alpha1.StripeWebhookEndpoint{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WithOptions(controllerOptions(r.SkipNameValidation, 1))
	if r.CredentialsChanged != nil {
		b = b.WatchesRawSource(source.Channel(r.CredentialsChanged, handler.EnqueueRequestsFromMapFunc(enqueueAll(r.Client, &billingv1alpha1.StripeWebhookEndpointList{}))))
	}
	return b.Complete(r)
}

func (r *StripeWebhookEndpointReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile runs one pass of the managed-resource core over one
// StripeWebhookEndpoint.
func (r *StripeWebhookEndpointReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return newManaged(managedConfig{client: r.Client, recorder: r.Recorder, resync: r.ResyncPeriod, instance: r.Instance, stripe: stripeBackend{endpoints: r.Stripe}, lists: r.Lists},
		managedKindOf[billingv1alpha1.StripeWebhookEndpoint]("stripeWebhookEndpoint", func(o *billingv1alpha1.StripeWebhookEndpoint) *billingv1alpha1.StripeWebhookEndpointStatus {
			return &o.Status
		},
			func(p *pass[*billingv1alpha1.StripeWebhookEndpoint]) external {
				return &webhookEndpointExternal{r: r, pass: p}
			}),
	).Reconcile(ctx, req)
}

// webhookEndpointExternal is the StripeWebhookEndpoint kind's external
// client for one pass: the Stripe endpoint bound through status.endpointID,
// and its signing secret in the webhook Secret.
type webhookEndpointExternal struct {
	r *StripeWebhookEndpointReconciler
	*pass[*billingv1alpha1.StripeWebhookEndpoint]
	secret *corev1.Secret
	cur    *stripe.WebhookEndpoint
	// reason is why the endpoint must be replaced ("" when it need not).
	reason string
	// params is the update Observe found needed; overlapOver tells that
	// the last rotation's overlap has ended (the previous endpoint goes).
	params      stripe.WebhookEndpointParams
	updates     bool
	overlapOver bool
	// next is how soon the next pass is due (the overlap's end).
	next time.Duration
	// kept is the replaced endpoint kept for the overlap ("" when none).
	kept string
}

// Observe reads the Secret and the endpoint, and decides whether the
// endpoint must be replaced (created anew), updated, or its last rotation's
// overlap ended.
func (x *webhookEndpointExternal) Observe(ctx context.Context) (observation, error) {
	obj, r := x.obj, x.r
	if obj.Namespace != r.Namespace {
		return observation{}, newSpecError(billingv1alpha1.ReasonInvalidSpec, "StripeWebhookEndpoints are managed only in the operator's namespace %s, where the webhook Secret lives.", r.Namespace)
	}
	secret, err := r.secret(ctx, obj)
	if err != nil {
		return observation{}, err
	}
	x.secret = secret
	st := &obj.Status
	if st.EndpointID != "" && (x.cur == nil || x.cur.ID != st.EndpointID) {
		x.cur, err = readListed(ctx, x.pass, webhookEndpointListing, st.EndpointID, r.Stripe.GetWebhookEndpoint)
		if stripe.ClassOf(err) == stripe.ClassNotFound {
			x.cur, err = nil, nil // deleted in Stripe: replace it
		}
		if err != nil {
			return observation{}, err
		}
	}
	if x.cur != nil {
		x.guard.observed(x.cur.ID, x.cur.Metadata)
	}
	rotate := obj.Annotations[billingv1alpha1.AnnotationRotateSecret]
	x.reason = ""
	switch {
	case x.cur == nil && st.EndpointID == "":
		x.reason = "create"
	case x.cur == nil:
		x.reason = "the endpoint was deleted in Stripe"
	case len(secret.Data[obj.Name+secretKeyCurrentSuffix]) == 0:
		x.reason = "its signing secret is missing from the Secret"
	case x.cur.APIVersion != obj.Spec.APIVersion:
		x.reason = fmt.Sprintf("its API version %s differs from %s (Stripe sets it only on create)", orDefault(x.cur.APIVersion), obj.Spec.APIVersion)
	case rotate != "" && rotate != st.RotatedFor:
		x.reason = reasonRotationRequested
	}
	switch {
	case x.reason == "create":
		return observation{}, nil
	case x.reason != "":
		// Fixed at create (the API version, the secret): the core replaces
		// it (Replacement). A requested rotation is bookkeeping, not drift.
		return observation{bound: true, replace: true, diff: []string{"endpoint (" + x.reason + ")"}, bookkeeping: x.reason == reasonRotationRequested}, nil
	}
	var diff []string
	if x.params, x.updates = r.updateParams(obj, x.cur); x.updates {
		diff = append(diff, "url, description, enabled events or enabled")
	}
	drift := len(diff) > 0
	x.overlapOver, x.next = false, 0
	if st.PreviousEndpointID != "" {
		if st.OverlapEnd != nil && r.now().Before(st.OverlapEnd.Time) {
			x.next = st.OverlapEnd.Sub(r.now()) + time.Second
		} else {
			x.overlapOver = true
			diff = append(diff, "previous endpoint "+st.PreviousEndpointID+" (its overlap ended)")
		}
	}
	// The end of an overlap is bookkeeping, never a correction.
	return observation{bound: true, diff: diff, bookkeeping: !drift}, nil
}

// reasonRotationRequested is the replacement reason of a rotation asked
// for with the rotate-secret annotation.
const reasonRotationRequested = "rotation requested"

// Creation creates a new endpoint from the spec. Stripe shows an endpoint's
// signing secret only in the answer to its create, so an existing endpoint
// cannot be adopted; a create whose answer was lost is retried under the
// same intent, whose replay carries that secret (see
// stripe.Client.CreateWebhookEndpoint).
func (x *webhookEndpointExternal) Creation() creation {
	return creation{what: "webhook endpoint", externalCreate: externalCreate{
		find: func(context.Context) (string, error) { return "", nil },
		create: func(ctx context.Context, intent string) (string, error) {
			id, err := x.createEndpoint(ctx, intent)
			if err != nil {
				return "", err
			}
			// Endpoints of this resource a crash left behind go.
			return id, x.removeOthers(ctx, id)
		},
		record: x.recordEndpoint,
	}}
}

// Replacement replaces the endpoint through the core (rotation, an API
// version change, a secret missing from the Secret, an endpoint deleted in
// Stripe): Stripe's API has no call to roll an endpoint's secret, so a
// rotation is a replacement. The new endpoint's secret goes into the
// Secret before anything records it; the old endpoint and its secret stay
// until the overlap ends (both deliver each event meanwhile: the same
// event ID twice, which the webhook server applies once); any other
// endpoint of this resource (left by a crash, or an overlap cut short by
// another rotation) is deleted.
func (x *webhookEndpointExternal) Replacement() replacement {
	return replacement{what: "webhook endpoint", old: x.obj.Status.EndpointID, note: x.reason, intent: true,
		create: x.createEndpoint, record: x.recordEndpoint,
		retire: func(ctx context.Context, _, id string) error { return x.removeOthers(ctx, id) }}
}

// createEndpoint creates an endpoint from the spec and puts its signing
// secret into the Secret (the previous one kept for the overlap when an
// endpoint is replaced and the overlap is not zero).
func (x *webhookEndpointExternal) createEndpoint(ctx context.Context, intent string) (string, error) {
	obj, r, cur := x.obj, x.r, x.cur
	created, err := x.writes.CreateWebhookEndpoint(ctx, x.owner, intent, stripe.WebhookEndpointParams{
		URL: obj.Spec.URL, Description: obj.Spec.Description, APIVersion: obj.Spec.APIVersion, EnabledEvents: sortedCopy(obj.Spec.EnabledEvents),
	})
	if err != nil {
		return "", err
	}
	if created.Secret == "" {
		return "", errors.New("stripe returned no signing secret for the new webhook endpoint")
	}
	x.kept = ""
	if cur != nil && cur.ID != created.ID && obj.Spec.SecretOverlap.Duration > 0 {
		x.kept = cur.ID
	}
	if err := r.writeSecret(ctx, x.secret, func(d map[string][]byte) {
		if x.kept != "" {
			d[obj.Name+secretKeyPreviousSuffix] = d[obj.Name+secretKeyCurrentSuffix]
		} else {
			delete(d, obj.Name+secretKeyPreviousSuffix)
		}
		d[obj.Name+secretKeyCurrentSuffix] = []byte(created.Secret)
	}); err != nil {
		return "", err
	}
	return created.ID, nil
}

// recordEndpoint records a new endpoint in status: the rotation, and the
// endpoint kept for the overlap.
func (x *webhookEndpointExternal) recordEndpoint(id string) {
	obj, st := x.obj, &x.obj.Status
	now := metav1.NewTime(x.r.now().UTC().Truncate(time.Second))
	if st.EndpointID != "" && st.EndpointID != id {
		st.LastRotation = &now
		x.event(false, "SecretRotated", fmt.Sprintf("Replaced webhook endpoint %s by %s: %s.", st.EndpointID, id, x.reason))
	}
	st.PreviousEndpointID, st.OverlapEnd = "", nil
	if x.kept != "" {
		end := metav1.NewTime(now.Add(obj.Spec.SecretOverlap.Duration))
		st.PreviousEndpointID, st.OverlapEnd = x.kept, &end
	}
	if rotate := obj.Annotations[billingv1alpha1.AnnotationRotateSecret]; rotate != "" {
		st.RotatedFor = rotate
	}
	st.EndpointID = id
	x.cur = nil // read again by the next Observe
}

// removeOthers deletes the endpoints of this resource other than id and
// the one kept for the overlap.
func (x *webhookEndpointExternal) removeOthers(ctx context.Context, id string) error {
	keep := map[string]bool{id: true}
	if x.kept != "" {
		keep[x.kept] = true
	}
	all, err := x.r.Stripe.ListWebhookEndpointsByOwner(ctx, x.owner)
	if err != nil {
		return err
	}
	for _, w := range all {
		// Listed by this resource's UID; deleted only when its identity
		// confirms it is this resource's.
		if !keep[w.ID] && x.guard.bindFound(x.owner, w.ID, w.Metadata) {
			if err := x.writes.DeleteWebhookEndpoint(ctx, x.owner, w.ID); err != nil && stripe.ClassOf(err) != stripe.ClassNotFound {
				return err
			}
		}
	}
	return nil
}

// Update applies the spec's URL, description and events, and ends the last
// rotation's overlap: the previous endpoint and its secret go.
func (x *webhookEndpointExternal) Update(ctx context.Context) error {
	obj, r := x.obj, x.r
	st := &obj.Status
	if x.updates {
		cur, err := x.writes.UpdateWebhookEndpoint(ctx, x.owner, x.cur.ID, x.params)
		if err != nil {
			return err
		}
		x.cur = cur
	}
	if x.overlapOver {
		if err := x.writes.DeleteWebhookEndpoint(ctx, x.owner, st.PreviousEndpointID); err != nil && stripe.ClassOf(err) != stripe.ClassNotFound {
			return err
		}
		if err := r.writeSecret(ctx, x.secret, func(d map[string][]byte) { delete(d, obj.Name+secretKeyPreviousSuffix) }); err != nil {
			return err
		}
		x.event(false, "OverlapEnded", fmt.Sprintf("Removed the previous endpoint %s and its signing secret.", st.PreviousEndpointID))
		st.PreviousEndpointID, st.OverlapEnd = "", nil
	}
	return nil
}

// Report records what Stripe holds and sets Synced and Ready.
func (x *webhookEndpointExternal) Report(context.Context, []string, bool) {
	obj, st := x.obj, &x.obj.Status
	st.URL, st.EnabledEvents, st.APIVersion, st.EndpointStatus = x.cur.URL, x.cur.EnabledEvents, orDefault(x.cur.APIVersion), x.cur.Status
	if rotate := obj.Annotations[billingv1alpha1.AnnotationRotateSecret]; rotate != "" {
		st.RotatedFor = rotate
	}
	markSynced(obj)
	markReady(obj, fmt.Sprintf("Webhook endpoint %s sends %d event types in API version %s to the URL; its signing secret is in Secret %s.",
		st.EndpointID, len(st.EnabledEvents), st.APIVersion, obj.Spec.SecretRef.Name))
}

// nextPass is how soon the next pass is due: the overlap's end.
func (x *webhookEndpointExternal) nextPass() time.Duration { return x.next }

func orDefault(v string) string {
	if v == "" {
		return "account default"
	}
	return v
}

// updateParams returns the update that makes cur match the spec.
func (r *StripeWebhookEndpointReconciler) updateParams(obj *billingv1alpha1.StripeWebhookEndpoint, cur *stripe.WebhookEndpoint) (stripe.WebhookEndpointParams, bool) {
	want := sortedCopy(obj.Spec.EnabledEvents)
	have := sortedCopy(cur.EnabledEvents)
	enabled := false
	p := stripe.WebhookEndpointParams{URL: obj.Spec.URL, Description: obj.Spec.Description, EnabledEvents: want, Disabled: &enabled}
	return p, cur.URL != obj.Spec.URL || cur.Description != obj.Spec.Description || !slices.Equal(want, have) || cur.Status != "enabled"
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// secret reads the webhook Secret, which must exist.
func (r *StripeWebhookEndpointReconciler) secret(ctx context.Context, obj *billingv1alpha1.StripeWebhookEndpoint) (*corev1.Secret, error) {
	sec := &corev1.Secret{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: obj.Spec.SecretRef.Name}, sec)
	if apierrors.IsNotFound(err) {
		// Creating it is a person's step that no watch reports: look again
		// soon rather than at the resync.
		return nil, newWaitError(billingv1alpha1.ReasonReferenceNotFound, waitRecheck,
			"Secret %s/%s does not exist; create it (it may be empty) so the operator can write the signing secret into it.", obj.Namespace, obj.Spec.SecretRef.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", obj.Spec.SecretRef.Name, err)
	}
	return sec, nil
}

// writeSecret applies mutate to the Secret's data, rebuilds
// webhookSigningSecrets from every endpoint's keys and the extra secrets,
// and updates the Secret (optimistic lock) when something changed.
func (r *StripeWebhookEndpointReconciler) writeSecret(ctx context.Context, sec *corev1.Secret, mutate func(map[string][]byte)) error {
	before := sec.DeepCopy()
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	mutate(sec.Data)
	sec.Data[secretKeyAggregate] = aggregateSecrets(sec.Data)
	if string(before.Data[secretKeyAggregate]) == string(sec.Data[secretKeyAggregate]) && len(before.Data) == len(sec.Data) && sameData(before.Data, sec.Data) {
		return nil
	}
	if err := r.Update(ctx, sec); err != nil {
		return fmt.Errorf("writing the signing secret into Secret %s: %w", sec.Name, err)
	}
	return nil
}

func sameData(a, b map[string][]byte) bool {
	for k, v := range a {
		if string(b[k]) != string(v) {
			return false
		}
	}
	return true
}

// aggregateSecrets is the webhookSigningSecrets value: every endpoint's
// current and previous secret and the extra ones, one per line, sorted.
func aggregateSecrets(d map[string][]byte) []byte {
	set := map[string]bool{}
	for k, v := range d {
		switch {
		case strings.HasSuffix(k, secretKeyCurrentSuffix), strings.HasSuffix(k, secretKeyPreviousSuffix), k == secretKeyExtra:
			for _, line := range strings.Split(string(v), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					set[line] = true
				}
			}
		}
	}
	lines := make([]string, 0, len(set))
	for l := range set {
		lines = append(lines, l)
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return nil
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// Delete applies the deletion policy (Delete by default, Disable, Orphan)
// to the endpoint and the one kept for an overlap, and removes their
// secrets from the Secret.
func (x *webhookEndpointExternal) Delete(ctx context.Context) (bool, time.Duration, error) {
	obj, r := x.obj, x.r
	ids := []string{obj.Status.EndpointID, obj.Status.PreviousEndpointID}
	switch obj.Spec.DeletionPolicy {
	case billingv1alpha1.WebhookEndpointDeletionPolicyOrphan:
		return true, 0, nil
	case billingv1alpha1.WebhookEndpointDeletionPolicyDisable:
		disabled := true
		for _, id := range ids {
			if id == "" {
				continue
			}
			if _, err := x.writes.UpdateWebhookEndpoint(ctx, x.owner, id, stripe.WebhookEndpointParams{URL: obj.Status.URL, Description: obj.Spec.Description,
				EnabledEvents: obj.Status.EnabledEvents, Disabled: &disabled}); err != nil && stripe.ClassOf(err) != stripe.ClassNotFound {
				return false, 0, err
			}
		}
	default:
		for _, id := range ids {
			if id == "" {
				continue
			}
			if err := x.writes.DeleteWebhookEndpoint(ctx, x.owner, id); err != nil && stripe.ClassOf(err) != stripe.ClassNotFound {
				return false, 0, err
			}
		}
	}
	if sec, err := r.secret(ctx, obj); err == nil {
		if err := r.writeSecret(ctx, sec, func(d map[string][]byte) {
			delete(d, obj.Name+secretKeyCurrentSuffix)
			delete(d, obj.Name+secretKeyPreviousSuffix)
		}); err != nil {
			return false, 0, err
		}
	}
	return true, 0, nil
}
