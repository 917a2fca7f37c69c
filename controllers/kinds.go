package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/audit"
	"github.com/stripe-operator/stripe-operator/internal/kinds"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// The controllers' half of the table of kinds (internal/kinds holds the
// other half: API types, Stripe object types, audit refs). Each kind
// attaches here, once:
//
//   - setup: how its reconciler is built from the manager's options and
//     registered (SetupKinds wires every kind of the table, in order, each
//     with its own credentials-changed channel);
//   - stripe: the Stripe calls of each of its Stripe object types, which
//     the core and the audit use without a list of their own: the write
//     guard's metadata read, the Orphan deletion's marker, and the billing
//     audit's list and confirmation.
//
// TestEveryKindIsAttached fails when a kind of the table lacks either.

// StripeClient is the Stripe client every kind's reconciler is built with.
type StripeClient interface {
	stripe.API
	WebhookEndpoints
}

// KindOptions is what every kind's reconciler is built from.
type KindOptions struct {
	Client client.Client
	// APIReader reads what the manager's cache does not hold (the webhook
	// Secret).
	APIReader client.Reader
	Stripe    StripeClient
	// ResyncPeriod, Instance, AdoptionSelector, MaxConcurrentReconciles and
	// SkipNameValidation: see StripeCustomerReconciler.
	ResyncPeriod            time.Duration
	Instance                string
	AdoptionSelector        labels.Selector
	MaxConcurrentReconciles int
	SkipNameValidation      bool
	// Namespace is the operator's namespace (webhook endpoints live there).
	Namespace string
	// MaxChargeAttempts: see StripeSubscriptionReconciler.
	MaxChargeAttempts int
	// Lists, when set, lets the resync of every kind read unchanged objects
	// from whole lists (resync_lists.go).
	Lists *ResyncLists
}

// kindAttachment is a kind's controllers-side entry.
type kindAttachment struct {
	// setup builds the kind's reconciler and registers it with mgr.
	setup func(mgr ctrl.Manager, o KindOptions, credentialsChanged <-chan event.GenericEvent) error
	// stripe holds the Stripe calls of each of the kind's Stripe object
	// types (kinds.Kind.StripeTypes).
	stripe map[string]stripeType
}

// stripeType is what the core and the audit need of one Stripe object type.
type stripeType struct {
	// read reads an object's metadata (the write guard's ownership check).
	read func(ctx context.Context, b stripeBackend, id string) (map[string]string, error)
	// updateMetadata writes metadata through the pass's guard (the marker
	// an Orphan deletion leaves). Needed by audited kinds.
	updateMetadata func(ctx context.Context, w guardedWrites, owner stripe.Owner, id string, md map[string]string) error
	// list pages through every object of the type for the billing audit.
	// Needed by audited kinds.
	list func(ctx context.Context, l auditListing) error
	// exists confirms that an object the audit found Missing exists (and,
	// for types that end, has not ended). Needed by audited kinds.
	exists func(ctx context.Context, api stripe.API, id string) (bool, error)
}

// auditListing is one audit's listing of Stripe.
type auditListing struct {
	lister stripe.Lister
	add    func(audit.Object)
	// lists receives the listed subscriptions (the subscriptions' resync).
	lists *ResyncLists
}

// attachments: every kind of internal/kinds, by name.
var attachments = map[string]kindAttachment{
	"StripeCustomer": {
		setup: func(mgr ctrl.Manager, o KindOptions, changed <-chan event.GenericEvent) error {
			return (&StripeCustomerReconciler{Client: o.Client, Lists: o.Lists, Stripe: o.Stripe, Recorder: recorderFor(mgr, "StripeCustomer"),
				ResyncPeriod: o.ResyncPeriod, SkipNameValidation: o.SkipNameValidation, CredentialsChanged: changed,
				MaxConcurrentReconciles: o.MaxConcurrentReconciles, Instance: o.Instance, AdoptionSelector: o.AdoptionSelector,
				SecretReader: o.APIReader,
			}).SetupWithManager(mgr)
		},
		stripe: map[string]stripeType{kinds.Customer: {
			read: func(ctx context.Context, b stripeBackend, id string) (map[string]string, error) {
				c, err := b.api.GetCustomer(ctx, id)
				if err != nil {
					return nil, err
				}
				return c.Metadata, nil
			},
			updateMetadata: func(ctx context.Context, w guardedWrites, owner stripe.Owner, id string, md map[string]string) error {
				_, err := w.UpdateCustomer(ctx, owner, id, stripe.CustomerParams{Metadata: md})
				return err
			},
			list: func(ctx context.Context, l auditListing) error {
				return l.lister.ListAllCustomers(ctx, func(c *stripe.Customer) error {
					l.add(audit.Object{Kind: kinds.Customer, ID: c.ID, Metadata: c.Metadata, Live: !c.Deleted, Created: c.Created})
					return nil
				})
			},
			exists: func(ctx context.Context, api stripe.API, id string) (bool, error) {
				c, err := api.GetCustomer(ctx, id)
				if err != nil {
					return false, err
				}
				return !c.Deleted, nil
			},
		}},
	},
	"StripePlan": {
		setup: func(mgr ctrl.Manager, o KindOptions, changed <-chan event.GenericEvent) error {
			return (&StripePlanReconciler{Client: o.Client, Lists: o.Lists, Stripe: o.Stripe, Recorder: recorderFor(mgr, "StripePlan"),
				ResyncPeriod: o.ResyncPeriod, SkipNameValidation: o.SkipNameValidation, CredentialsChanged: changed,
				MaxConcurrentReconciles: o.MaxConcurrentReconciles, Instance: o.Instance, AdoptionSelector: o.AdoptionSelector,
			}).SetupWithManager(mgr)
		},
		stripe: map[string]stripeType{
			kinds.Product: {
				read: func(ctx context.Context, b stripeBackend, id string) (map[string]string, error) {
					p, err := b.api.GetProduct(ctx, id)
					if err != nil {
						return nil, err
					}
					return p.Metadata, nil
				},
				updateMetadata: func(ctx context.Context, w guardedWrites, owner stripe.Owner, id string, md map[string]string) error {
					_, err := w.UpdateProduct(ctx, owner, id, stripe.ProductParams{Metadata: md})
					return err
				},
				list: func(ctx context.Context, l auditListing) error {
					return l.lister.ListAllProducts(ctx, func(p *stripe.Product) error {
						l.add(audit.Object{Kind: kinds.Product, ID: p.ID, Metadata: p.Metadata, Live: p.Active, Created: p.Created})
						return nil
					})
				},
				exists: func(ctx context.Context, api stripe.API, id string) (bool, error) {
					_, err := api.GetProduct(ctx, id)
					return err == nil, err
				},
			},
			kinds.Price: {
				read: func(ctx context.Context, b stripeBackend, id string) (map[string]string, error) {
					p, err := b.api.GetPrice(ctx, id)
					if err != nil {
						return nil, err
					}
					return p.Metadata, nil
				},
				updateMetadata: func(ctx context.Context, w guardedWrites, owner stripe.Owner, id string, md map[string]string) error {
					_, err := w.UpdatePrice(ctx, owner, id, stripe.PriceUpdateParams{Metadata: md})
					return err
				},
				list: func(ctx context.Context, l auditListing) error {
					return l.lister.ListAllPrices(ctx, func(p *stripe.Price) error {
						l.add(audit.Object{Kind: kinds.Price, ID: p.ID, Metadata: p.Metadata, Live: p.Active, Created: p.Created})
						return nil
					})
				},
				exists: func(ctx context.Context, api stripe.API, id string) (bool, error) {
					_, err := api.GetPrice(ctx, id)
					return err == nil, err
				},
			},
		},
	},
	"StripeSubscription": {
		setup: func(mgr ctrl.Manager, o KindOptions, changed <-chan event.GenericEvent) error {
			return (&StripeSubscriptionReconciler{Client: o.Client, Stripe: o.Stripe, Recorder: recorderFor(mgr, "StripeSubscription"),
				ResyncPeriod: o.ResyncPeriod, SkipNameValidation: o.SkipNameValidation, CredentialsChanged: changed, Lists: o.Lists,
				MaxConcurrentReconciles: o.MaxConcurrentReconciles, Instance: o.Instance, AdoptionSelector: o.AdoptionSelector,
				MaxChargeAttempts: o.MaxChargeAttempts,
			}).SetupWithManager(mgr)
		},
		stripe: map[string]stripeType{kinds.Subscription: {
			read: func(ctx context.Context, b stripeBackend, id string) (map[string]string, error) {
				s, err := b.api.GetSubscription(ctx, id)
				if err != nil {
					return nil, err
				}
				return s.Metadata, nil
			},
			updateMetadata: func(ctx context.Context, w guardedWrites, owner stripe.Owner, id string, md map[string]string) error {
				_, err := w.UpdateSubscription(ctx, owner, id, stripe.SubscriptionUpdateParams{Metadata: md})
				return err
			},
			list: func(ctx context.Context, l auditListing) error {
				listedAt := time.Now()
				var subs []*stripe.Subscription
				if err := l.lister.ListAllSubscriptions(ctx, func(s *stripe.Subscription) error {
					ended := subscriptionEnded(s.Status)
					l.add(audit.Object{Kind: kinds.Subscription, ID: s.ID, Metadata: s.Metadata, Live: !ended, Ended: ended, Status: s.Status, Created: s.Created,
						EndedBy: endedBy(s, &billingv1alpha1.StripeSubscriptionSpec{})})
					subs = append(subs, s)
					return nil
				}); err != nil {
					return err
				}
				if l.lists != nil {
					l.lists.Publish(listedAt, subs)
				}
				return nil
			},
			exists: func(ctx context.Context, api stripe.API, id string) (bool, error) {
				s, err := api.GetSubscription(ctx, id)
				if err != nil {
					return false, err
				}
				// Listed ended: still ended. Not listed: created after the list.
				return !subscriptionEnded(s.Status), nil
			},
		}},
	},
	"StripeCoupon": {
		setup: func(mgr ctrl.Manager, o KindOptions, changed <-chan event.GenericEvent) error {
			return (&StripeCouponReconciler{Client: o.Client, Stripe: o.Stripe, Recorder: recorderFor(mgr, "StripeCoupon"),
				ResyncPeriod: o.ResyncPeriod, SkipNameValidation: o.SkipNameValidation, CredentialsChanged: changed,
				MaxConcurrentReconciles: o.MaxConcurrentReconciles, Instance: o.Instance, AdoptionSelector: o.AdoptionSelector,
			}).SetupWithManager(mgr)
		},
		stripe: map[string]stripeType{kinds.Coupon: {
			read: func(ctx context.Context, b stripeBackend, id string) (map[string]string, error) {
				c, err := b.api.GetCoupon(ctx, id)
				if err != nil {
					return nil, err
				}
				return c.Metadata, nil
			},
		}},
	},
	"StripeWebhookEndpoint": {
		setup: func(mgr ctrl.Manager, o KindOptions, changed <-chan event.GenericEvent) error {
			return (&StripeWebhookEndpointReconciler{Client: o.Client, Lists: o.Lists, APIReader: o.APIReader, Stripe: o.Stripe,
				Recorder: recorderFor(mgr, "StripeWebhookEndpoint"), CredentialsChanged: changed,
				Namespace: o.Namespace, Instance: o.Instance, ResyncPeriod: o.ResyncPeriod, SkipNameValidation: o.SkipNameValidation,
			}).SetupWithManager(mgr)
		},
		stripe: map[string]stripeType{kinds.WebhookEndpoint: {
			read: func(ctx context.Context, b stripeBackend, id string) (map[string]string, error) {
				w, err := b.endpoints.GetWebhookEndpoint(ctx, id)
				if err != nil {
					return nil, err
				}
				return w.Metadata, nil
			},
		}},
	},
}

// stripeTypes: the Stripe calls of every Stripe object type, from the
// attachments.
var stripeTypes = func() map[string]stripeType {
	m := map[string]stripeType{}
	for _, a := range attachments {
		for t, st := range a.stripe {
			m[t] = st
		}
	}
	return m
}()

// recorderFor is the Event recorder of a kind's controller, e.g.
// "stripecustomer-controller".
func recorderFor(mgr ctrl.Manager, kind string) record.EventRecorder {
	return mgr.GetEventRecorderFor(strings.ToLower(kind) + "-controller") //nolint:staticcheck // record.EventRecorder is what the reconcilers take
}

// KindCount is the number of managed kinds (one credentials-changed
// channel each).
func KindCount() int { return len(kinds.All) }

// SetupKinds registers the reconciler of every kind in the table, in the
// table's order; credentialsChanged[i] re-queues every resource of the
// i-th kind (nil entries, or a shorter slice, leave it out).
func SetupKinds(mgr ctrl.Manager, o KindOptions, credentialsChanged []<-chan event.GenericEvent) error {
	for i, k := range kinds.All {
		a, ok := attachments[k.Name]
		if !ok || a.setup == nil {
			return fmt.Errorf("kind %s has no reconciler attached (controllers/kinds.go)", k.Name)
		}
		var changed <-chan event.GenericEvent
		if i < len(credentialsChanged) {
			changed = credentialsChanged[i]
		}
		if err := a.setup(mgr, o, changed); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", k.Name, err)
		}
	}
	return nil
}
