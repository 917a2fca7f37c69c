package stripefake

import (
	"fmt"
	"slices"
	"strings"
)

// listExpand checks and rewrites a list request's expansions. On a list,
// Stripe expands properties of the listed objects through the data prefix
// (expand[]=data.latest_invoice), and refuses an expansion without it
// (https://docs.stripe.com/expand#lists). The render functions see the
// expansion as it applies to one object.
func (r *request) listExpand() *apiError {
	if len(r.expand) == 0 {
		return nil
	}
	per := map[string]bool{}
	for e := range r.expand {
		rest, ok := strings.CutPrefix(e, "data.")
		if !ok || rest == "" {
			return invalid("expand", "This property cannot be expanded (%s). You may want to try expanding 'data.%s' instead.", e, e)
		}
		per[rest] = true
	}
	r.expand = per
	return nil
}

// checkCursor refuses a starting_after naming no object of the list, as
// Stripe answers an unknown cursor with resource_missing instead of an
// empty page (an empty page would end a pager early and lose objects).
func checkCursor(r *request, kind string, ids []string) *apiError {
	after, ok := r.str("starting_after")
	if !ok || after == "" || slices.Contains(ids, after) {
		return nil
	}
	e := missing(kind, after)
	e.Param = "starting_after"
	return e
}

// kindOfList names the object kind of a list URL for error messages.
func kindOfList(urlPath string) string {
	k := strings.TrimSuffix(strings.TrimPrefix(urlPath, "/v1/"), "s")
	if k == "" {
		return "object"
	}
	return k
}

// DashboardDeleteCustomer deletes a customer as a person in the Dashboard
// would: Stripe cancels its subscriptions at once and the customer leaves
// the customer list (https://docs.stripe.com/api/customers/delete).
func (s *Server) DashboardDeleteCustomer(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok || c.deleted {
		return fmt.Errorf("no such customer %s", id)
	}
	if _, aerr := s.deleteCustomer(nil, id); aerr != nil {
		return aerr
	}
	return nil
}
