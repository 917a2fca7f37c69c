package stripefake

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Coupons, promotion codes and subscription discounts, as Stripe documents
// them at API version 2023-10-16:
//
//   - "Coupons and promotion codes"
//     (https://docs.stripe.com/billing/subscriptions/coupons): a coupon
//     takes a percentage or an amount off; its duration is once (the first
//     invoice), repeating (every invoice for duration_in_months months from
//     when it is applied: "a coupon with a duration of 4 months applies to
//     all invoices in the 4 month period starting when the coupon is
//     applied"; a yearly invoice in that window is discounted whole) or
//     forever; max_redemptions and redeem_by limit its use across all
//     customers; applies_to.products limits it to some products.
//   - The coupon object (https://docs.stripe.com/api/coupons/object) and
//     update (https://docs.stripe.com/api/coupons/update): only name,
//     metadata and currency_options can change; applies_to and
//     currency_options are includable (sent only when expanded).
//   - Deleting a coupon (https://docs.stripe.com/api/coupons/delete):
//     "doesn't affect any customers who have already applied the coupon; it
//     means that new customers can't redeem the coupon".
//   - Promotion codes (https://docs.stripe.com/api/promotion_codes/create):
//     a customer-facing code on a coupon, unique, regardless of case, among
//     the active codes; restrictions first_time_transaction ("only be
//     redeemed for Customers without any successful payments or invoices"),
//     minimum_amount with minimum_amount_currency, expires_at,
//     max_redemptions. Update (https://docs.stripe.com/api/promotion_codes/update)
//     changes only active, metadata and restrictions.currency_options.
//   - The subscription's `discount` (2023-10-16, before `discounts`):
//     `coupon` or `promotion_code` on create and update, a discount object
//     with start and end (end null for once and forever), removed with
//     DELETE /v1/subscriptions/{id}/discount
//     (https://docs.stripe.com/api/discounts/subscription_delete).
//
// Stripe does not document how a percentage discount is rounded to the
// minor unit; the fake rounds half up (as internal/billing.ApplyDiscount
// does), listed in the differences.

type coupon struct {
	id, name, currency, duration string
	// percentOff is the exact decimal text, "" for an amount-off coupon.
	percentOff                                 string
	amountOff, durationInMonths, maxRedemption int64
	redeemBy, timesRedeemed, created           int64
	currencyOptions                            map[string]int64
	products                                   []string
	metadata                                   map[string]string
	deleted                                    bool
}

type promoCode struct {
	id, code, coupon, customer         string
	active                             bool
	expiresAt, maxRedemptions, created int64
	timesRedeemed                      int64
	firstTime                          bool
	minAmount                          int64
	minCurrency                        string
	metadata                           map[string]string
}

// discount is a coupon applied to a subscription.
type discount struct {
	id, coupon, promo string
	start, end        int64
	// used: a once discount has discounted its invoice; it is removed
	// when the next invoice is made.
	used bool
}

// couponState holds the coupons and promotion codes of the account.
type couponState struct {
	coupons map[string]*coupon
	promos  map[string]*promoCode
}

func (s *Server) couponStore() *couponState {
	if s.couponsState == nil {
		s.couponsState = &couponState{coupons: map[string]*coupon{}, promos: map[string]*promoCode{}}
	}
	return s.couponsState
}

// valid is the coupon's `valid`: not deleted, below max_redemptions, and
// before redeem_by.
func (c *coupon) valid(now int64) bool {
	return !c.deleted && (c.maxRedemption == 0 || c.timesRedeemed < c.maxRedemption) && (c.redeemBy == 0 || now < c.redeemBy)
}

func (s *Server) couponJSON(c *coupon, expand map[string]bool, prefix string) map[string]any {
	if c.deleted {
		return map[string]any{"id": c.id, "object": "coupon", "deleted": true}
	}
	var pct any
	if c.percentOff != "" {
		pct = json.Number(c.percentOff)
	}
	zeroNil := func(v int64) any {
		if v == 0 {
			return nil
		}
		return v
	}
	out := map[string]any{"id": c.id, "object": "coupon", "name": nullable(c.name), "percent_off": pct,
		"amount_off": zeroNil(c.amountOff), "currency": nullable(c.currency), "duration": c.duration,
		"duration_in_months": zeroNil(c.durationInMonths), "max_redemptions": zeroNil(c.maxRedemption),
		"redeem_by": zeroNil(c.redeemBy), "times_redeemed": c.timesRedeemed, "valid": c.valid(s.now.Unix()),
		"metadata": copyMeta(c.metadata), "created": c.created, "livemode": false}
	if expand[prefix+"applies_to"] {
		out["applies_to"] = map[string]any{"products": append([]string{}, c.products...)}
	}
	if expand[prefix+"currency_options"] && len(c.currencyOptions) > 0 {
		opts := map[string]any{}
		for cur, amt := range c.currencyOptions {
			opts[cur] = map[string]any{"amount_off": amt}
		}
		out["currency_options"] = opts
	}
	return out
}

func (s *Server) promoJSON(p *promoCode) map[string]any {
	zeroNil := func(v int64) any {
		if v == 0 {
			return nil
		}
		return v
	}
	var cj any
	if c := s.couponStore().coupons[p.coupon]; c != nil {
		cj = s.couponJSON(c, nil, "")
	}
	return map[string]any{"id": p.id, "object": "promotion_code", "code": p.code, "coupon": cj, "active": p.active,
		"customer": nullable(p.customer), "expires_at": zeroNil(p.expiresAt), "max_redemptions": zeroNil(p.maxRedemptions),
		"times_redeemed": p.timesRedeemed, "metadata": copyMeta(p.metadata), "created": p.created, "livemode": false,
		"restrictions": map[string]any{"first_time_transaction": p.firstTime, "minimum_amount": zeroNil(p.minAmount),
			"minimum_amount_currency": nullable(p.minCurrency)}}
}

func (s *Server) discountJSON(sub *subscription) any {
	d := sub.discount
	if d == nil {
		return nil
	}
	c := s.couponStore().coupons[d.coupon]
	var cj any
	if c != nil {
		// A deleted coupon is still shown in the discounts made from it.
		cp := *c
		cp.deleted = false
		cj = s.couponJSON(&cp, nil, "")
	}
	var end any
	if d.end != 0 {
		end = d.end
	}
	return map[string]any{"id": d.id, "object": "discount", "coupon": cj, "customer": sub.customer, "subscription": sub.id,
		"promotion_code": nullable(d.promo), "start": d.start, "end": end, "invoice": nil, "invoice_item": nil, "checkout_session": nil}
}

// dispatchCoupons serves /v1/coupons, /v1/promotion_codes and
// /v1/subscriptions/{id}/discount.
func (s *Server) dispatchCoupons(r *request) (any, *apiError) {
	p, n := r.path, len(r.path)
	switch {
	case p[0] == "coupons" && n == 1 && r.method == http.MethodPost:
		return s.createCoupon(r)
	case p[0] == "coupons" && n == 1 && r.method == http.MethodGet:
		return s.listCoupons(r)
	case p[0] == "coupons" && n == 2 && r.method == http.MethodGet:
		c := s.couponStore().coupons[p[1]]
		if c == nil || c.deleted {
			return nil, missing("coupon", p[1])
		}
		return s.couponJSON(c, r.expand, ""), nil
	case p[0] == "coupons" && n == 2 && r.method == http.MethodPost:
		return s.updateCoupon(r, p[1])
	case p[0] == "coupons" && n == 2 && r.method == http.MethodDelete:
		c := s.couponStore().coupons[p[1]]
		if c == nil || c.deleted {
			return nil, missing("coupon", p[1])
		}
		snapshot := s.couponJSON(c, nil, "")
		c.deleted = true
		s.emit(r, "coupon.deleted", snapshot, nil)
		return map[string]any{"id": c.id, "object": "coupon", "deleted": true}, nil
	case p[0] == "promotion_codes" && n == 1 && r.method == http.MethodPost:
		return s.createPromo(r)
	case p[0] == "promotion_codes" && n == 1 && r.method == http.MethodGet:
		return s.listPromos(r)
	case p[0] == "promotion_codes" && n == 2 && r.method == http.MethodGet:
		pc := s.couponStore().promos[p[1]]
		if pc == nil {
			return nil, missing("promotion_code", p[1])
		}
		return s.promoJSON(pc), nil
	case p[0] == "promotion_codes" && n == 2 && r.method == http.MethodPost:
		return s.updatePromo(r, p[1])
	case p[0] == "subscriptions" && n == 3 && p[2] == "discount" && r.method == http.MethodDelete:
		sub, ok := s.subs[p[1]]
		if !ok {
			return nil, missing("subscription", p[1])
		}
		if sub.discount == nil {
			return nil, &apiError{status: 404, Type: "invalid_request_error", Code: "resource_missing",
				Message: fmt.Sprintf("No active discount for subscription: '%s'", sub.id)}
		}
		before := s.subJSON(sub, nil)
		id := sub.discount.id
		sub.discount = nil
		s.emitUpdated(r, "customer.subscription.updated", before, s.subJSON(sub, nil))
		return map[string]any{"id": id, "object": "discount", "deleted": true}, nil
	}
	return nil, &apiError{status: 404, Type: "invalid_request_error", Message: fmt.Sprintf("Unrecognized request URL (%s: /v1/%s).", r.method, strings.Join(p, "/"))}
}

// percentRE: a positive number up to 100 with at most two decimals
// (percent_off has "a precision of two decimal places").
var percentRE = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,2})?$`)

func (s *Server) createCoupon(r *request) (any, *apiError) {
	st := s.couponStore()
	c := &coupon{created: s.now.Unix(), metadata: map[string]string{}}
	c.id, _ = r.str("id")
	if c.id == "" {
		c.id = s.newID("cpn")
	} else if old := st.coupons[c.id]; old != nil {
		return nil, invalid("id", "Coupon already exists.")
	}
	c.name, _ = r.str("name")
	if len(c.name) > 40 {
		return nil, invalid("name", "Invalid string: %s...; must be at most 40 characters", c.name[:40])
	}
	pct, hasPct := r.str("percent_off")
	amt, hasAmt, err := r.int("amount_off")
	if err != nil {
		return nil, err
	}
	switch {
	case hasPct && hasAmt:
		return nil, invalid("percent_off", "You may only specify one of these parameters: amount_off, percent_off.")
	case !hasPct && !hasAmt:
		return nil, invalid("percent_off", "You must specify either percent_off or amount_off.")
	case hasPct:
		v, perr := strconv.ParseFloat(pct, 64)
		if !percentRE.MatchString(pct) || perr != nil || v <= 0 || v > 100 {
			return nil, invalid("percent_off", "Invalid percent_off: must be greater than 0 and at most 100, with at most two decimal places.")
		}
		c.percentOff = normalizePercent(pct)
	default:
		if amt <= 0 {
			return nil, invalid("amount_off", "Invalid positive integer")
		}
		c.amountOff = amt
		cur, _ := r.str("currency")
		if !currencyRE.MatchString(cur) {
			return nil, invalid("currency", "You must specify a currency when creating an amount_off coupon.")
		}
		c.currency = cur
	}
	for k, v := range r.form {
		if strings.HasPrefix(k, "currency_options[") && strings.HasSuffix(k, "][amount_off]") {
			if c.amountOff == 0 {
				return nil, invalid("currency_options", "currency_options is only supported for amount_off coupons.")
			}
			n, perr := strconv.ParseInt(v[0], 10, 64)
			if perr != nil || n <= 0 {
				return nil, invalid(k, "Invalid positive integer")
			}
			if c.currencyOptions == nil {
				c.currencyOptions = map[string]int64{}
			}
			c.currencyOptions[k[len("currency_options["):len(k)-len("][amount_off]")]] = n
		}
	}
	c.duration, _ = r.str("duration")
	if c.duration == "" {
		c.duration = "once" // "Defaults to once."
	}
	months, hasMonths, err := r.int("duration_in_months")
	if err != nil {
		return nil, err
	}
	switch c.duration {
	case "repeating":
		if !hasMonths || months < 1 {
			return nil, invalid("duration_in_months", "duration_in_months must be a positive integer when duration is repeating.")
		}
		c.durationInMonths = months
	case "once", "forever":
		if hasMonths {
			return nil, invalid("duration_in_months", "duration_in_months is only valid when duration is repeating.")
		}
	default:
		return nil, invalid("duration", "Invalid duration: must be one of once, repeating, or forever")
	}
	if v, ok, err := r.int("max_redemptions"); err != nil {
		return nil, err
	} else if ok {
		if v < 1 {
			return nil, invalid("max_redemptions", "Invalid positive integer")
		}
		c.maxRedemption = v
	}
	if v, ok, err := r.int("redeem_by"); err != nil {
		return nil, err
	} else if ok {
		if v <= s.now.Unix() {
			return nil, invalid("redeem_by", "Invalid timestamp: must be in the future")
		}
		c.redeemBy = v
	}
	if prods, ok := r.strList("applies_to[products]"); ok {
		for _, pid := range prods {
			if _, found := s.products[pid]; !found {
				return nil, missing("product", pid)
			}
		}
		c.products = prods
	}
	if m, ok := r.metadata(""); ok {
		c.metadata = applyMeta(nil, m)
	}
	st.coupons[c.id] = c
	s.track("coupon", c.id)
	s.emit(r, "coupon.created", s.couponJSON(c, nil, ""), nil)
	return s.couponJSON(c, r.expand, ""), nil
}

// normalizePercent drops trailing zeros: "25.50" is 25.5.
func normalizePercent(p string) string {
	if strings.Contains(p, ".") {
		p = strings.TrimRight(strings.TrimRight(p, "0"), ".")
	}
	return p
}

func (s *Server) listCoupons(r *request) (any, *apiError) {
	gte, hasGte, err := r.createdFilter()
	if err != nil {
		return nil, err
	}
	st := s.couponStore()
	return s.list(r, "/v1/coupons", s.order["coupon"], func(id string) (map[string]any, bool) {
		c := st.coupons[id]
		if c == nil || c.deleted || (hasGte && c.created < gte) {
			return nil, false
		}
		return s.couponJSON(c, r.expand, "data."), true
	})
}

func (s *Server) updateCoupon(r *request, id string) (any, *apiError) {
	c := s.couponStore().coupons[id]
	if c == nil || c.deleted {
		return nil, missing("coupon", id)
	}
	for k := range r.form {
		switch {
		case k == "name", strings.HasPrefix(k, "metadata["), k == "metadata", strings.HasPrefix(k, "currency_options["), strings.HasPrefix(k, "expand"):
		default:
			// Only name, metadata and currency_options can change: "Coupons
			// are immutable" beyond them.
			return nil, invalid(k, "Received unknown parameter: %s", k)
		}
	}
	before := s.couponJSON(c, nil, "")
	if v, ok := r.str("name"); ok {
		if len(v) > 40 {
			return nil, invalid("name", "Invalid string: must be at most 40 characters")
		}
		c.name = v
	}
	if m, ok := r.metadata(""); ok {
		c.metadata = applyMeta(c.metadata, m)
	}
	s.emitUpdated(r, "coupon.updated", before, s.couponJSON(c, nil, ""))
	return s.couponJSON(c, r.expand, ""), nil
}

var promoCodeRE = regexp.MustCompile(`^[A-Za-z0-9]{1,500}$`)

// activeCodeHolder returns the active promotion code other than except
// whose code equals code regardless of case.
func (s *Server) activeCodeHolder(code, except string) *promoCode {
	for _, id := range s.order["promotion_code"] {
		p := s.couponStore().promos[id]
		if p != nil && p.id != except && p.active && strings.EqualFold(p.code, code) {
			return p
		}
	}
	return nil
}

func (s *Server) createPromo(r *request) (any, *apiError) {
	st := s.couponStore()
	cid, _ := r.str("coupon")
	c := st.coupons[cid]
	if c == nil || c.deleted {
		return nil, missing("coupon", cid)
	}
	p := &promoCode{id: s.newID("promo"), coupon: cid, active: true, created: s.now.Unix(), metadata: map[string]string{}}
	p.code, _ = r.str("code")
	if p.code == "" {
		p.code = strings.ToUpper(strings.TrimPrefix(s.newID("P"), "P_"))
	}
	if !promoCodeRE.MatchString(p.code) {
		return nil, invalid("code", "Invalid code: valid characters are lower case letters (a-z), upper case letters (A-Z), and digits (0-9).")
	}
	if v, ok := r.bool("active"); ok {
		p.active = v
	}
	if p.active && s.activeCodeHolder(p.code, "") != nil {
		return nil, invalid("code", "An active promotion code with `code: %s` already exists.", p.code)
	}
	p.customer, _ = r.str("customer")
	if v, ok, err := r.int("expires_at"); err != nil {
		return nil, err
	} else if ok {
		if v <= s.now.Unix() {
			return nil, invalid("expires_at", "Invalid timestamp: must be in the future")
		}
		if c.redeemBy != 0 && v > c.redeemBy {
			return nil, invalid("expires_at", "The promotion code's expires_at cannot be after the coupon's redeem_by.")
		}
		p.expiresAt = v
	}
	if v, ok, err := r.int("max_redemptions"); err != nil {
		return nil, err
	} else if ok {
		if v < 1 {
			return nil, invalid("max_redemptions", "Invalid positive integer")
		}
		p.maxRedemptions = v
	}
	p.firstTime, _ = r.bool("restrictions[first_time_transaction]")
	if v, ok, err := r.int("restrictions[minimum_amount]"); err != nil {
		return nil, err
	} else if ok {
		cur, _ := r.str("restrictions[minimum_amount_currency]")
		if !currencyRE.MatchString(cur) {
			return nil, invalid("restrictions[minimum_amount_currency]", "minimum_amount_currency is required with minimum_amount.")
		}
		p.minAmount, p.minCurrency = v, cur
	}
	if m, ok := r.metadata(""); ok {
		p.metadata = applyMeta(nil, m)
	}
	st.promos[p.id] = p
	s.track("promotion_code", p.id)
	s.emit(r, "promotion_code.created", s.promoJSON(p), nil)
	return s.promoJSON(p), nil
}

func (s *Server) listPromos(r *request) (any, *apiError) {
	st := s.couponStore()
	cid, hasCoupon := r.str("coupon")
	code, hasCode := r.str("code")
	active, hasActive := r.bool("active")
	return s.list(r, "/v1/promotion_codes", s.order["promotion_code"], func(id string) (map[string]any, bool) {
		p := st.promos[id]
		if p == nil || (hasCoupon && p.coupon != cid) || (hasCode && !strings.EqualFold(p.code, code)) || (hasActive && p.active != active) {
			return nil, false
		}
		return s.promoJSON(p), true
	})
}

func (s *Server) updatePromo(r *request, id string) (any, *apiError) {
	p := s.couponStore().promos[id]
	if p == nil {
		return nil, missing("promotion_code", id)
	}
	for k := range r.form {
		switch {
		case k == "active", strings.HasPrefix(k, "metadata["), k == "metadata", strings.HasPrefix(k, "restrictions[currency_options]"), strings.HasPrefix(k, "expand"):
		default:
			return nil, invalid(k, "Received unknown parameter: %s", k)
		}
	}
	before := s.promoJSON(p)
	if v, ok := r.bool("active"); ok {
		if v && !p.active && s.activeCodeHolder(p.code, p.id) != nil {
			return nil, invalid("active", "An active promotion code with `code: %s` already exists.", p.code)
		}
		p.active = v
	}
	if m, ok := r.metadata(""); ok {
		p.metadata = applyMeta(p.metadata, m)
	}
	s.emitUpdated(r, "promotion_code.updated", before, s.promoJSON(p))
	return s.promoJSON(p), nil
}

// customerHasPaid reports whether a customer has a successful payment or a
// paid invoice for more than zero (first_time_transaction's "prior
// transactions").
func (s *Server) customerHasPaid(customer string) bool {
	for _, in := range s.invoices {
		if in.customer == customer && in.status == "paid" && in.amountPaid > 0 {
			return true
		}
	}
	return false
}

// applyDiscountParams applies the `coupon` or `promotion_code` parameter of
// a subscription create or update to sub (a copy the caller commits only
// on success). firstAmount is what the first invoice bills before the
// discount (a promotion code's minimum_amount is checked against it).
func (s *Server) applyDiscountParams(r *request, sub *subscription, firstAmount int64) *apiError {
	cid, hasCoupon := r.str("coupon")
	pid, hasPromo := r.str("promotion_code")
	if !hasCoupon && !hasPromo {
		return nil
	}
	if hasCoupon && hasPromo && cid != "" && pid != "" {
		return invalid("coupon", "You may only specify one of these parameters: coupon, promotion_code.")
	}
	st := s.couponStore()
	now := s.now.Unix()
	var promo *promoCode
	if hasPromo && pid != "" {
		promo = st.promos[pid]
		if promo == nil {
			return missing("promotion_code", pid)
		}
		switch {
		case !promo.active:
			return invalid("promotion_code", "This promotion code is inactive.")
		case promo.expiresAt != 0 && now >= promo.expiresAt:
			return invalid("promotion_code", "This promotion code has expired.")
		case promo.maxRedemptions != 0 && promo.timesRedeemed >= promo.maxRedemptions:
			return invalid("promotion_code", "This promotion code has been redeemed the maximum number of times.")
		case promo.customer != "" && promo.customer != sub.customer:
			return invalid("promotion_code", "This promotion code cannot be redeemed by this customer.")
		case promo.firstTime && s.customerHasPaid(sub.customer):
			return invalid("promotion_code", "This promotion code cannot be redeemed because the associated customer has prior transactions.")
		case promo.minAmount != 0 && (promo.minCurrency != s.currencyOf(sub) || firstAmount < promo.minAmount):
			return invalid("promotion_code", "This promotion code requires a minimum amount of %d %s.", promo.minAmount, promo.minCurrency)
		}
		cid = promo.coupon
	}
	if cid == "" {
		// An empty coupon removes the discount.
		sub.discount = nil
		return nil
	}
	c := st.coupons[cid]
	if c == nil || c.deleted {
		return missing("coupon", cid)
	}
	if sub.discount != nil && sub.discount.coupon == cid && (promo == nil || sub.discount.promo == promo.id) {
		return nil // already applied: nothing is redeemed again
	}
	if !c.valid(now) {
		return invalid("coupon", "Coupon expired: %s", cid)
	}
	if c.amountOff != 0 {
		cur := s.currencyOf(sub)
		if _, ok := c.currencyOptions[cur]; cur != c.currency && !ok {
			return invalid("coupon", "Coupon %s is in %s and cannot be applied to a subscription in %s.", cid, c.currency, cur)
		}
	}
	d := &discount{id: s.newID("di"), coupon: cid, start: now}
	if c.duration == "repeating" {
		d.end = time.Unix(now, 0).UTC().AddDate(0, int(c.durationInMonths), 0).Unix()
	}
	if promo != nil {
		d.promo = promo.id
		promo.timesRedeemed++
	}
	c.timesRedeemed++
	sub.discount = d
	return nil
}

// invoiceDiscount is the amount the subscription's discount takes off an
// invoice of lines, and ends the discount when its duration is over: a
// repeating discount whose end has passed is removed before the invoice; a
// once discount discounts one invoice and is removed when the next is made
// (the fake's choice of when; the billing is the same).
func (s *Server) invoiceDiscount(sub *subscription, lines []line, currency string) (int64, string) {
	d := sub.discount
	if d == nil {
		return 0, ""
	}
	if (d.end != 0 && s.now.Unix() >= d.end) || d.used {
		sub.discount = nil
		return 0, ""
	}
	c := s.couponStore().coupons[d.coupon]
	if c == nil {
		return 0, ""
	}
	var base int64
	for _, l := range lines {
		if len(c.products) > 0 {
			p := s.prices[l.price]
			if p == nil || !slices.Contains(c.products, p.product) {
				continue
			}
		}
		base += l.amount
	}
	if base <= 0 {
		return 0, ""
	}
	var off int64
	if c.percentOff != "" {
		off = percentOf(base, c.percentOff)
	} else {
		amt := c.amountOff
		if currency != c.currency {
			amt = c.currencyOptions[currency]
		}
		off = min(amt, base)
	}
	if c.duration == "once" {
		d.used = true
	}
	return off, d.id
}

// percentOf is pct percent of amount, rounded half up to the minor unit
// (exact: pct is a decimal string).
func percentOf(amount int64, pct string) int64 {
	r, ok := new(big.Rat).SetString(pct)
	if !ok {
		return 0
	}
	r.Mul(r, new(big.Rat).SetInt64(amount))
	r.Quo(r, big.NewRat(100, 1))
	// Half up: floor(x + 1/2) for x >= 0.
	r.Add(r, big.NewRat(1, 2))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	return q.Int64()
}

// DashboardApplyCoupon applies a coupon to a subscription as a person in
// the Dashboard would (it is redeemed like any application).
func (s *Server) DashboardApplyCoupon(subID, couponID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.dashboardSub(subID)
	if err != nil {
		return err
	}
	before := s.subJSON(sub, nil)
	r := &request{form: map[string][]string{"coupon": {couponID}}}
	if aerr := s.applyDiscountParams(r, sub, 0); aerr != nil {
		return aerr
	}
	s.emitUpdated(nil, "customer.subscription.updated", before, s.subJSON(sub, nil))
	return nil
}

// DashboardRemoveDiscount removes a subscription's discount.
func (s *Server) DashboardRemoveDiscount(subID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.dashboardSub(subID)
	if err != nil {
		return err
	}
	if sub.discount == nil {
		return fmt.Errorf("subscription %s has no discount", subID)
	}
	before := s.subJSON(sub, nil)
	sub.discount = nil
	s.emitUpdated(nil, "customer.subscription.updated", before, s.subJSON(sub, nil))
	return nil
}

// CouponRedemptions returns a coupon's times_redeemed (tests).
func (s *Server) CouponRedemptions(id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.couponStore().coupons[id]; c != nil {
		return c.timesRedeemed
	}
	return 0
}
