package stripefake

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
)

type customer struct {
	id, email, name, description string
	metadata                     map[string]string
	created                      int64
	deleted                      bool
	defaultPM                    string
	pms                          map[string]bool // IDs of attached PaymentMethods
	testClock                    string
	indexedAt                    int64 // last write, for the Search API's delay
	// currency is the customer's currency, set by its first subscription.
	currency string
}

type product struct {
	id, name, description string
	active                bool
	metadata              map[string]string
	created               int64
	indexedAt             int64 // last write, for the Search API's delay
}

type price struct {
	id, product, currency, interval, lookupKey string
	unitAmount, intervalCount                  int64
	active                                     bool
	metadata                                   map[string]string
	created                                    int64
	// terms are the rest of the price's terms (price_terms.go).
	terms priceTerms
}

func copyMeta(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func applyMeta(dst map[string]string, upd map[string]string) map[string]string {
	if dst == nil {
		dst = map[string]string{}
	}
	for k, v := range upd {
		if v == "" {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
	return dst
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (c *customer) json() map[string]any {
	if c.deleted {
		return map[string]any{"id": c.id, "object": "customer", "deleted": true}
	}
	return map[string]any{
		"id": c.id, "object": "customer", "email": nullable(c.email), "name": nullable(c.name),
		"description": nullable(c.description), "metadata": copyMeta(c.metadata), "created": c.created,
		"livemode": false, "currency": nullable(c.currency), "delinquent": false, "balance": 0,
		"invoice_settings": map[string]any{"default_payment_method": nullable(c.defaultPM), "custom_fields": nil, "footer": nil},
		"test_clock":       nullable(c.testClock),
	}
}

func (p *product) json() map[string]any {
	return map[string]any{"id": p.id, "object": "product", "name": p.name, "description": nullable(p.description),
		"active": p.active, "metadata": copyMeta(p.metadata), "created": p.created, "updated": p.created, "livemode": false, "type": "service"}
}

func (p *price) json() map[string]any { return p.jsonExpanded(nil) }

// jsonExpanded renders the price with its expandable fields (tiers,
// currency_options) when expand asks for them.
func (p *price) jsonExpanded(expand map[string]bool) map[string]any {
	m := map[string]any{"id": p.id, "object": "price", "product": p.product, "currency": p.currency,
		"unit_amount": p.unitAmount, "unit_amount_decimal": strconv.FormatInt(p.unitAmount, 10), "active": p.active,
		"lookup_key": nullable(p.lookupKey), "metadata": copyMeta(p.metadata), "created": p.created, "livemode": false,
		"type": "recurring", "billing_scheme": "per_unit",
		"recurring": map[string]any{"interval": p.interval, "interval_count": p.intervalCount, "usage_type": "licensed"}}
	p.termsJSON(m, expand)
	return m
}

var emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)

func (s *Server) createCustomer(r *request) (any, *apiError) {
	c := &customer{id: s.newID("cus"), created: s.now.Unix(), pms: map[string]bool{}}
	if err := s.setCustomerFields(r, c); err != nil {
		return nil, err
	}
	if pm, ok := r.str("payment_method"); ok {
		if _, err := s.attachPaymentMethod(c, pm); err != nil {
			return nil, err
		}
	}
	if clock, ok := r.str("test_clock"); ok {
		tc, found := s.testClocks[clock]
		if !found || tc.deleted {
			return nil, &apiError{status: 400, Type: "invalid_request_error", Code: "resource_missing", Param: "test_clock", Message: "No such test clock: '" + clock + "'"}
		}
		c.testClock = clock
	}
	s.customers[c.id] = c
	s.track("customer", c.id)
	s.emit(r, "customer.created", c.json(), nil)
	return c.json(), nil
}

func (s *Server) setCustomerFields(r *request, c *customer) *apiError {
	c.indexedAt = s.now.Unix()
	if v, ok := r.str("email"); ok {
		if v != "" && !emailRE.MatchString(v) {
			return invalid("email", "Invalid email address: %s", v)
		}
		c.email = v
	}
	if v, ok := r.str("name"); ok {
		c.name = v
	}
	if v, ok := r.str("description"); ok {
		c.description = v
	}
	if m, ok := r.metadata(""); ok {
		c.metadata = applyMeta(c.metadata, m)
	}
	if c.metadata == nil {
		c.metadata = map[string]string{}
	}
	if pm, ok := r.str("invoice_settings[default_payment_method]"); ok {
		// https://docs.stripe.com/api/customers/update#update_customer-invoice_settings-default_payment_method:
		// "ID of a payment method that's attached to the customer".
		if pm != "" && !c.pms[pm] {
			return &apiError{status: 400, Type: "invalid_request_error", Code: "resource_missing", Param: "invoice_settings[default_payment_method]",
				Message: fmt.Sprintf("No such PaymentMethod: '%s'; it must be attached to the customer first.", pm)}
		}
		c.defaultPM = pm
	}
	return nil
}

func (s *Server) getCustomer(id string) (any, *apiError) {
	c, ok := s.customers[id]
	if !ok {
		return nil, missing("customer", id)
	}
	return c.json(), nil
}

// listCustomers is GET /v1/customers (https://docs.stripe.com/api/customers/list):
// newest first, limit 1 to 100 (default 10), starting_after, has_more
// (https://docs.stripe.com/api/pagination). Deleted customers are left out
// of the list: the list reference names no filter for them and Stripe does
// not return them there, while a retrieve still answers a deleted customer
// with "deleted": true (https://docs.stripe.com/api/customers/retrieve). The
// operator never takes a customer's absence from a list as its deletion: it
// reads such a customer on its own.
func (s *Server) listCustomers(r *request) (any, *apiError) {
	gte, hasGte, err := r.createdFilter()
	if err != nil {
		return nil, err
	}
	email, hasEmail := r.str("email")
	return s.list(r, "/v1/customers", s.order["customer"], func(id string) (map[string]any, bool) {
		c := s.customers[id]
		if c.deleted || (hasGte && c.created < gte) || (hasEmail && c.email != email) {
			return nil, false
		}
		return c.json(), true
	})
}

func (s *Server) updateCustomer(r *request, id string) (any, *apiError) {
	c, ok := s.customers[id]
	if !ok || c.deleted {
		return nil, missing("customer", id)
	}
	before := c.json()
	next := *c
	next.metadata = copyMeta(c.metadata)
	if err := s.setCustomerFields(r, &next); err != nil {
		return nil, err
	}
	*c = next
	s.emitUpdated(r, "customer.updated", before, c.json())
	return c.json(), nil
}

func (s *Server) deleteCustomer(r *request, id string) (any, *apiError) {
	c, ok := s.customers[id]
	if !ok || c.deleted {
		return nil, missing("customer", id)
	}
	for _, sid := range s.order["subscription"] {
		if sub := s.subs[sid]; sub.customer == id && !sub.ended() {
			s.endSubscription(r, sub, false)
		}
	}
	snapshot := c.json()
	c.deleted = true
	s.emit(r, "customer.deleted", snapshot, nil)
	return map[string]any{"id": id, "object": "customer", "deleted": true}, nil
}

func (s *Server) createProduct(r *request) (any, *apiError) {
	name, ok := r.str("name")
	if !ok || name == "" {
		return nil, invalid("name", "Missing required param: name.")
	}
	p := &product{id: s.newID("prod"), name: name, active: true, created: s.now.Unix()}
	if err := s.setProductFields(r, p); err != nil {
		return nil, err
	}
	s.products[p.id] = p
	s.track("product", p.id)
	s.emit(r, "product.created", p.json(), nil)
	return p.json(), nil
}

func (s *Server) setProductFields(r *request, p *product) *apiError {
	p.indexedAt = s.now.Unix()
	if v, ok := r.str("name"); ok {
		if v == "" {
			return invalid("name", "You must provide a name for the product.")
		}
		p.name = v
	}
	if v, ok := r.str("description"); ok {
		p.description = v
	}
	if v, ok := r.bool("active"); ok {
		p.active = v
	}

	if m, ok := r.metadata(""); ok {
		p.metadata = applyMeta(p.metadata, m)
	}
	if p.metadata == nil {
		p.metadata = map[string]string{}
	}
	return nil
}

func (s *Server) getProduct(id string) (any, *apiError) {
	p, ok := s.products[id]
	if !ok {
		return nil, missing("product", id)
	}
	return p.json(), nil
}

func (s *Server) listProducts(r *request) (any, *apiError) {
	gte, hasGte, err := r.createdFilter()
	if err != nil {
		return nil, err
	}
	return s.list(r, "/v1/products", s.order["product"], func(id string) (map[string]any, bool) {
		p := s.products[id]
		if hasGte && p.created < gte {
			return nil, false
		}
		return p.json(), true
	})
}

func (s *Server) updateProduct(r *request, id string) (any, *apiError) {
	p, ok := s.products[id]
	if !ok {
		return nil, missing("product", id)
	}
	before := p.json()
	next := *p
	next.metadata = copyMeta(p.metadata)
	if err := s.setProductFields(r, &next); err != nil {
		return nil, err
	}
	*p = next
	s.emitUpdated(r, "product.updated", before, p.json())
	return p.json(), nil
}

var currencyRE = regexp.MustCompile(`^[a-z]{3}$`)

func (s *Server) createPrice(r *request) (any, *apiError) {
	pid, _ := r.str("product")
	if _, ok := s.products[pid]; !ok {
		return nil, missing("product", pid)
	}
	cur, _ := r.str("currency")
	if !currencyRE.MatchString(cur) {
		return nil, invalid("currency", "Invalid currency: %s.", cur)
	}
	terms, err := r.parsePriceTerms(cur)
	if err != nil {
		return nil, err
	}
	var amount int64
	if terms.unitInt {
		amount, _ = strconv.ParseInt(terms.unit, 10, 64)
	}
	interval, _ := r.str("recurring[interval]")
	switch interval {
	case "day", "week", "month", "year":
	default:
		return nil, invalid("recurring[interval]", "Invalid recurring[interval]: must be one of day, week, month, or year")
	}
	count := int64(1)
	if c, ok, err := r.int("recurring[interval_count]"); err != nil {
		return nil, err
	} else if ok {
		count = c
	}
	limits := map[string]int64{"day": 365, "week": 52, "month": 12, "year": 1}
	if count < 1 || count > limits[interval] {
		return nil, invalid("recurring[interval_count]", "The maximum billing period is one year.")
	}
	p := &price{id: s.newID("price"), product: pid, currency: cur, unitAmount: amount, interval: interval,
		intervalCount: count, active: true, created: s.now.Unix(), terms: terms}
	if lk, ok := r.str("lookup_key"); ok && lk != "" {
		if apiErr := s.takeLookupKey(r, lk); apiErr != nil {
			return nil, apiErr
		}
		p.lookupKey = lk
	}
	if m, ok := r.metadata(""); ok {
		p.metadata = applyMeta(nil, m)
	} else {
		p.metadata = map[string]string{}
	}
	s.prices[p.id] = p
	s.track("price", p.id)
	s.emit(r, "price.created", p.json(), nil)
	return p.jsonExpanded(r.expand), nil
}

// takeLookupKey frees lk for a new holder if transfer_lookup_key is set.
func (s *Server) takeLookupKey(r *request, lk string) *apiError {
	transfer, _ := r.bool("transfer_lookup_key")
	for _, other := range s.prices {
		if other.lookupKey == lk {
			if !transfer {
				return invalid("lookup_key", "A price (`%s`) already uses that lookup key.", other.id)
			}
			before := other.json()
			other.lookupKey = ""
			s.emitUpdated(r, "price.updated", before, other.json())
		}
	}
	return nil
}

func (s *Server) getPrice(r *request, id string) (any, *apiError) {
	p, ok := s.prices[id]
	if !ok {
		return nil, missing("price", id)
	}
	return p.jsonExpanded(r.expand), nil
}

// listPrices is GET /v1/prices (https://docs.stripe.com/api/prices/list):
// newest first, paged like every list, filtered by product, active (true:
// only active prices, false: only archived ones) and lookup_keys.
func (s *Server) listPrices(r *request) (any, *apiError) {
	pid, hasProduct := r.str("product")
	active, hasActive := r.bool("active")
	// lookup_keys filters by lookup key, archived prices included
	// (https://docs.stripe.com/api/prices/list#list_prices-lookup_keys).
	keys, hasKeys := r.strList("lookup_keys")
	return s.list(r, "/v1/prices", s.order["price"], func(id string) (map[string]any, bool) {
		p := s.prices[id]
		if (hasProduct && p.product != pid) || (hasActive && p.active != active) {
			return nil, false
		}
		if hasKeys && (p.lookupKey == "" || !slices.Contains(keys, p.lookupKey)) {
			return nil, false
		}
		return p.jsonExpanded(r.expand), true
	})
}

func (s *Server) updatePrice(r *request, id string) (any, *apiError) {
	p, ok := s.prices[id]
	if !ok {
		return nil, missing("price", id)
	}
	for _, immutable := range []string{"unit_amount", "unit_amount_decimal", "currency", "recurring[interval]", "recurring[interval_count]", "recurring[usage_type]",
		"recurring[aggregate_usage]", "product", "billing_scheme", "tiers_mode", "transform_quantity[divide_by]", "transform_quantity[round]"} {
		if _, ok := r.str(immutable); ok {
			return nil, invalid(immutable, "Received unknown parameter: %s. Prices are immutable: create a new price instead.", immutable)
		}
	}
	before := p.json()
	if lk, ok := r.str("lookup_key"); ok && lk != p.lookupKey {
		if lk != "" {
			if apiErr := s.takeLookupKey(r, lk); apiErr != nil {
				return nil, apiErr
			}
		}
		p.lookupKey = lk
	}
	if v, ok := r.bool("active"); ok {
		p.active = v
	}
	// tax_behavior: "Once specified as either inclusive or exclusive, it
	// cannot be changed" (https://docs.stripe.com/api/prices/update#update_price-tax_behavior).
	if v, ok := r.str("tax_behavior"); ok && v != p.terms.taxBehavior {
		if p.terms.taxBehavior == "inclusive" || p.terms.taxBehavior == "exclusive" {
			return nil, invalid("tax_behavior", "tax_behavior cannot be changed once it is inclusive or exclusive.")
		}
		p.terms.taxBehavior = v
	}
	// tax_behavior: "Once specified as either inclusive or exclusive, it
	// cannot be changed" (https://docs.stripe.com/api/prices/update#update_price-tax_behavior).
	if v, ok := r.str("tax_behavior"); ok && v != p.terms.taxBehavior {
		if p.terms.taxBehavior == "inclusive" || p.terms.taxBehavior == "exclusive" {
			return nil, invalid("tax_behavior", "tax_behavior cannot be changed once it is inclusive or exclusive.")
		}
		p.terms.taxBehavior = v
	}
	if m, ok := r.metadata(""); ok {
		p.metadata = applyMeta(p.metadata, m)
	}
	s.emitUpdated(r, "price.updated", before, p.json())
	return p.jsonExpanded(r.expand), nil
}
