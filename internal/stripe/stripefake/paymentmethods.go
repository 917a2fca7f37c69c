package stripefake

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Stripe's test PaymentMethods (https://docs.stripe.com/testing#cards and
// #declined-payments) are tokens, not objects: attaching pm_card_visa to a
// customer creates a new PaymentMethod (pm_...) with the test card's
// details, every time it is attached. The new PaymentMethod belongs to that
// customer; a customer's invoice_settings.default_payment_method must be a
// PaymentMethod attached to it.
//
// How each test card behaves:
//   - pm_card_visa, pm_card_mastercard, ... : attach, and charges succeed;
//   - pm_card_chargeDeclined (4000000000000002), pm_card_visa_chargeDeclined:
//     Stripe declines the card when it is attached (card_declined);
//   - pm_card_chargeCustomerFail (4000000000000341): attaches, then every
//     charge is declined ("Decline after attaching");
//   - pm_card_authenticationRequired (4000002500003155): attaches; off-session
//     charges need authentication (authentication_required).
const (
	pmTokenPrefix      = "pm_card_"
	pmVisa             = "pm_card_visa"
	pmDeclined         = "pm_card_chargeDeclined"
	pmVisaDeclined     = "pm_card_visa_chargeDeclined"
	pmCustomerFail     = "pm_card_chargeCustomerFail"
	pmAuthRequired     = "pm_card_authenticationRequired"
	behaviourPays      = "pays"
	behaviourDeclines  = "declines"
	behaviourNeeds3DS  = "authentication_required"
	behaviourNoAttach  = "declined_on_attach"
	defaultTestCardTok = pmVisa
)

type paymentMethod struct {
	id, customer              string
	token                     string // the test token it was made from
	brand, last4, fingerprint string
	behaviour                 string
	created                   int64
}

// testCard describes a test token: brand, last4 and behaviour.
func testCard(token string) (brand, last4, behaviour string) {
	brand = strings.TrimPrefix(token, pmTokenPrefix)
	if i := strings.IndexByte(brand, '_'); i > 0 {
		brand = brand[:i]
	}
	switch token {
	case pmDeclined, pmVisaDeclined:
		return "visa", "0002", behaviourNoAttach
	case pmCustomerFail:
		return "visa", "0341", behaviourDeclines
	case pmAuthRequired:
		return "visa", "3155", behaviourNeeds3DS
	case "pm_card_mastercard":
		return "mastercard", "4444", behaviourPays
	case "pm_card_amex":
		return "amex", "8431", behaviourPays
	}
	return "visa", "4242", behaviourPays
}

func (p *paymentMethod) json() map[string]any {
	return map[string]any{"id": p.id, "object": "payment_method", "customer": nullable(p.customer), "type": "card",
		"created": p.created, "livemode": false, "metadata": map[string]string{},
		"card": map[string]any{"brand": p.brand, "last4": p.last4, "fingerprint": p.fingerprint, "exp_month": 12, "exp_year": 2034}}
}

// attachPaymentMethod attaches pm (a test token or an existing pm_...) to
// c and returns the attached PaymentMethod; s.mu is held.
func (s *Server) attachPaymentMethod(c *customer, pm string) (*paymentMethod, *apiError) {
	if strings.HasPrefix(pm, pmTokenPrefix) {
		brand, last4, behaviour := testCard(pm)
		if behaviour == behaviourNoAttach {
			return nil, &apiError{status: 402, Type: "card_error", Code: "card_declined", DeclineCode: "generic_decline",
				Message: "Your card was declined."}
		}
		sum := sha256.Sum256([]byte(pm))
		p := &paymentMethod{id: s.newID("pm"), customer: c.id, token: pm, brand: brand, last4: last4,
			fingerprint: hex.EncodeToString(sum[:8]), behaviour: behaviour, created: s.now.Unix()}
		s.paymentMethods[p.id] = p
		c.pms[p.id] = true
		return p, nil
	}
	p, ok := s.paymentMethods[pm]
	if !ok {
		return nil, &apiError{status: 404, Type: "invalid_request_error", Code: "resource_missing", Param: "payment_method",
			Message: "No such PaymentMethod: '" + pm + "'"}
	}
	if p.customer != "" && p.customer != c.id {
		return nil, invalid("", "The payment method you provided has already been attached to a customer.")
	}
	p.customer = c.id
	c.pms[p.id] = true
	return p, nil
}

// behaviourOf is how charges to a customer's default PaymentMethod go.
func (s *Server) behaviourOf(pmID string) string {
	if p, ok := s.paymentMethods[pmID]; ok {
		return p.behaviour
	}
	return ""
}

func (s *Server) attachPM(r *request, pm string) (any, *apiError) {
	cid, _ := r.str("customer")
	c, ok := s.customers[cid]
	if !ok || c.deleted {
		return nil, missing("customer", cid)
	}
	p, err := s.attachPaymentMethod(c, pm)
	if err != nil {
		return nil, err
	}
	return p.json(), nil
}

func (s *Server) getPM(id string) (any, *apiError) {
	p, ok := s.paymentMethods[id]
	if !ok {
		return nil, missing("payment_method", id)
	}
	return p.json(), nil
}

// PaymentMethod is a PaymentMethod's state for assertions.
type PaymentMethod struct {
	ID, Customer, Token, Last4 string
}

// PaymentMethodOf returns a PaymentMethod's state.
func (s *Server) PaymentMethodOf(id string) (PaymentMethod, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.paymentMethods[id]
	if !ok {
		return PaymentMethod{}, false
	}
	return PaymentMethod{ID: p.id, Customer: p.customer, Token: p.token, Last4: p.last4}, true
}

// PaymentMethodsOf lists the IDs of the PaymentMethods attached to a
// customer.
func (s *Server) PaymentMethodsOf(customerID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, p := range s.paymentMethods {
		if p.customer == customerID {
			out = append(out, id)
		}
	}
	return out
}
