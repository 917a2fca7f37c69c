package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

func TestMatchItems(t *testing.T) {
	items := func(prices ...string) []stripe.SubscriptionItem {
		var out []stripe.SubscriptionItem
		for i, p := range prices {
			out = append(out, stripe.SubscriptionItem{ID: "si_" + string(rune('a'+i)), PriceID: p, Quantity: 1})
		}
		return out
	}
	want := func(prices ...string) []desiredItem {
		var out []desiredItem
		for _, p := range prices {
			out = append(out, desiredItem{PriceID: p, Quantity: 1})
		}
		return out
	}
	tests := []struct {
		name        string
		desired     []desiredItem
		observed    []stripe.SubscriptionItem
		wantMatch   []int
		wantRemoved []int
	}{
		{"same", want("price_a", "price_b"), items("price_a", "price_b"), []int{0, 1}, nil},
		{"reordered", want("price_b", "price_a"), items("price_a", "price_b"), []int{1, 0}, nil},
		{"swap keeps the item", want("price_c"), items("price_a"), []int{0}, nil},
		{"swap of the second", want("price_a", "price_c"), items("price_a", "price_b"), []int{0, 1}, nil},
		{"added", want("price_a", "price_b"), items("price_a"), []int{0, -1}, nil},
		{"removed", want("price_b"), items("price_a", "price_b"), []int{1}, []int{0}},
		{"exact match wins over position", want("price_c", "price_a"), items("price_a", "price_b"), []int{1, 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			match, removed := matchItems(tt.desired, tt.observed)
			g.Expect(match).To(Equal(tt.wantMatch))
			g.Expect(removed).To(Equal(tt.wantRemoved))
		})
	}
}

func TestDiffSubscription(t *testing.T) {
	base := func() *stripe.Subscription {
		return &stripe.Subscription{
			ID: "sub_1", CustomerID: "cus_1", Status: "active", CollectionMethod: "charge_automatically",
			Items:    []stripe.SubscriptionItem{{ID: "si_1", PriceID: "price_basic", Quantity: 2}},
			Metadata: map[string]string{"team": "a", billingv1alpha1.StripeMetadataUID: "u1", metadataReplaces: "sub_0"},
		}
	}
	spec := func() *billingv1alpha1.StripeSubscriptionSpec {
		return &billingv1alpha1.StripeSubscriptionSpec{ProrationBehavior: billingv1alpha1.ProrationBehaviorNone}
	}
	manageMeta := map[string]string{"team": "a", billingv1alpha1.StripeMetadataUID: "u1"}
	tests := []struct {
		name         string
		spec         func(*billingv1alpha1.StripeSubscriptionSpec)
		desired      []desiredItem
		meta         map[string]string
		observe      bool
		sub          func(*stripe.Subscription)
		wantTexts    []string
		wantItems    []stripe.SubscriptionItemUpdate
		wantRollover bool
		check        func(g Gomega, p stripe.SubscriptionUpdateParams)
	}{
		{
			name:    "in sync (operator keys such as replaces are kept)",
			desired: []desiredItem{{PriceID: "price_basic", Quantity: 2}},
			meta:    manageMeta,
		},
		{
			name:      "quantity",
			desired:   []desiredItem{{PriceID: "price_basic", Quantity: 3}},
			meta:      manageMeta,
			wantTexts: []string{"item 1 (price_basic) has quantity 2 in Stripe, 3 declared"},
			wantItems: []stripe.SubscriptionItemUpdate{{ID: "si_1", PriceID: "price_basic", Quantity: 3}},
			check: func(g Gomega, p stripe.SubscriptionUpdateParams) {
				g.Expect(p.ProrationBehavior).To(Equal("none"))
			},
		},
		{
			name:      "upgrade swaps the price on the same item",
			desired:   []desiredItem{{PriceID: "price_pro", Quantity: 2}},
			meta:      manageMeta,
			wantTexts: []string{"item 1 is on price price_basic in Stripe, price_pro declared"},
			wantItems: []stripe.SubscriptionItemUpdate{{ID: "si_1", PriceID: "price_pro", Quantity: 2}},
		},
		{
			name:         "plan rollover",
			desired:      []desiredItem{{PriceID: "price_basic2", Quantity: 2, PlanName: "basic", PreviousPriceIDs: []string{"price_basic"}}},
			meta:         manageMeta,
			wantTexts:    []string{"item 1 is on price_basic, an earlier price of StripePlan basic, whose current price is price_basic2"},
			wantItems:    []stripe.SubscriptionItemUpdate{{ID: "si_1", PriceID: "price_basic2", Quantity: 2}},
			wantRollover: true,
		},
		{
			name:    "other item swapped in place",
			desired: []desiredItem{{PriceID: "price_basic", Quantity: 2}, {PriceID: "price_addon", Quantity: 1}},
			meta:    manageMeta,
			sub: func(s *stripe.Subscription) {
				s.Items = append(s.Items, stripe.SubscriptionItem{ID: "si_3", PriceID: "price_old", Quantity: 4})
			},
			wantTexts: []string{"item 2 is on price price_old in Stripe, price_addon declared", "item 2 has quantity 4 in Stripe, 1 declared"},
			wantItems: []stripe.SubscriptionItemUpdate{{ID: "si_3", PriceID: "price_addon", Quantity: 1}},
		},
		{
			name:      "added",
			desired:   []desiredItem{{PriceID: "price_basic", Quantity: 2}, {PriceID: "price_addon", Quantity: 1}},
			meta:      manageMeta,
			wantTexts: []string{"item 2 (price_addon, quantity 1) is declared but not in Stripe"},
			wantItems: []stripe.SubscriptionItemUpdate{{PriceID: "price_addon", Quantity: 1}},
		},
		{
			name:    "removed",
			desired: []desiredItem{{PriceID: "price_basic", Quantity: 2}},
			meta:    manageMeta,
			sub: func(s *stripe.Subscription) {
				s.Items = append(s.Items, stripe.SubscriptionItem{ID: "si_3", PriceID: "price_old", Quantity: 4})
			},
			wantTexts: []string{"price_old (quantity 4) is in Stripe but not declared"},
			wantItems: []stripe.SubscriptionItemUpdate{{ID: "si_3", Deleted: true}},
		},
		{
			name: "cancel at period end and pause",
			spec: func(s *billingv1alpha1.StripeSubscriptionSpec) {
				s.PauseCollection = &billingv1alpha1.PauseCollection{Behavior: "void"}
			},
			desired:   []desiredItem{{PriceID: "price_basic", Quantity: 2}},
			meta:      manageMeta,
			sub:       func(s *stripe.Subscription) { s.CancelAtPeriodEnd = true },
			wantTexts: []string{"cancel_at_period_end is true in Stripe, false declared", "pause_collection is off in Stripe, void declared"},
			check: func(g Gomega, p stripe.SubscriptionUpdateParams) {
				g.Expect(p.CancelAtPeriodEnd).To(HaveValue(BeFalse()))
				g.Expect(p.PauseCollection).To(HaveValue(Equal("void")))
				g.Expect(p.ProrationBehavior).To(BeEmpty(), "no item change, no proration")
			},
		},
		{
			name:      "unpause",
			desired:   []desiredItem{{PriceID: "price_basic", Quantity: 2}},
			meta:      manageMeta,
			sub:       func(s *stripe.Subscription) { s.PauseCollection = "keep_as_draft" },
			wantTexts: []string{"pause_collection is keep_as_draft in Stripe, off declared"},
			check: func(g Gomega, p stripe.SubscriptionUpdateParams) {
				g.Expect(p.PauseCollection).To(HaveValue(Equal("")))
			},
		},
		{
			name:      "metadata",
			desired:   []desiredItem{{PriceID: "price_basic", Quantity: 2}},
			meta:      map[string]string{"team": "b", billingv1alpha1.StripeMetadataUID: "u1"},
			sub:       func(s *stripe.Subscription) { s.Metadata["extra"] = "x" },
			wantTexts: []string{"metadata differs in keys extra, team"},
			check: func(g Gomega, p stripe.SubscriptionUpdateParams) {
				g.Expect(p.Metadata).To(Equal(map[string]string{"extra": "", "team": "b"}))
			},
		},
		{
			name:    "observe mode ignores the operator's keys",
			desired: []desiredItem{{PriceID: "price_basic", Quantity: 2}},
			meta:    map[string]string{"team": "a"},
			observe: true,
		},
		{
			name: "collection method",
			spec: func(s *billingv1alpha1.StripeSubscriptionSpec) {
				s.CollectionMethod = "send_invoice"
				d := int64(30)
				s.DaysUntilDue = &d
			},
			desired:   []desiredItem{{PriceID: "price_basic", Quantity: 2}},
			meta:      manageMeta,
			wantTexts: []string{"collection_method is charge_automatically in Stripe, send_invoice declared"},
			check: func(g Gomega, p stripe.SubscriptionUpdateParams) {
				g.Expect(p.CollectionMethod).To(HaveValue(Equal("send_invoice")))
				g.Expect(p.DaysUntilDue).To(HaveValue(Equal(int64(30))))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			sp := spec()
			if tt.spec != nil {
				tt.spec(sp)
			}
			sub := base()
			if tt.sub != nil {
				tt.sub(sub)
			}
			d := diffSubscription(sp, tt.desired, tt.meta, tt.observe, sub)
			g.Expect(d.texts()).To(Equal(append([]string{}, tt.wantTexts...)))
			g.Expect(d.params.Items).To(Equal(tt.wantItems))
			g.Expect(d.onlyRollover()).To(Equal(tt.wantRollover))
			if tt.check != nil {
				tt.check(g, d.params)
			}
		})
	}
}

func TestPaymentCondition(t *testing.T) {
	tests := []struct {
		name       string
		sub        stripe.Subscription
		wantStatus metav1.ConditionStatus
		wantReason string
		wantInMsg  []string
	}{
		{"active paid", stripe.Subscription{Status: "active", LatestInvoice: &stripe.Invoice{ID: "in_1", Status: "paid", AmountDue: 1000}},
			metav1.ConditionFalse, billingv1alpha1.ReasonPaid, nil},
		{"no invoice", stripe.Subscription{Status: "trialing"}, metav1.ConditionFalse, billingv1alpha1.ReasonPaid, nil},
		{"declined, retrying", stripe.Subscription{Status: "past_due", LatestInvoice: &stripe.Invoice{ID: "in_1", Status: "open", AmountDue: 1000, Currency: "usd", AttemptCount: 2, Attempted: true, PaymentError: "card_declined", NextPaymentAttempt: 1800000000}},
			metav1.ConditionTrue, billingv1alpha1.ReasonPaymentDeclined, []string{"in_1", "(10.00 USD)", "card_declined", "2 attempts", "2027-01-15T08:00:00Z"}},
		{"declined first invoice", stripe.Subscription{Status: "incomplete", LatestInvoice: &stripe.Invoice{ID: "in_1", Status: "open", AttemptCount: 1, PaymentError: "card_declined"}},
			metav1.ConditionTrue, billingv1alpha1.ReasonPaymentDeclined, []string{"1 attempt", "no further attempt"}},
		{"requires action", stripe.Subscription{Status: "incomplete", LatestInvoice: &stripe.Invoice{ID: "in_1", Status: "open", AttemptCount: 1, PaymentIntentStatus: "requires_action"}},
			metav1.ConditionTrue, billingv1alpha1.ReasonAuthenticationRequired, []string{"authenticate"}},
		{"authentication_required code", stripe.Subscription{Status: "past_due", LatestInvoice: &stripe.Invoice{ID: "in_1", Status: "open", AttemptCount: 1, PaymentError: "authentication_required", NextPaymentAttempt: 1800000000}},
			metav1.ConditionTrue, billingv1alpha1.ReasonAuthenticationRequired, nil},
		{"unpaid", stripe.Subscription{Status: "unpaid", LatestInvoice: &stripe.Invoice{ID: "in_1", Status: "open", AttemptCount: 4, PaymentError: "card_declined"}},
			metav1.ConditionTrue, billingv1alpha1.ReasonRetriesExhausted, []string{"4 attempts"}},
		{"past_due no next attempt", stripe.Subscription{Status: "past_due", LatestInvoice: &stripe.Invoice{ID: "in_1", Status: "open", AttemptCount: 4, PaymentError: "card_declined"}},
			metav1.ConditionTrue, billingv1alpha1.ReasonRetriesExhausted, nil},
		{"incomplete awaiting confirmation", stripe.Subscription{Status: "incomplete", LatestInvoice: &stripe.Invoice{ID: "in_1", Status: "open"}},
			metav1.ConditionFalse, billingv1alpha1.ReasonPaid, []string{"awaits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := paymentCondition(&tt.sub)
			g.Expect(c.status).To(Equal(tt.wantStatus))
			g.Expect(c.reason).To(Equal(tt.wantReason))
			for _, s := range tt.wantInMsg {
				g.Expect(c.message).To(ContainSubstring(s))
			}
			g.Expect(paymentCondition(&tt.sub)).To(Equal(c), "stable between identical passes")
		})
	}
}

func TestInvoiceNote(t *testing.T) {
	desired := []desiredItem{{PriceID: "price_a", Quantity: 2, UnitAmount: 1000, Currency: "usd"}}
	expected := expectedAmount(desired)
	inv := func(mut func(*stripe.Invoice)) *stripe.Subscription {
		i := &stripe.Invoice{ID: "in_1", Currency: "usd", BillingReason: "subscription_cycle", Subtotal: 2000, AmountDue: 2000, Total: 2000,
			Lines: []stripe.InvoiceLine{{PriceID: "price_a", Quantity: 2, Amount: 2000}}}
		if mut != nil {
			mut(i)
		}
		return &stripe.Subscription{Status: "active", LatestInvoice: i}
	}
	tests := []struct {
		name      string
		sub       *stripe.Subscription
		wantDrift string
		wantNote  string
	}{
		{"matches", inv(nil), "", ""},
		{"billed another amount", inv(func(i *stripe.Invoice) { i.Lines[0].Amount = 1500; i.AmountDue = 1500 }), "bills 15.00 USD for the declared items, 20.00 USD expected", ""},
		{"tax and discount explained", inv(func(i *stripe.Invoice) { i.Tax = 200; i.DiscountAmount = 500; i.AmountDue = 1700 }), "", "because of discounts -5.00 USD; tax 2.00 USD"},
		{"mid-period prorations", inv(func(i *stripe.Invoice) {
			i.BillingReason = "subscription_update"
			i.Lines = []stripe.InvoiceLine{{PriceID: "price_a", Quantity: 2, Amount: 700, Proration: true}}
		}), "", "holds prorations (7.00 USD)"},
		{"invoice for other items is not compared", inv(func(i *stripe.Invoice) { i.Lines[0].Quantity = 5; i.Lines[0].Amount = 5000 }), "", ""},
		{"trial invoice", func() *stripe.Subscription {
			s := inv(func(i *stripe.Invoice) { i.Lines[0].Amount = 0; i.Created = 100 })
			s.TrialEnd = 200
			return s
		}(), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			drift, note := invoiceNote(tt.sub, desired, expected)
			if tt.wantDrift == "" {
				g.Expect(drift).To(BeEmpty())
			} else {
				g.Expect(drift).To(ContainSubstring(tt.wantDrift))
			}
			if tt.wantNote == "" {
				g.Expect(note).To(BeEmpty())
			} else {
				g.Expect(note).To(ContainSubstring(tt.wantNote))
			}
		})
	}
}
