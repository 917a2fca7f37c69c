package stripefake

import "fmt"

// DashboardSwapItemPrice moves one subscription item to another price
// without proration, as a person editing the subscription in the Stripe
// Dashboard ("Update subscription", proration off) would.
func (s *Server) DashboardSwapItemPrice(subID, itemID, priceID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.dashboardSub(subID)
	if err != nil {
		return err
	}
	if _, ok := s.prices[priceID]; !ok {
		return fmt.Errorf("no such price %s", priceID)
	}
	before := s.subJSON(sub, nil)
	for _, it := range sub.items {
		if it.id == itemID {
			it.price = priceID
			s.emitUpdated(nil, "customer.subscription.updated", before, s.subJSON(sub, nil))
			return nil
		}
	}
	return fmt.Errorf("no item %s on %s", itemID, subID)
}
