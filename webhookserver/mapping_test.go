package webhookserver

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// TestEventAndReadGiveTheSameStatus: a subscription and its invoice sent in
// events give the status a read of the same Stripe state gives the
// reconciler (billing.SetSubscription and billing.InvoiceStatus), in each
// API version's shape: no field is lost between the decoder and the
// mapping.
func TestEventAndReadGiveTheSameStatus(t *testing.T) {
	read := &stripe.Subscription{ID: "sub_map1", CustomerID: "cus_1", Status: "past_due",
		Items:              []stripe.SubscriptionItem{{ID: "si_1", PriceID: "price_1", Quantity: 2}, {ID: "si_2", PriceID: "price_2", Quantity: 1}},
		CurrentPeriodStart: 1700000000, CurrentPeriodEnd: 1702592000, CancelAtPeriodEnd: true,
		CancelAt: 1702592000, CanceledAt: 1700000500, TrialEnd: 1699999000, PauseCollection: "void",
		LatestInvoice: &stripe.Invoice{ID: "in_1", Status: "open", AmountDue: 4000, AmountPaid: 100, Currency: "usd",
			AttemptCount: 2, NextPaymentAttempt: 1700100000, HostedInvoiceURL: "https://invoice.example/in_1",
			BillingReason: "subscription_cycle", Created: 1700000001, PaymentIntentStatus: "requires_payment_method",
			PaymentError: "card_declined"}}
	var want billingv1alpha1.StripeSubscriptionStatus
	billing.SetSubscription(&want, read)
	want.LatestInvoice = billing.InvoiceStatus(read.LatestInvoice)

	for _, basil := range []bool{false, true} {
		items := []any{}
		for _, it := range read.Items {
			item := map[string]any{"id": it.ID, "price": map[string]any{"id": it.PriceID}, "quantity": it.Quantity}
			if basil {
				item["current_period_start"], item["current_period_end"] = read.CurrentPeriodStart, read.CurrentPeriodEnd
			}
			items = append(items, item)
		}
		sub := map[string]any{"id": read.ID, "object": "subscription", "customer": read.CustomerID, "status": read.Status,
			"items": map[string]any{"data": items}, "cancel_at_period_end": read.CancelAtPeriodEnd,
			"cancel_at": read.CancelAt, "canceled_at": read.CanceledAt, "trial_end": read.TrialEnd,
			"pause_collection": map[string]any{"behavior": read.PauseCollection}, "latest_invoice": "in_1"}
		in := read.LatestInvoice
		inv := map[string]any{"id": in.ID, "object": "invoice", "status": in.Status, "amount_due": in.AmountDue,
			"amount_paid": in.AmountPaid, "currency": in.Currency, "attempt_count": in.AttemptCount,
			"next_payment_attempt": in.NextPaymentAttempt, "hosted_invoice_url": in.HostedInvoiceURL,
			"billing_reason": in.BillingReason, "created": in.Created,
			"payment_intent": map[string]any{"id": "pi_1", "status": in.PaymentIntentStatus,
				"last_payment_error": map[string]any{"code": in.PaymentError}}}
		if basil {
			inv["parent"] = map[string]any{"subscription_details": map[string]any{"subscription": read.ID}}
			delete(inv, "payment_intent")
			inv["payments"] = map[string]any{"data": []any{map[string]any{"is_default": true, "status": "open",
				"payment": map[string]any{"payment_intent": map[string]any{"id": "pi_1", "status": in.PaymentIntentStatus,
					"last_payment_error": map[string]any{"code": in.PaymentError}}}}}}
		} else {
			sub["current_period_start"], sub["current_period_end"] = read.CurrentPeriodStart, read.CurrentPeriodEnd
			inv["subscription"] = read.ID
		}

		var obj billingv1alpha1.StripeSubscription
		for i, pair := range []struct {
			typ string
			obj map[string]any
		}{{"customer.subscription.updated", sub}, {"invoice.payment_failed", inv}} {
			body, _ := json.Marshal(map[string]any{"id": "evt_map" + string(rune('a'+i)), "object": "event", "type": pair.typ,
				"api_version": "2023-10-16", "created": 1700000100 + i, "data": map[string]any{"object": pair.obj}})
			ev, err := decodeEvent(body)
			if err != nil || ev.ObjectErr != nil {
				t.Fatalf("decoding %s: %v %v", pair.typ, err, ev.ObjectErr)
			}
			mut := subscriptionMutation(ev)
			if ev.Inv != nil {
				mut = invoiceMutation(ev)
			}
			if got := mut(&obj); got != OutcomeApplied {
				t.Fatalf("%s: outcome %s", pair.typ, got)
			}
		}
		got := obj.Status.DeepCopy()
		got.Conditions, got.LastEvent, got.LatestInvoice.LastEvent = nil, nil, nil
		if !equality.Semantic.DeepEqual(*got, want) {
			t.Errorf("basil=%v: events give\n%+v\n%+v\nthe read gives\n%+v\n%+v", basil, *got, *got.LatestInvoice, want, *want.LatestInvoice)
		}
	}
}
