package controllers

import (
	"context"
	"errors"
	"fmt"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/kinds"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// The write guard: the core's one rule for every Stripe write.
//
// A pass writes only to a Stripe object that is
//
//   - bound to its resource: recorded in the resource's status when the
//     pass began (BoundStripeIDs), or bound by the core during the pass (a
//     spec-named object adopted after the ownership check, one found by the
//     crash-recovery lookup under this resource's own identity, or one this
//     pass created); and
//   - owned here: its identity metadata, as read from Stripe during the
//     pass, names this resource, or it carries none and the namespace is
//     selected for adoption (adoptionPolicy.check, the same rule that
//     decides adoption).
//
// Anything else is refused before a request is sent: a spec-named ID that
// was never bound, was refused, or is owned elsewhere is never written, on
// deletion included. Kinds reach Stripe writes only through their pass's
// guardedWrites (p.writes); TestStripeWritesGoThroughTheGuard fails when
// other code in this package calls a write method of the Stripe client.

// refusedWrite is a write the guard refused. It unwraps to a spec error
// (Stalled), so an update refused this way stalls the resource with the
// reason.
type refusedWrite struct {
	what, id string
	spec     *specError
}

func (e *refusedWrite) Error() string { return e.spec.msg }
func (e *refusedWrite) Unwrap() error { return e.spec }

// ReasonNotBound: a Stripe object is not bound to this resource, so the
// operator does not write to it.
const ReasonNotBound = "NotBound"

// writeGuard records which Stripe IDs a pass may write to.
type writeGuard struct {
	// bound: IDs bound to the resource (status, or this pass's binding).
	bound map[string]bool
	// metadata read from Stripe this pass, by ID; a write's ownership check
	// uses it instead of reading the object again.
	metadata map[string]map[string]string
	// allowed: IDs whose ownership check passed this pass.
	allowed map[string]bool
	// scheduleSub: the subscription of each subscription schedule read or
	// made this pass.
	scheduleSub map[string]string
	// check is the ownership rule (adoptionPolicy.check for the resource).
	check func(ctx context.Context, what, id string, md map[string]string) error
	// read reads an object's metadata when the pass has not read it.
	read func(ctx context.Context, what, id string) (map[string]string, error)
}

func newWriteGuard(bound []string) *writeGuard {
	g := &writeGuard{bound: map[string]bool{}, metadata: map[string]map[string]string{}, allowed: map[string]bool{}, scheduleSub: map[string]string{}}
	for _, id := range bound {
		if id != "" {
			g.bound[id] = true
		}
	}
	return g
}

// bind records id as bound by the core this pass (adopted after the
// ownership check, found under this resource's identity, or created).
func (g *writeGuard) bind(id string) {
	if id != "" {
		g.bound[id] = true
	}
}

// bindFound binds an object found by a lookup under this resource's
// identity, when its metadata confirms that identity. It reports whether
// the object was bound.
func (g *writeGuard) bindFound(owner stripe.Owner, id string, md map[string]string) bool {
	if o, _ := ownershipOf(owner, md); o != ownedHere || id == "" {
		return false
	}
	g.bound[id], g.metadata[id], g.allowed[id] = true, md, true
	return true
}

// observed records an object's metadata as this pass read it from Stripe.
func (g *writeGuard) observed(id string, md map[string]string) {
	if id != "" {
		g.metadata[id] = md
	}
}

// observedSchedule records the subscription a schedule, as read from
// Stripe this pass, belongs to.
func (g *writeGuard) observedSchedule(sc *stripe.SubscriptionSchedule) {
	if sc != nil && sc.ID != "" {
		g.scheduleSub[sc.ID] = sc.SubscriptionID
	}
}

// isBound reports whether id is bound to the resource.
func (g *writeGuard) isBound(id string) bool { return g.bound[id] }

// allow returns nil when the pass may write to the Stripe object id (of the
// given description, e.g. "subscription"), a *refusedWrite when it may not,
// or the error of reading the object (a not-found among them: a write to it
// would find nothing either).
func (g *writeGuard) allow(ctx context.Context, what, id string) error {
	if id == "" {
		return &refusedWrite{what: what, spec: &specError{reason: ReasonNotBound, msg: fmt.Sprintf("No Stripe %s is bound to this resource.", what)}}
	}
	if !g.bound[id] {
		return &refusedWrite{what: what, id: id, spec: &specError{reason: ReasonNotBound,
			msg: fmt.Sprintf("Stripe %s %s is not bound to this resource (its status does not record it); the operator does not write to it.", what, id)}}
	}
	if g.allowed[id] {
		return nil
	}
	md, ok := g.metadata[id]
	if !ok {
		var err error
		if md, err = g.read(ctx, what, id); err != nil {
			return err
		}
		g.metadata[id] = md
	}
	if err := g.check(ctx, what, id, md); err != nil {
		var se *specError
		if errors.As(err, &se) {
			return &refusedWrite{what: what, id: id, spec: se}
		}
		return err // reading the namespace failed: try again later
	}
	g.allowed[id] = true
	return nil
}

// stripeBackend is the Stripe client a kind's reconciler holds: stripe.API
// for customers, plans and subscriptions, WebhookEndpoints for endpoints.
type stripeBackend struct {
	api       stripe.API
	endpoints WebhookEndpoints
}

// readMetadata reads the metadata of a Stripe object for the guard, by
// the read its type registered in the table of kinds (kinds.go).
func (b stripeBackend) readMetadata(ctx context.Context, what, id string) (map[string]string, error) {
	t, ok := stripeTypes[what]
	if !ok || t.read == nil {
		return nil, fmt.Errorf("no Stripe reader for %q", what)
	}
	return t.read(ctx, b, id)
}

// The descriptions of Stripe objects in guard checks, events and messages
// (the Stripe object types of the table of kinds).
const (
	whatCustomer        = kinds.Customer
	whatProduct         = kinds.Product
	whatPrice           = kinds.Price
	whatSubscription    = kinds.Subscription
	whatWebhookEndpoint = kinds.WebhookEndpoint
	whatCoupon          = kinds.Coupon
	whatPromotionCode   = kinds.PromotionCode
)

// guardedWrites is every Stripe write the controllers make. Each checks
// its target with the pass's guard first; a create binds what it made.
type guardedWrites struct {
	b stripeBackend
	g *writeGuard
}

func (w guardedWrites) CreateCustomer(ctx context.Context, owner stripe.Owner, intent string, p stripe.CustomerParams) (*stripe.Customer, error) {
	c, err := w.b.api.CreateCustomer(ctx, owner, intent, p)
	if err == nil {
		w.g.bindFound(owner, c.ID, c.Metadata)
	}
	return c, err
}

func (w guardedWrites) UpdateCustomer(ctx context.Context, owner stripe.Owner, id string, p stripe.CustomerParams) (*stripe.Customer, error) {
	if err := w.g.allow(ctx, whatCustomer, id); err != nil {
		return nil, err
	}
	return w.b.api.UpdateCustomer(ctx, owner, id, p)
}

func (w guardedWrites) DeleteCustomer(ctx context.Context, owner stripe.Owner, id string) error {
	if err := w.g.allow(ctx, whatCustomer, id); err != nil {
		return err
	}
	return w.b.api.DeleteCustomer(ctx, owner, id)
}

func (w guardedWrites) AttachPaymentMethod(ctx context.Context, owner stripe.Owner, paymentMethodID, customerID string) (string, error) {
	if err := w.g.allow(ctx, whatCustomer, customerID); err != nil {
		return "", err
	}
	return w.b.api.AttachPaymentMethod(ctx, owner, paymentMethodID, customerID)
}

func (w guardedWrites) CreateProduct(ctx context.Context, owner stripe.Owner, intent string, p stripe.ProductParams) (*stripe.Product, error) {
	prod, err := w.b.api.CreateProduct(ctx, owner, intent, p)
	if err == nil {
		w.g.bindFound(owner, prod.ID, prod.Metadata)
	}
	return prod, err
}

func (w guardedWrites) UpdateProduct(ctx context.Context, owner stripe.Owner, id string, p stripe.ProductParams) (*stripe.Product, error) {
	if err := w.g.allow(ctx, whatProduct, id); err != nil {
		return nil, err
	}
	return w.b.api.UpdateProduct(ctx, owner, id, p)
}

// CreatePrice adds a price to a product: a write to that product's
// catalogue, allowed only on the bound product.
func (w guardedWrites) CreatePrice(ctx context.Context, owner stripe.Owner, p stripe.PriceCreateParams) (*stripe.Price, error) {
	if err := w.g.allow(ctx, whatProduct, p.ProductID); err != nil {
		return nil, err
	}
	if err := w.lookupKeyFree(ctx, "", p.LookupKey, p.TransferLookupKey); err != nil {
		return nil, err
	}
	price, err := w.b.api.CreatePrice(ctx, owner, p)
	if err == nil {
		w.g.bindFound(owner, price.ID, price.Metadata)
	}
	return price, err
}

func (w guardedWrites) UpdatePrice(ctx context.Context, owner stripe.Owner, id string, p stripe.PriceUpdateParams) (*stripe.Price, error) {
	if err := w.g.allow(ctx, whatPrice, id); err != nil {
		return nil, err
	}
	if p.LookupKey != nil {
		if err := w.lookupKeyFree(ctx, id, *p.LookupKey, p.TransferLookupKey); err != nil {
			return nil, err
		}
	}
	return w.b.api.UpdatePrice(ctx, owner, id, p)
}

// lookupKeyFree refuses a transfer_lookup_key that would take a lookup key
// from a price this resource does not own: Stripe moves the key off the
// price that holds it (https://docs.stripe.com/api/prices/create#create_price-transfer_lookup_key),
// which is a write to that price, so the holder must pass the same rule.
func (w guardedWrites) lookupKeyFree(ctx context.Context, target, key string, transfer bool) error {
	if !transfer || key == "" {
		return nil
	}
	holder, err := w.b.api.PriceByLookupKey(ctx, key)
	if err != nil || holder == nil || holder.ID == target {
		return err
	}
	if err := w.g.check(ctx, whatPrice, holder.ID, holder.Metadata); err != nil {
		var se *specError
		if errors.As(err, &se) {
			return &refusedWrite{what: whatPrice, id: holder.ID, spec: &specError{reason: se.reason,
				msg: fmt.Sprintf("Lookup key %q is held by Stripe price %s, which this resource does not own; the operator does not move it. %s", key, holder.ID, se.msg)}}
		}
		return err
	}
	return nil
}

// CreateSubscription bills a customer: the customer is checked by the
// subscription kind's tenant rule (checkCustomerTenant) before any create.
func (w guardedWrites) CreateSubscription(ctx context.Context, owner stripe.Owner, intent string, p stripe.SubscriptionCreateParams) (*stripe.Subscription, error) {
	sub, err := w.b.api.CreateSubscription(ctx, owner, intent, p)
	if err == nil {
		w.g.bindFound(owner, sub.ID, sub.Metadata)
	}
	return sub, err
}

func (w guardedWrites) UpdateSubscription(ctx context.Context, owner stripe.Owner, id string, p stripe.SubscriptionUpdateParams) (*stripe.Subscription, error) {
	if err := w.g.allow(ctx, whatSubscription, id); err != nil {
		return nil, err
	}
	return w.b.api.UpdateSubscription(ctx, owner, id, p)
}

func (w guardedWrites) CancelSubscription(ctx context.Context, owner stripe.Owner, id string, p stripe.SubscriptionCancelParams) (*stripe.Subscription, error) {
	if err := w.g.allow(ctx, whatSubscription, id); err != nil {
		return nil, err
	}
	return w.b.api.CancelSubscription(ctx, owner, id, p)
}

// CreateScheduleFromSubscription puts the bound subscription under a
// schedule: a write to that subscription.
func (w guardedWrites) CreateScheduleFromSubscription(ctx context.Context, owner stripe.Owner, subscriptionID string) (*stripe.SubscriptionSchedule, error) {
	if err := w.g.allow(ctx, whatSubscription, subscriptionID); err != nil {
		return nil, err
	}
	sc, err := w.b.api.CreateScheduleFromSubscription(ctx, owner, subscriptionID)
	w.g.observedSchedule(sc)
	return sc, err
}

// scheduleAllowed: a schedule may be changed only when the subscription it
// belongs to may be written.
func (w guardedWrites) scheduleAllowed(ctx context.Context, id string) error {
	sub, ok := w.g.scheduleSub[id]
	if !ok {
		sc, err := w.b.api.GetSubscriptionSchedule(ctx, id)
		if err != nil {
			return err
		}
		w.g.observedSchedule(sc)
		sub = sc.SubscriptionID
	}
	return w.g.allow(ctx, whatSubscription, sub)
}

func (w guardedWrites) UpdateSubscriptionSchedule(ctx context.Context, owner stripe.Owner, id string, p stripe.ScheduleUpdateParams) (*stripe.SubscriptionSchedule, error) {
	if err := w.scheduleAllowed(ctx, id); err != nil {
		return nil, err
	}
	return w.b.api.UpdateSubscriptionSchedule(ctx, owner, id, p)
}

func (w guardedWrites) ReleaseSubscriptionSchedule(ctx context.Context, owner stripe.Owner, id string) (*stripe.SubscriptionSchedule, error) {
	if err := w.scheduleAllowed(ctx, id); err != nil {
		return nil, err
	}
	return w.b.api.ReleaseSubscriptionSchedule(ctx, owner, id)
}

// DeleteSubscriptionDiscount removes the bound subscription's discount.
func (w guardedWrites) DeleteSubscriptionDiscount(ctx context.Context, owner stripe.Owner, id string) error {
	if err := w.g.allow(ctx, whatSubscription, id); err != nil {
		return err
	}
	return w.b.api.DeleteSubscriptionDiscount(ctx, owner, id)
}

func (w guardedWrites) CreateCoupon(ctx context.Context, owner stripe.Owner, intent string, p stripe.CouponCreateParams) (*stripe.Coupon, error) {
	c, err := w.b.api.CreateCoupon(ctx, owner, intent, p)
	if err == nil {
		w.g.bindFound(owner, c.ID, c.Metadata)
	}
	return c, err
}

func (w guardedWrites) UpdateCoupon(ctx context.Context, owner stripe.Owner, id string, p stripe.CouponUpdateParams) (*stripe.Coupon, error) {
	if err := w.g.allow(ctx, whatCoupon, id); err != nil {
		return nil, err
	}
	return w.b.api.UpdateCoupon(ctx, owner, id, p)
}

func (w guardedWrites) DeleteCoupon(ctx context.Context, owner stripe.Owner, id string) error {
	if err := w.g.allow(ctx, whatCoupon, id); err != nil {
		return err
	}
	return w.b.api.DeleteCoupon(ctx, owner, id)
}

// CreatePromotionCode adds a code to a coupon: a write to that coupon,
// allowed only on a bound coupon.
func (w guardedWrites) CreatePromotionCode(ctx context.Context, owner stripe.Owner, p stripe.PromotionCodeCreateParams) (*stripe.PromotionCode, error) {
	if err := w.g.allow(ctx, whatCoupon, p.CouponID); err != nil {
		return nil, err
	}
	return w.b.api.CreatePromotionCode(ctx, owner, p)
}

// UpdatePromotionCode changes a promotion code, allowed only when its
// coupon (as Stripe reports it, read in this pass by the caller: pc) may
// be written.
func (w guardedWrites) UpdatePromotionCode(ctx context.Context, owner stripe.Owner, pc *stripe.PromotionCode, p stripe.PromotionCodeUpdateParams) (*stripe.PromotionCode, error) {
	if pc == nil || pc.CouponID == "" {
		return nil, &refusedWrite{what: whatPromotionCode, spec: &specError{reason: ReasonNotBound, msg: "The promotion code's coupon is unknown; the operator does not write to it."}}
	}
	if err := w.g.allow(ctx, whatCoupon, pc.CouponID); err != nil {
		return nil, err
	}
	return w.b.api.UpdatePromotionCode(ctx, owner, pc.ID, p)
}

func (w guardedWrites) CreateWebhookEndpoint(ctx context.Context, owner stripe.Owner, intent string, p stripe.WebhookEndpointParams) (*stripe.WebhookEndpoint, error) {
	e, err := w.b.endpoints.CreateWebhookEndpoint(ctx, owner, intent, p)
	if err == nil {
		w.g.bindFound(owner, e.ID, e.Metadata)
	}
	return e, err
}

func (w guardedWrites) UpdateWebhookEndpoint(ctx context.Context, owner stripe.Owner, id string, p stripe.WebhookEndpointParams) (*stripe.WebhookEndpoint, error) {
	if err := w.g.allow(ctx, whatWebhookEndpoint, id); err != nil {
		return nil, err
	}
	return w.b.endpoints.UpdateWebhookEndpoint(ctx, owner, id, p)
}

func (w guardedWrites) DeleteWebhookEndpoint(ctx context.Context, owner stripe.Owner, id string) error {
	if err := w.g.allow(ctx, whatWebhookEndpoint, id); err != nil {
		return err
	}
	return w.b.endpoints.DeleteWebhookEndpoint(ctx, owner, id)
}

// leftAlone is the Event a deletion records for a Stripe object it did not
// touch, and why.
const reasonLeftAlone = "LeftAlone"

// noteUnboundSpecID records, on deletion, that the Stripe object the spec
// names was never bound to this resource and is left alone.
func (p *pass[O]) noteUnboundSpecID() {
	c := p.ext.Creation()
	if c.specID == "" || p.guard.isBound(c.specID) {
		return
	}
	why := "it was never bound to this resource"
	if s := findCondition(p.obj.GetConditions(), billingv1alpha1.ConditionStalled); s != nil && s.Status == "True" {
		why = fmt.Sprintf("it was never bound to this resource (refused: %s)", s.Reason)
	}
	p.event(true, reasonLeftAlone, fmt.Sprintf("Left Stripe %s %s named by %s alone: %s; the deletion policy applies only to objects this resource bound.",
		c.what, c.specID, c.specField, why))
}
