package v1alpha1

// BoundStripeIDs: the Stripe objects each kind's status records as bound to
// the resource. The operator writes to no other Stripe object on a
// resource's behalf (besides those it binds in the same pass: adopted after
// the ownership check, found under the resource's own identity, or
// created), and only while the object's identity metadata still names the
// resource.

// BoundStripeIDs returns status.customerID.
func (o *StripeCustomer) BoundStripeIDs() []string { return []string{o.Status.CustomerID} }

// BoundStripeIDs returns status.productID, status.priceID and
// status.previousPriceIDs.
func (o *StripePlan) BoundStripeIDs() []string {
	return append([]string{o.Status.ProductID, o.Status.PriceID}, o.Status.PreviousPriceIDs...)
}

// BoundStripeIDs returns status.subscriptionID.
func (o *StripeSubscription) BoundStripeIDs() []string { return []string{o.Status.SubscriptionID} }

// BoundStripeIDs returns status.endpointID and status.previousEndpointID.
func (o *StripeWebhookEndpoint) BoundStripeIDs() []string {
	return []string{o.Status.EndpointID, o.Status.PreviousEndpointID}
}
