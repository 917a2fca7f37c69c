package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// inUseRecheck is how often a customer waiting for its subscriptions to go
// looks again (the StripeSubscription watch normally wakes it earlier).
const inUseRecheck = 15 * time.Second

// customerExternal is the StripeCustomer kind's external client for one
// pass: the Stripe customer bound through status.customerID.
type customerExternal struct {
	r *StripeCustomerReconciler
	*pass[*billingv1alpha1.StripeCustomer]
	// cus is the Stripe customer as last read or written.
	cus *stripe.Customer
	// params and attach are what Observe found to differ.
	params stripe.CustomerParams
	attach bool
	// pmRecord is status.defaultPaymentMethod when nothing is to attach
	// (Report writes it).
	pmRecord *billingv1alpha1.PaymentMethodStatus
}

// Observe reads the bound customer and compares it with the spec.
func (x *customerExternal) Observe(ctx context.Context) (observation, error) {
	st := &x.obj.Status
	if st.CustomerID == "" {
		return observation{}, nil
	}
	if x.cus == nil || x.cus.ID != st.CustomerID {
		cus, err := readListed(ctx, x.pass, customerListing, st.CustomerID, x.r.Stripe.GetCustomer)
		if stripe.IsNotFound(err) || (err == nil && cus.Deleted) {
			return observation{}, newSpecError(billingv1alpha1.ReasonNotFound, "Stripe customer %s does not exist or was deleted in Stripe; it is not recreated automatically.", st.CustomerID)
		}
		if err != nil {
			return observation{}, err
		}
		x.cus = cus
	}
	x.guard.observed(x.cus.ID, x.cus.Metadata)
	params, fields := customerDiff(x.obj, x.owner, x.cus)
	x.params = params
	x.attach, x.pmRecord = paymentMethodWork(x.obj, x.cus)
	return observation{bound: true, diff: fields, bookkeeping: onlyBackfilled(fields)}, nil
}

// Creation adopts spec.customerID, or creates the customer once.
func (x *customerExternal) Creation() creation {
	spec := &x.obj.Spec
	params := customerCreateParams(spec)
	find, adopt := lookupSteps(x.owner, x.obj.CreationTimestamp.Add(-time.Hour), x.r.Stripe.FindCustomerByOwner, x.r.Stripe.SearchCustomersByIdentity,
		func(c *stripe.Customer) (string, int64, map[string]string) { return c.ID, c.Created, c.Metadata })
	return creation{
		what: "customer", specID: spec.CustomerID, specField: "spec.customerID",
		read: func(ctx context.Context, id string) (map[string]string, error) {
			cus, err := x.r.Stripe.GetCustomer(ctx, id)
			if stripe.IsNotFound(err) || (err == nil && cus.Deleted) {
				return nil, newSpecError(billingv1alpha1.ReasonNotFound, "Stripe customer %s named by spec.customerID does not exist or was deleted.", id)
			}
			if err != nil {
				return nil, err
			}
			x.cus = cus
			return cus.Metadata, nil
		},
		ready: func() error {
			if spec.TestClock != "" && liveMode(x.r.Stripe) {
				return newSpecError(billingv1alpha1.ReasonInvalidSpec, "spec.testClock is for Stripe test mode only; the operator runs with a live-mode key.")
			}
			return nil
		},
		externalCreate: externalCreate{
			find:  find,
			adopt: adopt,
			create: func(ctx context.Context, intent string) (string, error) {
				c, err := x.writes.CreateCustomer(ctx, x.owner, intent, params)
				if err != nil {
					return "", err
				}
				x.cus = c
				return c.ID, nil
			},
			record: func(id string) { x.obj.Status.CustomerID = id },
		},
	}
}

// customerCreateParams are the create call's fields (the default payment
// method is attached and set by phaseUpdate).
func customerCreateParams(spec *billingv1alpha1.StripeCustomerSpec) stripe.CustomerParams {
	p := stripe.CustomerParams{Metadata: spec.Metadata.Map()}
	if spec.Email != "" {
		p.Email = &spec.Email
	}
	if spec.Name != "" {
		p.Name = &spec.Name
	}
	if spec.Description != "" {
		p.Description = &spec.Description
	}
	p.TestClock = spec.TestClock
	return p
}

// customerDiff compares Stripe with the spec. Optional fields left empty in
// the spec are not managed (an adopted customer keeps its email); metadata
// is managed as a whole, including the operator's link-back keys.
func customerDiff(obj *billingv1alpha1.StripeCustomer, owner stripe.Owner, cus *stripe.Customer) (stripe.CustomerParams, []string) {
	spec := &obj.Spec
	var p stripe.CustomerParams
	var fields []string
	set := func(field, want, got string, dst **string) {
		if want != "" && want != got {
			w := want
			*dst = &w
			fields = append(fields, field)
		}
	}
	set("email", spec.Email, cus.Email, &p.Email)
	set("name", spec.Name, cus.Name, &p.Name)
	set("description", spec.Description, cus.Description, &p.Description)
	if attach, _ := paymentMethodWork(obj, cus); attach {
		fields = append(fields, "defaultPaymentMethod")
	}
	if md := metadataDiff(desiredMetadata(obj, owner, spec.Metadata.Map(), cus.Metadata), cus.Metadata); md != nil {
		p.Metadata = md
		fields = append(fields, metadataField("metadata", md, cus.Metadata))
	}
	return p, fields
}

// isTestPaymentMethod reports whether pm is one of Stripe's test
// PaymentMethods (pm_card_visa, ...), which make a new PaymentMethod each
// time they are attached.
func isTestPaymentMethod(pm string) bool { return strings.HasPrefix(pm, "pm_card_") }

// paymentMethodWork decides whether spec.defaultPaymentMethod must be
// attached and made the default, judged against the record of what the
// operator last set (status.defaultPaymentMethod): only a changed spec, or a
// default someone changed in Stripe, attaches again. record is the status
// value to keep when nothing needs doing (nil: none).
func paymentMethodWork(obj *billingv1alpha1.StripeCustomer, cus *stripe.Customer) (attach bool, record *billingv1alpha1.PaymentMethodStatus) {
	want := obj.Spec.DefaultPaymentMethod
	if want == "" {
		return false, nil
	}
	rec := obj.Status.DefaultPaymentMethod
	switch {
	case rec != nil && rec.Source == want && rec.ID != "" && cus.DefaultPaymentMethod == rec.ID:
		return false, rec
	case !isTestPaymentMethod(want) && cus.DefaultPaymentMethod == want:
		// Already the default (adopted customer, or recorded before).
		return false, &billingv1alpha1.PaymentMethodStatus{ID: want, Source: want}
	}
	return true, nil
}

// Update writes what differs. A new default payment method is attached
// first and recorded only as Stripe answered this very update.
func (x *customerExternal) Update(ctx context.Context) error {
	want := x.obj.Spec.DefaultPaymentMethod
	params := x.params
	var attached string
	if x.attach {
		id, err := x.writes.AttachPaymentMethod(ctx, x.owner, want, x.cus.ID)
		if err != nil {
			if stripe.ClassOf(err) == stripe.ClassTerminal || stripe.IsNotFound(err) {
				return newSpecError(billingv1alpha1.ReasonInvalidSpec, "Stripe refused to attach spec.defaultPaymentMethod %s to customer %s: %s", want, x.cus.ID, stripeMessage(err))
			}
			return err
		}
		attached = id
		params.DefaultPaymentMethod = &attached
	}
	cus, err := x.writes.UpdateCustomer(ctx, x.owner, x.cus.ID, params)
	if err != nil {
		return err
	}
	x.cus = cus
	if x.attach {
		if cus.DefaultPaymentMethod != attached {
			return fmt.Errorf("stripe customer %s did not take PaymentMethod %s as its default", cus.ID, attached)
		}
		x.obj.Status.DefaultPaymentMethod = &billingv1alpha1.PaymentMethodStatus{ID: attached, Source: want}
	}
	return nil
}

// Report records the default payment method found in place and sets
// Synced and Ready.
func (x *customerExternal) Report(_ context.Context, drift []string, _ bool) {
	if !x.attach {
		x.obj.Status.DefaultPaymentMethod = x.pmRecord
	}
	markSynced(x.obj)
	if len(drift) > 0 {
		markNotReady(x.obj, billingv1alpha1.ReasonDrifted,
			fmt.Sprintf("Stripe customer %s differs from the spec in: %s (Observe mode reports, never writes).", x.cus.ID, strings.Join(drift, ", ")))
		return
	}
	markReady(x.obj, fmt.Sprintf("Stripe customer %s matches the spec.", x.cus.ID))
}

// Delete applies the deletion policy. Delete deletes the Stripe customer,
// but not while a StripeSubscription still references it, and never while
// the customer has a subscription that has not ended (deleting a customer
// cancels all of them at once, including ones no resource manages). Orphan
// marks the customer as left behind.
func (x *customerExternal) Delete(ctx context.Context) (bool, time.Duration, error) {
	id := x.obj.Status.CustomerID
	switch {
	case id != "" && x.obj.Spec.DeletionPolicy == billingv1alpha1.CustomerDeletionPolicyDelete:
		users, err := x.r.subscriptionsUsing(ctx, x.obj)
		if err != nil {
			return false, 0, err
		}
		if len(users) > 0 {
			markReconciling(x.obj, billingv1alpha1.ReasonInUse, fmt.Sprintf(
				"Waiting for StripeSubscription %s to be deleted before deleting Stripe customer %s.", strings.Join(users, ", "), id))
			return false, inUseRecheck, nil
		}
		live, err := x.r.liveSubscriptions(ctx, id)
		if err != nil {
			return false, 0, err
		}
		if len(live) > 0 {
			markStalled(x.obj, billingv1alpha1.ReasonInUse, fmt.Sprintf(
				"deletionPolicy Delete would cancel the Stripe subscriptions of customer %s that have not ended: %s. Cancel them first, or set deletionPolicy: Orphan.", id, strings.Join(live, ", ")))
			return false, x.core.resync, nil
		}
		if err := x.writes.DeleteCustomer(ctx, x.owner, id); err != nil && !stripe.IsNotFound(err) {
			return false, 0, err
		}
		x.event(false, "Deleted", fmt.Sprintf("Deleted Stripe customer %s.", id))
	case x.obj.Spec.DeletionPolicy == billingv1alpha1.CustomerDeletionPolicyOrphan:
		if err := x.markOrphaned(ctx); err != nil {
			return false, 0, err
		}
	}
	return true, 0, nil
}

// subscriptionsUsing lists the StripeSubscriptions in obj's namespace that
// reference it.
func (r *StripeCustomerReconciler) subscriptionsUsing(ctx context.Context, obj *billingv1alpha1.StripeCustomer) ([]string, error) {
	var list billingv1alpha1.StripeSubscriptionList
	if err := r.List(ctx, &list, client.InNamespace(obj.Namespace)); err != nil {
		return nil, fmt.Errorf("listing StripeSubscriptions: %w", err)
	}
	var names []string
	for i := range list.Items {
		if ref := list.Items[i].Spec.CustomerRef; ref != nil && ref.Name == obj.Name {
			names = append(names, list.Items[i].Name)
		}
	}
	return names, nil
}

// liveMode reports whether the Stripe client runs with a live-mode key.
func liveMode(api stripe.API) bool {
	m, ok := api.(interface{ Mode() string })
	return ok && m.Mode() == "live"
}

// stripeMessage is Stripe's message of err without the operation prefix.
func stripeMessage(err error) string {
	var se *stripe.Error
	if errors.As(err, &se) && se.Message != "" {
		return se.Message
	}
	return err.Error()
}

// liveSubscriptions lists the IDs of a Stripe customer's subscriptions that
// have not ended, in a stable order.
func (r *StripeCustomerReconciler) liveSubscriptions(ctx context.Context, customerID string) ([]string, error) {
	subs, err := r.Stripe.ListCustomerSubscriptions(ctx, customerID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, sub := range subs {
		if !subscriptionEnded(sub.Status) {
			ids = append(ids, sub.ID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}
