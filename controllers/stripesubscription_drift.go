package controllers

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Stripe subscription statuses the reconciler acts on.
const (
	subStatusActive            = "active"
	subStatusTrialing          = "trialing"
	subStatusPastDue           = "past_due"
	subStatusUnpaid            = "unpaid"
	subStatusIncomplete        = "incomplete"
	subStatusIncompleteExpired = "incomplete_expired"
	subStatusCanceled          = "canceled"
	subStatusPaused            = "paused"
)

// metadataReplaces is written on a subscription created through the recreate
// annotation: it names the ended subscription it replaces. Besides telling a
// person where the new subscription came from, it makes the create request
// (and so its idempotency key) differ from the original create, which
// Stripe would otherwise replay for 24 hours and return the ended
// subscription.
const metadataReplaces = billingv1alpha1.StripeMetadataPrefix + "replaces"

// subscriptionEnded reports whether a Stripe subscription status is final.
func subscriptionEnded(status string) bool {
	return status == subStatusCanceled || status == subStatusIncompleteExpired
}

// desiredItem is one spec item with its reference resolved.
type desiredItem struct {
	// PriceID is the price the item must be on.
	PriceID string
	// Quantity is the declared quantity (at least 1).
	Quantity int64
	// PlanName is the StripePlan the price comes from, "" when pinned.
	PlanName string
	// PreviousPriceIDs are the plan's earlier prices: an item on one of them
	// is moved by a price rollover, not by drift.
	PreviousPriceIDs []string
	// Policy is the plan's priceChangePolicy (Keep when unset).
	Policy billingv1alpha1.PriceChangePolicy
	// PlanPriceID is the plan's current price; PriceID differs from it when
	// the policy keeps the item on an earlier price.
	PlanPriceID string
	// MoveWithoutProration: the policy moves the item now to a price of
	// the same interval with proration_behavior none (AtNextRenewal: the
	// next renewal bills the new price, nothing is billed before).
	MoveWithoutProration bool
	// UnitAmount and Currency describe the price.
	UnitAmount int64
	Currency   string
	// SpecQuantity is the quantity as declared (0 when unset); Quantity is
	// 0 for a metered price's item, which has none.
	SpecQuantity int64
	// Price is the item's Stripe price with its terms (tiers, decimals,
	// metered, currency options), nil until read.
	Price *stripe.Price
}

// difference is one way Stripe differs from the declaration.
type difference struct {
	// text names the difference in plain English, stable between passes.
	text string
	// rollover marks an item still on a plan's earlier price: the plan
	// changed, not Stripe.
	rollover bool
	// backfill marks identity metadata an older object lacks: bookkeeping
	// on upgrade, not drift.
	backfill bool
}

// subscriptionDiff is everything that differs between the declaration and a
// Stripe subscription, with the single update call that removes it.
type subscriptionDiff struct {
	differences []difference
	params      stripe.SubscriptionUpdateParams
	// itemsChanged is true when params changes items (proration applies).
	itemsChanged bool
	// removeDiscount: Stripe holds a discount none is declared for
	// (stripesubscription_discount.go).
	removeDiscount bool
	// invoiceDiscount is a discount an invoice took that differs from the
	// declared one (stripesubscription_discount.go), "" when none.
	invoiceDiscount string
}

// texts returns the difference messages in order.
func (d *subscriptionDiff) texts() []string {
	out := make([]string, 0, len(d.differences))
	for _, x := range d.differences {
		out = append(out, x.text)
	}
	return out
}

// onlyRollover reports whether every difference is expected rather than
// drift: a plan price rollover or an identity backfill.
func (d *subscriptionDiff) onlyRollover() bool {
	for _, x := range d.differences {
		if !x.rollover && !x.backfill {
			return false
		}
	}
	return len(d.differences) > 0
}

func (d *subscriptionDiff) add(rollover bool, format string, args ...any) {
	d.differences = append(d.differences, difference{text: fmt.Sprintf(format, args...), rollover: rollover})
}

// matchItems pairs each desired item with an observed item: first items
// already on the desired price, then, in order, the remaining desired items
// with the remaining observed items. A pair on different prices becomes a
// price swap that keeps the subscription item ID (an upgrade or downgrade is
// never a remove plus an add). It returns, per desired item, the index of its
// observed item or -1 (an added item), and the observed items left over
// (removed).
func matchItems(desired []desiredItem, observed []stripe.SubscriptionItem) (match []int, removed []int) {
	match = make([]int, len(desired))
	used := make([]bool, len(observed))
	for i, d := range desired {
		match[i] = -1
		for j, o := range observed {
			if !used[j] && o.PriceID == d.PriceID {
				match[i], used[j] = j, true
				break
			}
		}
	}
	next := 0
	for i := range desired {
		if match[i] >= 0 {
			continue
		}
		for next < len(observed) && used[next] {
			next++
		}
		if next < len(observed) {
			match[i], used[next] = next, true
		}
	}
	for j := range observed {
		if !used[j] {
			removed = append(removed, j)
		}
	}
	return match, removed
}

// diffSubscription compares the declaration with sub. desiredMetadata is the
// full metadata the Stripe subscription must carry (in Manage mode the
// spec's metadata plus the operator's keys; in Observe mode the spec's
// metadata only, and the operator's keys are not compared).
func diffSubscription(spec *billingv1alpha1.StripeSubscriptionSpec, desired []desiredItem, desiredMetadata map[string]string, observeMode bool, sub *stripe.Subscription) subscriptionDiff {
	var d subscriptionDiff

	// Items.
	noProration := false
	match, removed := matchItems(desired, sub.Items)
	for i, want := range desired {
		n := i + 1
		j := match[i]
		if j < 0 {
			d.add(false, "item %d (%s, quantity %d) is declared but not in Stripe", n, want.PriceID, want.Quantity)
			d.params.Items = append(d.params.Items, stripe.SubscriptionItemUpdate{PriceID: want.PriceID, Quantity: want.Quantity})
			continue
		}
		have := sub.Items[j]
		if have.PriceID != want.PriceID {
			rollover := want.PlanName != "" && slices.Contains(want.PreviousPriceIDs, have.PriceID)
			if rollover {
				noProration = noProration || want.MoveWithoutProration
				d.add(true, "item %d is on %s, an earlier price of StripePlan %s, whose current price is %s", n, have.PriceID, want.PlanName, want.PriceID)
			} else {
				d.add(false, "item %d is on price %s in Stripe, %s declared", n, have.PriceID, want.PriceID)
			}
			if have.Quantity != want.Quantity {
				d.add(rollover, "item %d has quantity %d in Stripe, %d declared", n, have.Quantity, want.Quantity)
			}
			d.params.Items = append(d.params.Items, stripe.SubscriptionItemUpdate{ID: have.ID, PriceID: want.PriceID, Quantity: want.Quantity})
			continue
		}
		if have.Quantity != want.Quantity {
			d.add(false, "item %d (%s) has quantity %d in Stripe, %d declared", n, want.PriceID, have.Quantity, want.Quantity)
			d.params.Items = append(d.params.Items, stripe.SubscriptionItemUpdate{ID: have.ID, PriceID: want.PriceID, Quantity: want.Quantity})
		}
	}
	for _, j := range removed {
		have := sub.Items[j]
		d.add(false, "%s (quantity %d) is in Stripe but not declared", have.PriceID, have.Quantity)
		d.params.Items = append(d.params.Items, stripe.SubscriptionItemUpdate{ID: have.ID, Deleted: true})
	}
	d.itemsChanged = len(d.params.Items) > 0
	if d.itemsChanged {
		d.params.ProrationBehavior = string(prorationBehavior(spec))
		d.params.PaymentBehavior = string(paymentBehavior(spec))
		if noProration {
			// priceChangePolicy AtNextRenewal, same interval: the move
			// bills nothing before the renewal.
			d.params.ProrationBehavior = string(billingv1alpha1.ProrationBehaviorNone)
		}
	}

	// cancel_at_period_end.
	if sub.CancelAtPeriodEnd != spec.CancelAtPeriodEnd {
		d.add(false, "cancel_at_period_end is %t in Stripe, %t declared", sub.CancelAtPeriodEnd, spec.CancelAtPeriodEnd)
		v := spec.CancelAtPeriodEnd
		d.params.CancelAtPeriodEnd = &v
	}

	// cancel_at. The spec declares no cancellation date of its own; a
	// cancel_at in Stripe is expected only as the period end that
	// cancel_at_period_end sets. One set in the Dashboard ("cancel on a
	// custom date") is drift; cancel_at_period_end=true replaces it anyway.
	if sub.CancelAt != 0 && !sub.CancelAtPeriodEnd && !spec.CancelAtPeriodEnd {
		d.add(false, "cancel_at is %s in Stripe, none declared", time.Unix(sub.CancelAt, 0).UTC().Format(time.RFC3339))
		d.params.ClearCancelAt = true
	}

	// pause_collection.
	wantPause := ""
	if spec.PauseCollection != nil {
		wantPause = string(spec.PauseCollection.Behavior)
	}
	if sub.PauseCollection != wantPause {
		d.add(false, "pause_collection is %s in Stripe, %s declared", pauseText(sub.PauseCollection), pauseText(wantPause))
		v := wantPause
		d.params.PauseCollection = &v
	}

	// collection_method and days_until_due.
	wantMethod := string(collectionMethod(spec))
	haveMethod := sub.CollectionMethod
	if haveMethod == "" {
		haveMethod = string(billingv1alpha1.CollectionMethodChargeAutomatically)
	}
	if haveMethod != wantMethod {
		d.add(false, "collection_method is %s in Stripe, %s declared", haveMethod, wantMethod)
		v := wantMethod
		d.params.CollectionMethod = &v
		if spec.DaysUntilDue != nil {
			days := *spec.DaysUntilDue
			d.params.DaysUntilDue = &days
		}
	} else if wantMethod == string(billingv1alpha1.CollectionMethodSendInvoice) && spec.DaysUntilDue != nil && *spec.DaysUntilDue != sub.DaysUntilDue {
		d.add(false, "days_until_due is %d in Stripe, %d declared", sub.DaysUntilDue, *spec.DaysUntilDue)
		days := *spec.DaysUntilDue
		d.params.DaysUntilDue = &days
	}

	// metadata.
	observedMetadata := sub.Metadata
	if observeMode {
		observedMetadata = withoutOperatorKeys(sub.Metadata)
	}
	if md := subscriptionMetadataDiff(desiredMetadata, observedMetadata); len(md) > 0 {
		keys := make([]string, 0, len(md))
		for k := range md {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if onlyIdentityBackfill(md, observedMetadata) {
			d.differences = append(d.differences, difference{text: "identity metadata " + strings.Join(keys, ", ") + " added", backfill: true})
		} else {
			d.add(false, "metadata differs in keys %s", strings.Join(keys, ", "))
		}
		d.params.Metadata = md
	}
	return d
}

// subscriptionMetadataDiff is metadataDiff except that keys under the
// operator's prefix that the operator does not set itself (such as
// stripe-operator.io/replaces) are never removed.
func subscriptionMetadataDiff(desired, observed map[string]string) map[string]string {
	md := metadataDiff(desired, observed)
	for k, v := range md {
		if _, want := desired[k]; !want && v == "" && strings.HasPrefix(k, billingv1alpha1.StripeMetadataPrefix) {
			delete(md, k)
		}
	}
	if len(md) == 0 {
		return nil
	}
	return md
}

func withoutOperatorKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if !strings.HasPrefix(k, billingv1alpha1.StripeMetadataPrefix) {
			out[k] = v
		}
	}
	return out
}

func pauseText(p string) string {
	if p == "" {
		return "off"
	}
	return p
}

func prorationBehavior(spec *billingv1alpha1.StripeSubscriptionSpec) billingv1alpha1.ProrationBehavior {
	if spec.ProrationBehavior == "" {
		return billingv1alpha1.ProrationBehaviorCreateProrations
	}
	return spec.ProrationBehavior
}

func paymentBehavior(spec *billingv1alpha1.StripeSubscriptionSpec) billingv1alpha1.PaymentBehavior {
	if spec.PaymentBehavior == "" {
		return billingv1alpha1.PaymentBehaviorAllowIncomplete
	}
	return spec.PaymentBehavior
}

func collectionMethod(spec *billingv1alpha1.StripeSubscriptionSpec) billingv1alpha1.CollectionMethod {
	if spec.CollectionMethod == "" {
		return billingv1alpha1.CollectionMethodChargeAutomatically
	}
	return spec.CollectionMethod
}

// joinDifferences renders differences as one sentence list.
func joinDifferences(texts []string) string {
	return strings.Join(texts, "; ")
}
