package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// The accessors below let the reconcilers share condition and
// observedGeneration handling across kinds.

// GetConditions returns the status conditions.
func (c *StripeCustomer) GetConditions() []metav1.Condition { return c.Status.Conditions }

// SetConditions replaces the status conditions.
func (c *StripeCustomer) SetConditions(conds []metav1.Condition) { c.Status.Conditions = conds }

// GetObservedGeneration returns the generation last reconciled.
func (c *StripeCustomer) GetObservedGeneration() int64 { return c.Status.ObservedGeneration }

// SetObservedGeneration records the generation last reconciled.
func (c *StripeCustomer) SetObservedGeneration(g int64) { c.Status.ObservedGeneration = g }

// GetManagementPolicy returns the management policy, Manage when unset.
func (c *StripeCustomer) GetManagementPolicy() ManagementPolicy {
	return defaultPolicy(c.Spec.ManagementPolicy)
}

// GetConditions returns the status conditions.
func (p *StripePlan) GetConditions() []metav1.Condition { return p.Status.Conditions }

// SetConditions replaces the status conditions.
func (p *StripePlan) SetConditions(conds []metav1.Condition) { p.Status.Conditions = conds }

// GetObservedGeneration returns the generation last reconciled.
func (p *StripePlan) GetObservedGeneration() int64 { return p.Status.ObservedGeneration }

// SetObservedGeneration records the generation last reconciled.
func (p *StripePlan) SetObservedGeneration(g int64) { p.Status.ObservedGeneration = g }

// GetManagementPolicy returns the management policy, Manage when unset.
func (p *StripePlan) GetManagementPolicy() ManagementPolicy {
	return defaultPolicy(p.Spec.ManagementPolicy)
}

// GetConditions returns the status conditions.
func (s *StripeSubscription) GetConditions() []metav1.Condition { return s.Status.Conditions }

// SetConditions replaces the status conditions.
func (s *StripeSubscription) SetConditions(conds []metav1.Condition) { s.Status.Conditions = conds }

// GetObservedGeneration returns the generation last reconciled.
func (s *StripeSubscription) GetObservedGeneration() int64 { return s.Status.ObservedGeneration }

// SetObservedGeneration records the generation last reconciled.
func (s *StripeSubscription) SetObservedGeneration(g int64) { s.Status.ObservedGeneration = g }

// GetManagementPolicy returns the management policy, Manage when unset.
func (s *StripeSubscription) GetManagementPolicy() ManagementPolicy {
	return defaultPolicy(s.Spec.ManagementPolicy)
}

func defaultPolicy(p ManagementPolicy) ManagementPolicy {
	if p == "" {
		return ManagementPolicyManage
	}
	return p
}

// GetConditions returns the status conditions.
func (p *StripeBillingPreview) GetConditions() []metav1.Condition { return p.Status.Conditions }

// SetConditions replaces the status conditions.
func (p *StripeBillingPreview) SetConditions(conds []metav1.Condition) { p.Status.Conditions = conds }

// SetObservedGeneration records the generation answered.
func (p *StripeBillingPreview) SetObservedGeneration(g int64) { p.Status.ObservedGeneration = g }

// GetManagementPolicy is Observe: a preview only reads Stripe.
func (p *StripeBillingPreview) GetManagementPolicy() ManagementPolicy { return ManagementPolicyObserve }
