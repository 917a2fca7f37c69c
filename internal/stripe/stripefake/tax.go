package stripefake

import (
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Tax and billing dates in the fake.
//
// Modelled as Stripe documents it:
//   - customer address, shipping and tax_exempt
//     (https://docs.stripe.com/api/customers/object), and customer.tax,
//     included only when expanded, whose automatic_tax says whether Stripe
//     Tax can locate the customer: supported, not_collecting,
//     unrecognized_location ("Collect customer addresses",
//     https://docs.stripe.com/tax/customer-locations: the shipping address
//     first, then the billing address; country, and the postal code in the
//     US and Canada);
//   - customer tax IDs as separate, immutable objects: create and delete,
//     listed and included in the customer with expand[]=tax_ids
//     (https://docs.stripe.com/api/tax_ids);
//   - tax rates: percentage and inclusive, immutable once created
//     (https://docs.stripe.com/api/tax_rates);
//   - default_tax_rates and automatic_tax on subscriptions, and the tax of
//     their invoices: exclusive tax is added on top of the lines,
//     inclusive tax is part of them ("Tax behavior",
//     https://docs.stripe.com/tax/products-prices-tax-codes-tax-behavior);
//     invoice tax, total_tax_amounts, total and total_excluding_tax
//     (https://docs.stripe.com/api/invoices/object);
//   - a subscription with automatic tax for a customer Stripe Tax cannot
//     locate is refused at creation with customer_tax_location_invalid; a
//     later invoice for such a customer reports automatic_tax.status
//     requires_location_inputs and is not finalized (invoice.finalization_failed),
//     as "Collect customer addresses" describes for API 2023-10-16;
//   - billing_cycle_anchor and billing_cycle_anchor_config[day_of_month]:
//     the first period runs to the anchor and is prorated (or free with
//     proration_behavior none), full periods follow from it ("Setting the
//     subscription billing date", https://docs.stripe.com/billing/subscriptions/billing-cycle);
//     a day of the month past a month's end bills on its last day;
//   - trial_end as an alternative to trial_period_days, and trial_end on an
//     update, which starts or moves a trial
//     (https://docs.stripe.com/billing/subscriptions/trials);
//   - billing_cycle_anchor=now on an update resets the period at once,
//     prorating the unused time as proration_behavior says.
//
// Simplifications (listed in docs/tax-and-billing-dates.md):
//   - Stripe Tax is a fixed rate by country (taxRateByCountry), the same for
//     every product; an account registered everywhere in that table, not
//     collecting elsewhere. Real Stripe Tax depends on registrations,
//     product tax codes, states and thresholds.
//   - tax_exempt exempt or reverse makes Stripe Tax tax nothing; manual tax
//     rates are applied whatever tax_exempt says.
//   - Tax is rounded per line, half away from zero (Stripe's default
//     line-item rounding).
//   - A price's tax_behavior unspecified is taxed as exclusive (the
//     account's default tax behavior set to exclusive).
//   - Tax ID verification is pending for eu_vat and gb_vat, unavailable
//     otherwise; it never completes.

// taxRateByCountry is the fake's Stripe Tax: percent by country.
var taxRateByCountry = map[string]string{
	"AT": "20", "BE": "21", "DE": "19", "ES": "21", "FR": "20", "GB": "20", "IE": "23",
	"IT": "22", "NL": "21", "SE": "25", "AU": "10", "NZ": "15", "CA": "5",
}

type taxRate struct {
	id, displayName, percentage string
	inclusive, active           bool
	created                     int64
}

func (t *taxRate) json() map[string]any {
	p, _ := strconv.ParseFloat(t.percentage, 64)
	return map[string]any{"id": t.id, "object": "tax_rate", "display_name": t.displayName, "percentage": p,
		"effective_percentage": p, "inclusive": t.inclusive, "active": t.active, "created": t.created, "livemode": false,
		"metadata": map[string]string{}, "country": nil, "jurisdiction": nil, "tax_type": nil}
}

type taxID struct {
	id, customer, typ, value, verification string
	created                                int64
}

func (t *taxID) json() map[string]any {
	return map[string]any{"id": t.id, "object": "tax_id", "customer": t.customer, "type": t.typ, "value": t.value,
		"country": strings.ToUpper(t.typ[:2]), "created": t.created, "livemode": false,
		"verification": map[string]any{"status": t.verification, "verified_address": nil, "verified_name": nil}}
}

// customerTax is the tax part of a customer.
type customerTax struct {
	address   map[string]string // line1, line2, city, state, postal_code, country; nil when none
	shipping  map[string]string // name, phone and the address keys; nil when none
	taxExempt string
	taxIDs    []*taxID
}

var addressKeys = []string{"line1", "line2", "city", "state", "postal_code", "country"}

func addressJSON(a map[string]string) any {
	if a == nil {
		return nil
	}
	out := map[string]any{}
	for _, k := range addressKeys {
		out[k] = nullable(a[k])
	}
	return out
}

func (t *customerTax) json(m map[string]any) {
	m["address"] = addressJSON(t.address)
	if t.shipping == nil {
		m["shipping"] = nil
	} else {
		m["shipping"] = map[string]any{"name": t.shipping["name"], "phone": nullable(t.shipping["phone"]), "address": addressJSON(t.shipping)}
	}
	exempt := t.taxExempt
	if exempt == "" {
		exempt = "none"
	}
	m["tax_exempt"] = exempt
}

// location is the country Stripe Tax locates the customer in ("" when it
// cannot): the shipping address, else the billing address.
func (t *customerTax) location() (country string, status string) {
	a := t.address
	if t.shipping != nil && t.shipping["country"] != "" {
		a = t.shipping
	}
	if a == nil || a["country"] == "" {
		return "", "unrecognized_location"
	}
	c := a["country"]
	if (c == "US" || c == "CA") && a["postal_code"] == "" {
		return "", "unrecognized_location"
	}
	if _, ok := taxRateByCountry[c]; !ok {
		return c, "not_collecting"
	}
	return c, "supported"
}

// customerView renders a customer with what the request expanded.
func (s *Server) customerView(c *customer, r *request) map[string]any {
	m := c.json()
	if c.deleted {
		return m
	}
	if r != nil && r.expand["tax"] {
		_, status := c.tax.location()
		m["tax"] = map[string]any{"automatic_tax": status, "ip_address": nil, "location": nil}
	}
	if r != nil && r.expand["tax_ids"] {
		data := []any{}
		for _, t := range c.tax.taxIDs {
			data = append(data, t.json())
		}
		m["tax_ids"] = map[string]any{"object": "list", "data": data, "has_more": false, "url": "/v1/customers/" + c.id + "/tax_ids"}
	}
	return m
}

var countryRE = regexp.MustCompile(`^[A-Z]{2}$`)

// readAddress reads prefix[line1]... ; present is false when none was
// sent; clear is true for prefix="" (remove).
func readAddress(r *request, prefix string) (addr map[string]string, present, clear bool, err *apiError) {
	if v, ok := r.str(prefix); ok && v == "" {
		return nil, true, true, nil
	}
	addr = map[string]string{}
	for _, k := range addressKeys {
		if v, ok := r.str(prefix + "[" + k + "]"); ok {
			present = true
			addr[k] = v
		}
	}
	if c := addr["country"]; c != "" && !countryRE.MatchString(c) {
		return nil, false, false, invalid(prefix+"[country]", "Country '%s' is unknown. Try using a 2-character alphanumeric country code instead, such as 'US', 'EG', or 'GB'.", c)
	}
	return addr, present, false, nil
}

// setCustomerTaxFields applies address, shipping and tax_exempt.
func (s *Server) setCustomerTaxFields(r *request, c *customer) *apiError {
	addr, present, clear, err := readAddress(r, "address")
	if err != nil {
		return err
	}
	switch {
	case clear:
		c.tax.address = nil
	case present:
		c.tax.address = addr
	}
	if v, ok := r.str("shipping"); ok && v == "" {
		c.tax.shipping = nil
	} else if name, ok := r.str("shipping[name]"); ok {
		sh, _, _, err := readAddress(r, "shipping[address]")
		if err != nil {
			return err
		}
		sh["name"] = name
		sh["phone"], _ = r.str("shipping[phone]")
		c.tax.shipping = sh
	} else if _, ok := r.str("shipping[address][country]"); ok {
		return invalid("shipping[name]", "Missing required param: shipping[name].")
	}
	if v, ok := r.str("tax_exempt"); ok {
		switch v {
		case "none", "exempt", "reverse", "":
			c.tax.taxExempt = v
		default:
			return invalid("tax_exempt", "Invalid tax_exempt: must be one of none, exempt, or reverse")
		}
	}
	return nil
}

// taxIDTypes are the tax ID types the fake accepts (a subset of Stripe's,
// https://docs.stripe.com/api/tax_ids/create#create_tax_id-type).
var taxIDTypes = map[string]*regexp.Regexp{
	"eu_vat": regexp.MustCompile(`^[A-Z]{2}[0-9A-Z]{2,13}$`),
	"gb_vat": regexp.MustCompile(`^GB[0-9]{9}([0-9]{3})?$`),
	"ch_vat": regexp.MustCompile(`^CHE-?[0-9]{3}\.?[0-9]{3}\.?[0-9]{3}`),
	"us_ein": regexp.MustCompile(`^[0-9]{2}-[0-9]{7}$`),
	"au_abn": regexp.MustCompile(`^[0-9]{11}$`),
	"ca_bn":  regexp.MustCompile(`^[0-9]{9}$`),
	"no_vat": regexp.MustCompile(`^[0-9]{9}MVA$`),
}

func (s *Server) customerForTaxID(id string) (*customer, *apiError) {
	c, ok := s.customers[id]
	if !ok || c.deleted {
		return nil, missing("customer", id)
	}
	return c, nil
}

func (s *Server) createTaxID(r *request, cid string) (any, *apiError) {
	c, err := s.customerForTaxID(cid)
	if err != nil {
		return nil, err
	}
	typ, _ := r.str("type")
	value, _ := r.str("value")
	re, ok := taxIDTypes[typ]
	if !ok {
		return nil, invalid("type", "Invalid value for type: %s", typ)
	}
	if !re.MatchString(value) {
		return nil, &apiError{status: 400, Type: "invalid_request_error", Code: "tax_id_invalid", Param: "value",
			Message: fmt.Sprintf("Invalid value for %s.", typ)}
	}
	verification := "unavailable"
	if typ == "eu_vat" || typ == "gb_vat" {
		verification = "pending"
	}
	t := &taxID{id: s.newID("txi"), customer: cid, typ: typ, value: value, verification: verification, created: s.now.Unix()}
	c.tax.taxIDs = append(c.tax.taxIDs, t)
	s.track("tax_id", t.id)
	s.emit(r, "customer.tax_id.created", t.json(), nil)
	return t.json(), nil
}

func (s *Server) deleteTaxID(r *request, cid, id string) (any, *apiError) {
	c, err := s.customerForTaxID(cid)
	if err != nil {
		return nil, err
	}
	for i, t := range c.tax.taxIDs {
		if t.id == id {
			c.tax.taxIDs = append(c.tax.taxIDs[:i:i], c.tax.taxIDs[i+1:]...)
			s.emit(r, "customer.tax_id.deleted", t.json(), nil)
			return map[string]any{"id": id, "object": "tax_id", "deleted": true}, nil
		}
	}
	return nil, missing("tax_id", id)
}

func (s *Server) listTaxIDs(cid string) (any, *apiError) {
	c, err := s.customerForTaxID(cid)
	if err != nil {
		return nil, err
	}
	data := []any{}
	for _, t := range c.tax.taxIDs {
		data = append(data, t.json())
	}
	return map[string]any{"object": "list", "data": data, "has_more": false, "url": "/v1/customers/" + cid + "/tax_ids"}, nil
}

// taxPercentRE: a tax rate percentage, at most four decimals.
var taxPercentRE = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,4})?$`)

func (s *Server) createTaxRate(r *request) (any, *apiError) {
	name, _ := r.str("display_name")
	if name == "" {
		return nil, invalid("display_name", "Missing required param: display_name.")
	}
	pct, _ := r.str("percentage")
	if !taxPercentRE.MatchString(pct) {
		return nil, invalid("percentage", "Invalid percentage: %s", pct)
	}
	inclusive, ok := r.bool("inclusive")
	if !ok {
		return nil, invalid("inclusive", "Missing required param: inclusive.")
	}
	t := &taxRate{id: s.newID("txr"), displayName: name, percentage: normalizePercent(pct), inclusive: inclusive, active: true, created: s.now.Unix()}
	s.taxRates()[t.id] = t
	s.track("tax_rate", t.id)
	return t.json(), nil
}

func (s *Server) taxRates() map[string]*taxRate {
	if s.rates == nil {
		s.rates = map[string]*taxRate{}
	}
	return s.rates
}

func (s *Server) getTaxRate(id string) (any, *apiError) {
	t, ok := s.taxRates()[id]
	if !ok {
		return nil, missing("tax_rate", id)
	}
	return t.json(), nil
}

// CreateTaxRate makes a tax rate as the Dashboard would and returns its ID.
func (s *Server) CreateTaxRate(displayName, percentage string, inclusive bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &taxRate{id: s.newID("txr"), displayName: displayName, percentage: normalizePercent(percentage), inclusive: inclusive, active: true, created: s.now.Unix()}
	s.taxRates()[t.id] = t
	s.track("tax_rate", t.id)
	return t.id
}

// DashboardSetCustomerAddress sets (or, with a nil address, removes) a
// customer's billing address behind the operator's back. Keys: line1,
// line2, city, state, postal_code, country.
func (s *Server) DashboardSetCustomerAddress(id string, addr map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok || c.deleted {
		return fmt.Errorf("no such customer %s", id)
	}
	before := c.json()
	c.tax.address = copyMeta(addr)
	if addr == nil {
		c.tax.address = nil
	}
	s.emitUpdated(nil, "customer.updated", before, c.json())
	return nil
}

// subscriptionTax is the tax and billing-date part of a subscription.
type subscriptionTax struct {
	automatic bool
	rates     []string
	// anchor is billing_cycle_anchor; anchorDay the configured day of the
	// month (0: none).
	anchor    int64
	anchorDay int64
	// anchored: periods follow the anchor (an explicit anchor or day of
	// the month), months clamped to their last day.
	anchored bool
}

func (t *subscriptionTax) json(s *Server, m map[string]any) {
	m["automatic_tax"] = map[string]any{"enabled": t.automatic, "liability": nil}
	rates := []any{}
	for _, id := range t.rates {
		if r := s.taxRates()[id]; r != nil {
			rates = append(rates, r.json())
		}
	}
	m["default_tax_rates"] = rates
	m["billing_cycle_anchor"] = t.anchor
	if t.anchorDay != 0 {
		m["billing_cycle_anchor_config"] = map[string]any{"day_of_month": t.anchorDay, "hour": 0, "minute": 0, "second": 0, "month": nil}
	} else {
		m["billing_cycle_anchor_config"] = nil
	}
}

// parseSubscriptionTax reads automatic_tax and default_tax_rates of a
// create or update into t.
func (s *Server) parseSubscriptionTax(r *request, t *subscriptionTax, customerID string) *apiError {
	if v, ok := r.bool("automatic_tax[enabled]"); ok {
		t.automatic = v
	}
	if ids, ok := r.strList("default_tax_rates"); ok {
		for _, id := range ids {
			rate, found := s.taxRates()[id]
			if !found {
				return missing("tax_rate", id)
			}
			if !rate.active {
				return invalid("default_tax_rates", "Tax rate %s is inactive.", id)
			}
		}
		t.rates = ids
	}
	if t.automatic && len(t.rates) > 0 {
		// "Automatic tax ... cannot be used with tax rates": invoices with
		// automatic tax accept no manual tax rates
		// (https://docs.stripe.com/api/invoices/object#invoice_object-automatic_tax-enabled).
		return invalid("default_tax_rates", "You cannot use default_tax_rates with automatic_tax[enabled]=true.")
	}
	if t.automatic {
		if c := s.customers[customerID]; c != nil {
			if _, status := c.tax.location(); status == "unrecognized_location" {
				return &apiError{status: 400, Type: "invalid_request_error", Code: "customer_tax_location_invalid", Param: "customer",
					Message: "The customer's location isn't recognized. Set a valid address (country, and postal code in the US and Canada) on the customer to use automatic tax."}
			}
		}
	}
	return nil
}

// firstPeriodEnd applies trial_end, billing_cycle_anchor and
// billing_cycle_anchor_config to a new subscription. It returns the end of
// the first period, whether it is a trial, and whether the first period
// is a partial one up to the anchor.
func (s *Server) firstPeriodEnd(r *request, sub *subscription, interval string, count int64) (end int64, trial, partial bool, err *apiError) {
	now := s.now.Unix()
	if v, ok := r.str("trial_end"); ok {
		te, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || te <= now {
			return 0, false, false, invalid("trial_end", "Invalid timestamp: must be an integer Unix timestamp in the future.")
		}
		if te > s.now.AddDate(2, 0, 0).Unix() {
			return 0, false, false, invalid("trial_end", "Invalid timestamp: can be no more than two years in the future.")
		}
		end, trial = te, true
	}
	anchor, hasAnchor, perr := r.int("billing_cycle_anchor")
	if perr != nil {
		return 0, false, false, perr
	}
	day, hasDay, perr := r.int("billing_cycle_anchor_config[day_of_month]")
	if perr != nil {
		return 0, false, false, perr
	}
	if hasAnchor && hasDay {
		return 0, false, false, invalid("billing_cycle_anchor_config", "You may only specify one of billing_cycle_anchor and billing_cycle_anchor_config.")
	}
	if hasDay {
		if day < 1 || day > 31 {
			return 0, false, false, invalid("billing_cycle_anchor_config[day_of_month]", "day_of_month must be between 1 and 31.")
		}
		if interval != "month" && interval != "year" {
			return 0, false, false, invalid("billing_cycle_anchor_config", "billing_cycle_anchor_config is only valid with monthly and yearly price intervals.")
		}
		// The next occurrence of the day at midnight UTC.
		from := s.now.UTC()
		if trial {
			from = time.Unix(end, 0).UTC()
		}
		anchor = nextDayOfMonth(from, int(day)).Unix()
		hasAnchor = true
		sub.tax.anchorDay = day
	} else if hasAnchor {
		if anchor <= now {
			return 0, false, false, invalid("billing_cycle_anchor", "billing_cycle_anchor must be in the future.")
		}
		if anchor > addInterval(s.now, interval, count).Unix() && !trial {
			return 0, false, false, invalid("billing_cycle_anchor", "billing_cycle_anchor cannot be later than next natural billing date (%d) for plan", addInterval(s.now, interval, count).Unix())
		}
	}
	sub.tax.anchored = hasAnchor
	switch {
	case trial && hasAnchor:
		if anchor < end {
			return 0, false, false, invalid("billing_cycle_anchor", "billing_cycle_anchor cannot be before trial_end.")
		}
		sub.tax.anchor = anchor
		return end, true, false, nil
	case trial:
		sub.tax.anchor = end
		return end, true, false, nil
	case hasAnchor:
		sub.tax.anchor = anchor
		if anchor == now {
			return addInterval(s.now, interval, count).Unix(), false, false, nil
		}
		return anchor, false, true, nil
	}
	sub.tax.anchor = now
	return addInterval(s.now, interval, count).Unix(), false, false, nil
}

// nextDayOfMonth is the first midnight UTC strictly after from on the
// given day of the month (the month's last day when it is shorter).
func nextDayOfMonth(from time.Time, day int) time.Time {
	for m := 0; m < 13; m++ {
		y, mon, _ := from.AddDate(0, 0, 0).Date()
		first := time.Date(y, mon, 1, 0, 0, 0, 0, time.UTC).AddDate(0, m, 0)
		last := first.AddDate(0, 1, -1).Day()
		t := first.AddDate(0, 0, min(day, last)-1)
		if t.After(from) {
			return t
		}
	}
	return from
}

// anchoredPeriodEnd is the end of the period that starts at start for a
// subscription anchored on anchor: the next date after start that is
// anchor plus whole intervals, months clamped to their last day.
func anchoredPeriodEnd(anchor, start int64, interval string, count int64) int64 {
	a := time.Unix(anchor, 0).UTC()
	if interval != "month" && interval != "year" {
		return addInterval(time.Unix(start, 0), interval, count).Unix()
	}
	months := int(count)
	if interval == "year" {
		months = 12 * int(count)
	}
	for k := 0; k < 10000; k++ {
		first := time.Date(a.Year(), a.Month(), 1, a.Hour(), a.Minute(), a.Second(), 0, time.UTC).AddDate(0, k*months, 0)
		last := first.AddDate(0, 1, -1).Day()
		t := first.AddDate(0, 0, min(a.Day(), last)-1)
		if t.Unix() > start {
			return t.Unix()
		}
	}
	return addInterval(time.Unix(start, 0), interval, count).Unix()
}

// partialPeriodLines prorate each item for the time from now to the
// anchor: the share of the full period that would end at the anchor
// ("Setting the subscription billing date": "the customer is charged a
// prorated amount for the time between the subscription creation date and
// the billing cycle anchor"). proration_behavior none bills nothing.
func (s *Server) partialPeriodLines(sub *subscription, interval string, count int64, none bool) []line {
	anchor := sub.periodEnd
	full := anchor - backInterval(time.Unix(anchor, 0).UTC(), interval, count).Unix()
	left := anchor - s.now.Unix()
	var out []line
	for _, it := range sub.items {
		amt := int64(0)
		if !none && full > 0 {
			amt = roundDiv(s.prices[it.price].unitAmount*it.quantity*left, full)
		}
		out = append(out, line{amount: amt, proration: true, price: it.price, quantity: it.quantity, desc: "Remaining time until the billing cycle anchor"})
	}
	return out
}

func backInterval(t time.Time, interval string, count int64) time.Time {
	n := int(count)
	switch interval {
	case "day":
		return t.AddDate(0, 0, -n)
	case "week":
		return t.AddDate(0, 0, -7*n)
	case "year":
		return t.AddDate(-n, 0, 0)
	default:
		return t.AddDate(0, -n, 0)
	}
}

// roundDiv is a*1/d rounded half away from zero.
func roundDiv(a, d int64) int64 {
	if d == 0 {
		return 0
	}
	q := new(big.Rat).SetFrac64(a, d)
	return roundRat(q)
}

func roundRat(q *big.Rat) int64 {
	neg := q.Sign() < 0
	abs := new(big.Rat).Abs(q)
	abs.Add(abs, big.NewRat(1, 2))
	n := new(big.Int).Quo(abs.Num(), abs.Denom()).Int64()
	if neg {
		return -n
	}
	return n
}

// invoiceTax is the tax of an invoice.
type invoiceTax struct {
	automatic bool
	// status is automatic_tax.status when automatic.
	status string
	// amounts by tax rate ID ("" for Stripe Tax) and inclusiveness.
	amounts   []taxAmount
	exclusive int64
	inclusive int64
}

type taxAmount struct {
	rate      string
	inclusive bool
	amount    int64
}

// computeTax sets in.tax from the subscription's tax settings and adds
// exclusive tax to the amount due.
func (s *Server) computeTax(in *invoice, sub *subscription) {
	c := s.customers[sub.customer]
	t := invoiceTax{automatic: sub.tax.automatic}
	type rate struct {
		id, pct   string
		inclusive bool
		byPrice   bool // inclusiveness from the price's tax_behavior
	}
	var rates []rate
	switch {
	case sub.tax.automatic:
		country, status := "", "unrecognized_location"
		if c != nil {
			country, status = c.tax.location()
		}
		switch {
		case status == "unrecognized_location":
			t.status = "requires_location_inputs"
		case c.tax.taxExempt == "exempt" || c.tax.taxExempt == "reverse" || status == "not_collecting":
			t.status = "complete" // zero tax
		default:
			t.status = "complete"
			rates = append(rates, rate{id: "", pct: taxRateByCountry[country], byPrice: true})
		}
	default:
		for _, id := range sub.tax.rates {
			if r := s.taxRates()[id]; r != nil {
				rates = append(rates, rate{id: id, pct: r.percentage, inclusive: r.inclusive})
			}
		}
	}
	byKey := map[string]*taxAmount{}
	for _, l := range in.lines {
		for _, r := range rates {
			inclusive := r.inclusive
			if r.byPrice {
				inclusive = s.prices[l.price] != nil && s.prices[l.price].terms.taxBehavior == "inclusive"
			}
			amt := lineTax(l.amount, r.pct, inclusive)
			key := r.id + "/" + strconv.FormatBool(inclusive)
			if byKey[key] == nil {
				byKey[key] = &taxAmount{rate: r.id, inclusive: inclusive}
			}
			byKey[key].amount += amt
			if inclusive {
				t.inclusive += amt
			} else {
				t.exclusive += amt
			}
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.amounts = append(t.amounts, *byKey[k])
	}
	in.tax = t
	in.amountDue += t.exclusive
	if in.amountDue < 0 {
		in.amountDue = 0
	}
}

// lineTax is the tax of one line at pct percent: exclusive tax is
// amount*pct/100; inclusive tax is the part of amount that is tax,
// amount - amount/(1+pct/100). Both rounded half away from zero.
func lineTax(amount int64, pct string, inclusive bool) int64 {
	p, ok := new(big.Rat).SetString(pct)
	if !ok {
		return 0
	}
	p.Quo(p, big.NewRat(100, 1))
	a := new(big.Rat).SetInt64(amount)
	if !inclusive {
		return roundRat(a.Mul(a, p))
	}
	net := new(big.Rat).Quo(a, new(big.Rat).Add(big.NewRat(1, 1), p))
	return roundRat(new(big.Rat).Sub(new(big.Rat).SetInt64(amount), net))
}

// taxJSON adds the tax fields to an invoice's JSON.
func (in *invoice) taxJSON(m map[string]any, subtotal int64) {
	amounts := []any{}
	for _, a := range in.tax.amounts {
		var rate any
		if a.rate != "" {
			rate = a.rate
		}
		amounts = append(amounts, map[string]any{"amount": a.amount, "inclusive": a.inclusive, "tax_rate": rate,
			"taxability_reason": nil, "taxable_amount": nil})
	}
	m["total_tax_amounts"] = amounts
	var status any
	if in.tax.automatic {
		status = in.tax.status
	}
	m["automatic_tax"] = map[string]any{"enabled": in.tax.automatic, "status": status, "liability": nil}
	if in.tax.automatic || len(in.tax.amounts) > 0 {
		m["tax"] = in.tax.exclusive + in.tax.inclusive
	}
	// total and total_excluding_tax include discounts
	// (https://docs.stripe.com/api/invoices/object#invoice_object-total_excluding_tax).
	m["total"] = subtotal - in.discountAmount + in.tax.exclusive
	m["total_excluding_tax"] = subtotal - in.discountAmount - in.tax.inclusive
	m["subtotal_excluding_tax"] = subtotal - in.tax.inclusive
}

// locationMissing reports whether an invoice cannot be finalized because
// automatic tax cannot locate the customer.
func (in *invoice) locationMissing() bool {
	return in.tax.automatic && in.tax.status == "requires_location_inputs"
}

// updateBillingDates applies trial_end and billing_cycle_anchor of an
// update to next. trial_end in the future starts a trial until then (on a
// trialing subscription, moves its end); the trial's time is free, and
// the unused paid time is credited unless proration_behavior is none
// (https://docs.stripe.com/billing/subscriptions/trials, "Change the trial
// period"; https://docs.stripe.com/api/subscriptions/update#update_subscription-trial_end).
func (s *Server) updateBillingDates(r *request, sub, next *subscription) *apiError {
	if v, ok := r.str("billing_cycle_anchor"); ok {
		switch {
		case v == "unchanged":
		case v == "now" && sub.status == "trialing":
			// Not modelled by the fake (listed in docs/tax-and-billing-dates.md).
			return invalid("billing_cycle_anchor", "The test-mode fake does not model billing_cycle_anchor=now on a trialing subscription.")
		case v == "now":
		default:
			return invalid("billing_cycle_anchor", "Invalid billing_cycle_anchor: must be one of now or unchanged")
		}
	}
	v, ok := r.str("trial_end")
	if !ok {
		return nil
	}
	if v == "now" {
		return invalid("trial_end", "The test-mode fake does not model trial_end=now.")
	}
	te, err := strconv.ParseInt(v, 10, 64)
	if err != nil || te <= s.now.Unix() {
		return invalid("trial_end", "Invalid timestamp: must be an integer Unix timestamp in the future.")
	}
	if sub.status != "trialing" {
		if pb, _ := r.str("proration_behavior"); pb != "none" {
			next.prorations = append(next.prorations, s.unusedTime(sub, s.now.Unix())...)
		}
		next.periodStart = s.now.Unix()
	}
	next.status, next.trialEnd, next.periodEnd, next.trialWillEndSent = "trialing", te, te, false
	next.tax.anchor, next.tax.anchored, next.tax.anchorDay = te, false, 0
	return nil
}

// anchorResets reports whether an update resets the billing cycle anchor
// to now (billing_cycle_anchor=now): the period restarts and is invoiced at
// once, crediting the unused time unless proration_behavior is none
// ("Billing cycle", https://docs.stripe.com/billing/subscriptions/billing-cycle#changing).
func (s *Server) anchorResets(r *request, sub *subscription) bool {
	v, _ := r.str("billing_cycle_anchor")
	return v == "now" && sub.status != "trialing"
}

// DashboardSetDefaultTaxRates replaces a subscription's default tax rates
// behind the operator's back.
func (s *Server) DashboardSetDefaultTaxRates(subID string, rates []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.dashboardSub(subID)
	if err != nil {
		return err
	}
	before := s.subJSON(sub, nil)
	sub.tax.rates = append([]string(nil), rates...)
	s.emitUpdated(nil, "customer.subscription.updated", before, s.subJSON(sub, nil))
	return nil
}

// DashboardSetTrialEnd moves a trialing subscription's trial end behind the
// operator's back.
func (s *Server) DashboardSetTrialEnd(subID string, end time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.dashboardSub(subID)
	if err != nil {
		return err
	}
	if sub.status != "trialing" {
		return fmt.Errorf("subscription %s is %s, not trialing", subID, sub.status)
	}
	before := s.subJSON(sub, nil)
	sub.trialEnd, sub.periodEnd = end.Unix(), end.Unix()
	if !sub.tax.anchored {
		sub.tax.anchor = end.Unix()
	}
	s.emitUpdated(nil, "customer.subscription.updated", before, s.subJSON(sub, nil))
	return nil
}
