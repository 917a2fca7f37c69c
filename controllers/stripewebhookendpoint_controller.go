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
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

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
}

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripewebhookendpoints,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripewebhookendpoints/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripewebhookendpoints/finalizers,verbs=update

// SetupWithManager registers the controller.
func (r *StripeWebhookEndpointReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("stripewebhookendpoint").
		For(&billingv1alpha1.StripeWebhookEndpoint{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WithOptions(controllerOptions(r.SkipNameValidation, 1)).
		Complete(r)
}

func (r *StripeWebhookEndpointReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile converges one StripeWebhookEndpoint.
func (r *StripeWebhookEndpointReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := &billingv1alpha1.StripeWebhookEndpoint{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("stripeWebhookEndpoint", klog.KObj(obj)))
	orig := obj.Status.DeepCopy()
	skip := false
	persist := func(ctx context.Context) error {
		if err := patchStatus(ctx, r.Client, obj, orig,
			func(o client.Object) any { return &o.(*billingv1alpha1.StripeWebhookEndpoint).Status },
			func(o client.Object, st any) {
				o.(*billingv1alpha1.StripeWebhookEndpoint).Status = *st.(*billingv1alpha1.StripeWebhookEndpointStatus).DeepCopy()
			}); err != nil {
			return err
		}
		orig = obj.Status.DeepCopy()
		return nil
	}
	defer func() { result, retErr = finishPass(ctx, persist, skip, result, retErr) }()
	resync := resyncOr(r.ResyncPeriod)

	if !obj.DeletionTimestamp.IsZero() {
		err := r.delete(ctx, obj)
		skip = true
		if err != nil {
			res, err, _ := failPass(ctx, obj, "delete", err, resync)
			skip = false
			return res, err
		}
		return ctrl.Result{}, nil
	}
	if obj.Namespace != r.Namespace {
		markStalled(obj, billingv1alpha1.ReasonInvalidSpec, fmt.Sprintf("StripeWebhookEndpoints are managed only in the operator's namespace %s, where the webhook Secret lives.", r.Namespace))
		return ctrl.Result{}, nil
	}
	if !controllerutil.ContainsFinalizer(obj, billingv1alpha1.Finalizer) {
		if err := r.patchKeepStatus(ctx, obj, func() { controllerutil.AddFinalizer(obj, billingv1alpha1.Finalizer) }); err != nil {
			res, err, s := failPass(ctx, obj, "finalizer", err, resync)
			skip = s
			return res, err
		}
	}
	after, err := r.converge(ctx, obj)
	if err != nil {
		res, err, s := failPass(ctx, obj, "converge", err, resync)
		skip = s
		return res, err
	}
	markSynced(obj)
	markReady(obj, fmt.Sprintf("Webhook endpoint %s sends %d event types in API version %s to the URL; its signing secret is in Secret %s.",
		obj.Status.EndpointID, len(obj.Status.EnabledEvents), obj.Status.APIVersion, obj.Spec.SecretRef.Name))
	if after > 0 && after < resync {
		return ctrl.Result{RequeueAfter: after}, nil
	}
	return ctrl.Result{RequeueAfter: jitter(resync)}, nil
}

// patchKeepStatus persists metadata without losing the in-memory status.
func (r *StripeWebhookEndpointReconciler) patchKeepStatus(ctx context.Context, obj *billingv1alpha1.StripeWebhookEndpoint, mutate func()) error {
	want := obj.Status.DeepCopy()
	if err := patchMeta(ctx, r.Client, obj, mutate); err != nil {
		return err
	}
	obj.Status = *want
	return nil
}

// converge creates, replaces or updates the endpoint and keeps the Secret
// in step. It returns how soon the next pass is due (overlap end).
func (r *StripeWebhookEndpointReconciler) converge(ctx context.Context, obj *billingv1alpha1.StripeWebhookEndpoint) (time.Duration, error) {
	owner := ownerOf(obj, r.Instance)
	secret, err := r.secret(ctx, obj)
	if err != nil {
		return 0, err
	}
	st := &obj.Status
	var cur *stripe.WebhookEndpoint
	if st.EndpointID != "" {
		cur, err = r.Stripe.GetWebhookEndpoint(ctx, st.EndpointID)
		if stripe.ClassOf(err) == stripe.ClassNotFound {
			cur, err = nil, nil // deleted in Stripe: replace it
		}
		if err != nil {
			return 0, err
		}
	}
	rotate := obj.Annotations[billingv1alpha1.AnnotationRotateSecret]
	reason := ""
	switch {
	case cur == nil && st.EndpointID == "":
		reason = "create"
	case cur == nil:
		reason = "the endpoint was deleted in Stripe"
	case len(secret.Data[obj.Name+secretKeyCurrentSuffix]) == 0:
		reason = "its signing secret is missing from the Secret"
	case cur.APIVersion != obj.Spec.APIVersion:
		reason = fmt.Sprintf("its API version %s differs from %s (Stripe sets it only on create)", orDefault(cur.APIVersion), obj.Spec.APIVersion)
	case rotate != "" && rotate != st.RotatedFor:
		reason = "rotation requested"
	}
	if reason != "" {
		if err := r.replace(ctx, obj, secret, cur, reason); err != nil {
			return 0, err
		}
		cur, err = r.Stripe.GetWebhookEndpoint(ctx, st.EndpointID)
		if err != nil {
			return 0, err
		}
	} else if params, differs := r.updateParams(obj, cur); differs {
		if cur, err = r.Stripe.UpdateWebhookEndpoint(ctx, owner, cur.ID, params); err != nil {
			return 0, err
		}
	}
	st.URL, st.EnabledEvents, st.APIVersion, st.EndpointStatus = cur.URL, cur.EnabledEvents, orDefault(cur.APIVersion), cur.Status
	if rotate != "" {
		st.RotatedFor = rotate
	}

	// The overlap of the last rotation.
	if st.PreviousEndpointID != "" {
		if st.OverlapEnd != nil && r.now().Before(st.OverlapEnd.Time) {
			return st.OverlapEnd.Sub(r.now()) + time.Second, nil
		}
		if err := r.Stripe.DeleteWebhookEndpoint(ctx, owner, st.PreviousEndpointID); err != nil && stripe.ClassOf(err) != stripe.ClassNotFound {
			return 0, err
		}
		if err := r.writeSecret(ctx, secret, func(d map[string][]byte) { delete(d, obj.Name+secretKeyPreviousSuffix) }); err != nil {
			return 0, err
		}
		emit(r.Recorder, obj, false, "OverlapEnded", fmt.Sprintf("Removed the previous endpoint %s and its signing secret.", st.PreviousEndpointID))
		st.PreviousEndpointID, st.OverlapEnd = "", nil
	}
	return 0, nil
}

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

// replace creates a new endpoint from the spec, puts its secret into the
// Secret before anything else records it, keeps the old endpoint and secret
// until the overlap ends, and deletes any other endpoint of this resource
// (left by a crash, or an overlap cut short by another rotation).
//
// Stripe's API has no call to roll an endpoint's secret, so a rotation is a
// replacement: during the overlap both endpoints deliver each event (the
// same event ID twice, which the webhook server applies once).
func (r *StripeWebhookEndpointReconciler) replace(ctx context.Context, obj *billingv1alpha1.StripeWebhookEndpoint, secret *corev1.Secret, cur *stripe.WebhookEndpoint, reason string) error {
	owner := ownerOf(obj, r.Instance)
	st := &obj.Status
	intent := obj.Annotations[billingv1alpha1.AnnotationCreatePending]
	if intent == "" {
		intent = stripe.NewIntent()
		if err := r.patchKeepStatus(ctx, obj, func() {
			if obj.Annotations == nil {
				obj.Annotations = map[string]string{}
			}
			obj.Annotations[billingv1alpha1.AnnotationCreatePending] = intent
		}); err != nil {
			return err
		}
	}
	created, err := r.Stripe.CreateWebhookEndpoint(ctx, owner, intent, stripe.WebhookEndpointParams{
		URL: obj.Spec.URL, Description: obj.Spec.Description, APIVersion: obj.Spec.APIVersion, EnabledEvents: sortedCopy(obj.Spec.EnabledEvents),
	})
	if err != nil {
		return err
	}
	if created.Secret == "" {
		return errors.New("stripe returned no signing secret for the new webhook endpoint")
	}
	overlap := obj.Spec.SecretOverlap.Duration
	keepOld := cur != nil && cur.ID != created.ID && overlap > 0
	if err := r.writeSecret(ctx, secret, func(d map[string][]byte) {
		if keepOld {
			d[obj.Name+secretKeyPreviousSuffix] = d[obj.Name+secretKeyCurrentSuffix]
		} else {
			delete(d, obj.Name+secretKeyPreviousSuffix)
		}
		d[obj.Name+secretKeyCurrentSuffix] = []byte(created.Secret)
	}); err != nil {
		return err
	}
	// Endpoints of this resource other than the new one and the one kept
	// for the overlap go.
	keep := map[string]bool{created.ID: true}
	if keepOld {
		keep[cur.ID] = true
	}
	all, err := r.Stripe.ListWebhookEndpointsByOwner(ctx, owner)
	if err != nil {
		return err
	}
	for _, w := range all {
		if !keep[w.ID] {
			if err := r.Stripe.DeleteWebhookEndpoint(ctx, owner, w.ID); err != nil && stripe.ClassOf(err) != stripe.ClassNotFound {
				return err
			}
		}
	}
	now := metav1.NewTime(r.now().UTC().Truncate(time.Second))
	if st.EndpointID != "" {
		st.LastRotation = &now
		emit(r.Recorder, obj, false, "SecretRotated", fmt.Sprintf("Replaced webhook endpoint %s by %s: %s.", st.EndpointID, created.ID, reason))
	} else {
		emit(r.Recorder, obj, false, "Created", fmt.Sprintf("Created webhook endpoint %s.", created.ID))
	}
	st.PreviousEndpointID, st.OverlapEnd = "", nil
	if keepOld {
		end := metav1.NewTime(now.Add(overlap))
		st.PreviousEndpointID, st.OverlapEnd = cur.ID, &end
	}
	st.EndpointID = created.ID
	// The status is written before the intent is dropped: a crash in
	// between leaves an intent whose replay returns this same endpoint.
	if err := patchStatus(ctx, r.Client, obj, &billingv1alpha1.StripeWebhookEndpointStatus{},
		func(o client.Object) any { return &o.(*billingv1alpha1.StripeWebhookEndpoint).Status },
		func(o client.Object, s any) {
			o.(*billingv1alpha1.StripeWebhookEndpoint).Status = *s.(*billingv1alpha1.StripeWebhookEndpointStatus).DeepCopy()
		}); err != nil {
		return err
	}
	return r.patchKeepStatus(ctx, obj, func() { delete(obj.Annotations, billingv1alpha1.AnnotationCreatePending) })
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

// delete applies the deletion policy, removes the endpoint's secrets from
// the Secret and lets the resource go.
func (r *StripeWebhookEndpointReconciler) delete(ctx context.Context, obj *billingv1alpha1.StripeWebhookEndpoint) error {
	if !controllerutil.ContainsFinalizer(obj, billingv1alpha1.Finalizer) {
		return nil
	}
	owner := ownerOf(obj, r.Instance)
	ids := []string{obj.Status.EndpointID, obj.Status.PreviousEndpointID}
	switch obj.Spec.DeletionPolicy {
	case billingv1alpha1.WebhookEndpointDeletionPolicyOrphan:
	case billingv1alpha1.WebhookEndpointDeletionPolicyDisable:
		disabled := true
		for _, id := range ids {
			if id == "" {
				continue
			}
			if _, err := r.Stripe.UpdateWebhookEndpoint(ctx, owner, id, stripe.WebhookEndpointParams{URL: obj.Status.URL, Description: obj.Spec.Description,
				EnabledEvents: obj.Status.EnabledEvents, Disabled: &disabled}); err != nil && stripe.ClassOf(err) != stripe.ClassNotFound {
				return err
			}
		}
	default:
		for _, id := range ids {
			if id == "" {
				continue
			}
			if err := r.Stripe.DeleteWebhookEndpoint(ctx, owner, id); err != nil && stripe.ClassOf(err) != stripe.ClassNotFound {
				return err
			}
		}
	}
	if obj.Spec.DeletionPolicy != billingv1alpha1.WebhookEndpointDeletionPolicyOrphan {
		if sec, err := r.secret(ctx, obj); err == nil {
			if err := r.writeSecret(ctx, sec, func(d map[string][]byte) {
				delete(d, obj.Name+secretKeyCurrentSuffix)
				delete(d, obj.Name+secretKeyPreviousSuffix)
			}); err != nil {
				return err
			}
		}
	}
	return patchMeta(ctx, r.Client, obj, func() { controllerutil.RemoveFinalizer(obj, billingv1alpha1.Finalizer) })
}
