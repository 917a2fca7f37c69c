package stripefake

import (
	"encoding/json"
	"strings"
)

// DefaultAPIVersion is the API version the fake speaks (stripe-go v76's).
const DefaultAPIVersion = "2023-10-16"

// API versions whose event payloads the fake can render, one per shape the
// operator must read (https://docs.stripe.com/changelog).
const (
	// APIVersionAcacia is a 2024 version of the Acacia release: invoice
	// and subscription fields the operator reads are as in 2023-10-16.
	APIVersionAcacia = "2024-09-30.acacia"
	// APIVersionBasil is the first Basil version, with the breaking
	// changes rendered below.
	APIVersionBasil = "2025-03-31.basil"
	// APIVersionClover is the first Clover version (flexible billing mode
	// by default; invoice and subscription shapes as in Basil).
	APIVersionClover = "2025-09-30.clover"
	// APIVersionDahlia is a Dahlia version (decimal fields typed in the
	// SDKs; invoice and subscription shapes as in Basil).
	APIVersionDahlia = "2026-03-25.dahlia"
	// APIVersionEndive is the Endive version of 2026-09-30 (invoice and
	// subscription shapes, in the fields the operator reads, as in Basil).
	APIVersionEndive = "2026-09-30.endive"
)

// basilOrLater tells whether version has the 2025-03-31.basil shapes.
// Versions are dated, so their date prefixes order them.
func basilOrLater(version string) bool {
	date, _, _ := strings.Cut(version, ".")
	return date >= "2025-03-31"
}

// renderEvent marshals the event ev (built in DefaultAPIVersion's shape)
// in version's shape.
func renderEvent(ev map[string]any, version string) []byte {
	out := deepCopy(ev).(map[string]any)
	out["api_version"] = version
	if data, ok := out["data"].(map[string]any); ok {
		if obj, ok := data["object"].(map[string]any); ok {
			renderObject(obj, version)
		}
		if prev, ok := data["previous_attributes"].(map[string]any); ok {
			renderPrevious(prev, version)
		}
	}
	b, _ := json.Marshal(out)
	return b
}

// renderObject rewrites an invoice or subscription (in place) into
// version's shape. From 2025-03-31.basil:
//   - an invoice's subscription and subscription_details move to
//     parent.subscription_details (docs: "Invoicing resources now specify
//     how they were generated"), and its payment_intent moves to the
//     invoice payments list (changelog: "Adds support for multiple partial
//     payments on invoices", payments.data[].payment.payment_intent), which
//     an event never carries: invoice.payments is includable, returned only
//     when a read expands it, and events are never expanded;
//   - a subscription's current_period_start/end move to each subscription
//     item (docs: "Adds subscription item-level billing periods and removes
//     subscription-level periods").
//
// Later releases (Clover, Dahlia, Endive) change neither object in the
// fields the operator reads.
func renderObject(obj map[string]any, version string) {
	if !basilOrLater(version) {
		return
	}
	switch obj["object"] {
	case "invoice":
		sub := obj["subscription"]
		var md any
		if d, ok := obj["subscription_details"].(map[string]any); ok {
			md = d["metadata"]
		}
		delete(obj, "subscription")
		delete(obj, "subscription_details")
		delete(obj, "subscription_proration_date")
		delete(obj, "quote")
		if sub != nil {
			obj["parent"] = map[string]any{"type": "subscription_details", "quote_details": nil,
				"subscription_details": map[string]any{"metadata": md, "subscription": sub, "subscription_proration_date": nil}}
		} else {
			obj["parent"] = nil
		}
		// The payment intent goes with the invoice payments, which are
		// includable only (expand[]=payments on a read) and so are absent
		// from events; the event carries neither.
		delete(obj, "payment_intent")
		delete(obj, "charge")
	case "subscription":
		start, end := obj["current_period_start"], obj["current_period_end"]
		delete(obj, "current_period_start")
		delete(obj, "current_period_end")
		if items, ok := obj["items"].(map[string]any); ok {
			if data, ok := items["data"].([]any); ok {
				for _, it := range data {
					if m, ok := it.(map[string]any); ok {
						m["current_period_start"], m["current_period_end"] = start, end
					}
				}
			}
		}
	}
}

// renderPrevious drops previous values of fields version does not have.
func renderPrevious(prev map[string]any, version string) {
	if !basilOrLater(version) {
		return
	}
	for _, k := range []string{"current_period_start", "current_period_end", "subscription", "subscription_details", "payment_intent"} {
		delete(prev, k)
	}
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case map[string]string:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = x
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = deepCopy(x)
		}
		return s
	}
	return v
}
