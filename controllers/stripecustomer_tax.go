package controllers

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// A StripeCustomer's tax details: address, shipping, tax IDs and
// tax_exempt, declared in the spec or read from a Secret of the same
// namespace (spec.taxDetailsFrom). They are personal data: their values are
// never logged, never put into status, events or condition messages (which
// name fields only), and a document that does not parse is reported without
// the parser's text, which may quote it.
//
// The Secret is read with a single get through an uncached reader
// (SecretReader), never listed or watched: the manager holds no Secret
// cache beyond its credentials. It needs read access to Secrets in the
// namespace, which the namespace's owner grants by binding the ClusterRole
// stripe-operator-tax-details-reader there
// (config/rbac/tax_details_reader_role.yaml). A change of the Secret is
// applied at the next pass (the resync, or any change of the resource).
//
// Tax IDs are separate, immutable Stripe objects
// (https://docs.stripe.com/api/tax_ids): a declared tax ID missing in
// Stripe is created, one in Stripe that is not declared is deleted, so a
// changed value is a delete and a create. Only a declared list is managed;
// without one, the customer's tax IDs are left alone.

// taxDetails is the declared tax part of a customer.
type taxDetails struct {
	address   *billingv1alpha1.Address
	shipping  *billingv1alpha1.Shipping
	taxIDs    []billingv1alpha1.TaxID
	taxIDsSet bool
	taxExempt string
	source    string
}

// resolveTaxDetails merges the spec's fields with the Secret's.
func (x *customerExternal) resolveTaxDetails(ctx context.Context) (*taxDetails, error) {
	spec := &x.obj.Spec
	d := &taxDetails{address: spec.Address, shipping: spec.Shipping, taxIDs: spec.TaxIDs, taxIDsSet: spec.TaxIDs != nil,
		taxExempt: string(spec.TaxExempt), source: "Spec"}
	from := spec.TaxDetailsFrom
	if from == nil {
		return d, nil
	}
	name := from.SecretRef.Name
	d.source = "Secret/" + name
	if x.r.SecretReader == nil {
		return nil, newSpecError(billingv1alpha1.ReasonTaxDetailsInvalid, "spec.taxDetailsFrom names Secret %q but the operator runs without a Secret reader.", name)
	}
	var sec corev1.Secret
	if err := x.r.SecretReader.Get(ctx, types.NamespacedName{Namespace: x.obj.Namespace, Name: name}, &sec); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return nil, newSpecError(billingv1alpha1.ReasonTaxDetailsInvalid, "Secret %q named by spec.taxDetailsFrom does not exist in namespace %s.", name, x.obj.Namespace)
		case apierrors.IsForbidden(err):
			return nil, newSpecError(billingv1alpha1.ReasonTaxDetailsInvalid, "The operator may not read Secret %q named by spec.taxDetailsFrom: bind the ClusterRole stripe-operator-tax-details-reader to its service account in namespace %s.", name, x.obj.Namespace)
		}
		return nil, fmt.Errorf("reading Secret %s named by spec.taxDetailsFrom: %w", name, err)
	}
	parse := func(key string, into any, inSpec bool) (bool, error) {
		raw, ok := sec.Data[key]
		if !ok {
			return false, nil
		}
		if inSpec {
			return false, newSpecError(billingv1alpha1.ReasonTaxDetailsInvalid, "spec.%s and key %q of Secret %q both declare it; declare it in one place.", key, key, name)
		}
		if err := yaml.UnmarshalStrict(raw, into); err != nil {
			// The parser's message may quote the value: never repeat it.
			return false, newSpecError(billingv1alpha1.ReasonTaxDetailsInvalid, "Key %q of Secret %q is not a valid YAML or JSON %s document.", key, name, key)
		}
		return true, nil
	}
	var addr billingv1alpha1.Address
	if ok, err := parse(billingv1alpha1.TaxSecretKeyAddress, &addr, spec.Address != nil); err != nil {
		return nil, err
	} else if ok {
		d.address = &addr
	}
	var ship billingv1alpha1.Shipping
	if ok, err := parse(billingv1alpha1.TaxSecretKeyShipping, &ship, spec.Shipping != nil); err != nil {
		return nil, err
	} else if ok {
		d.shipping = &ship
	}
	var ids []billingv1alpha1.TaxID
	if ok, err := parse(billingv1alpha1.TaxSecretKeyTaxIDs, &ids, spec.TaxIDs != nil); err != nil {
		return nil, err
	} else if ok {
		d.taxIDs, d.taxIDsSet = ids, true
	}
	if raw, ok := sec.Data[billingv1alpha1.TaxSecretKeyTaxExempt]; ok {
		if spec.TaxExempt != "" {
			return nil, newSpecError(billingv1alpha1.ReasonTaxDetailsInvalid, "spec.taxExempt and key %q of Secret %q both declare it; declare it in one place.", billingv1alpha1.TaxSecretKeyTaxExempt, name)
		}
		d.taxExempt = string(raw)
	}
	return d, d.validate(name)
}

// validate checks what the CRD schema checks for the inline fields.
func (d *taxDetails) validate(secret string) error {
	bad := func(field string) error {
		return newSpecError(billingv1alpha1.ReasonTaxDetailsInvalid, "Secret %q: %s is not valid (see the StripeCustomer field of the same name).", secret, field)
	}
	country := func(a *billingv1alpha1.Address) bool {
		return a == nil || a.Country == "" || (len(a.Country) == 2 && a.Country[0] >= 'A' && a.Country[0] <= 'Z' && a.Country[1] >= 'A' && a.Country[1] <= 'Z')
	}
	if !country(d.address) {
		return bad("address.country")
	}
	if d.shipping != nil && (d.shipping.Name == "" || !country(&d.shipping.Address)) {
		return bad("shipping")
	}
	for _, t := range d.taxIDs {
		if t.Type == "" || t.Value == "" {
			return bad("taxIDs")
		}
	}
	switch d.taxExempt {
	case "", "none", "exempt", "reverse":
	default:
		return bad("taxExempt")
	}
	return nil
}

func toStripeAddress(a billingv1alpha1.Address) stripe.Address {
	return stripe.Address{Line1: a.Line1, Line2: a.Line2, City: a.City, State: a.State, PostalCode: a.PostalCode, Country: a.Country}
}

// taxWork is what Update does for the tax IDs.
type taxWork struct {
	create []stripe.TaxID
	delete []string
}

// diffTax compares the declared tax details with Stripe, adding to p what
// the customer update writes, and returns the differing fields' names.
func (x *customerExternal) diffTax(ctx context.Context, p *stripe.CustomerParams) ([]string, error) {
	d, err := x.resolveTaxDetails(ctx)
	if err != nil {
		return nil, err
	}
	x.taxSource = d.source
	if d.taxIDsSet && !x.cus.TaxDetailsRead {
		// A copy without its tax IDs (one from a resync's list) would make
		// every declared tax ID look missing: read the customer itself.
		// Address, shipping and tax_exempt are in a listed copy too.
		cus, err := x.r.Stripe.GetCustomer(ctx, x.cus.ID)
		if err != nil {
			return nil, fmt.Errorf("reading customer %s with its tax details: %w", x.cus.ID, err)
		}
		x.cus = cus
	}
	var fields []string
	if d.address != nil {
		want := toStripeAddress(*d.address)
		if x.cus.Address == nil || *x.cus.Address != want {
			p.Address = &want
			fields = append(fields, "address")
		}
	}
	if d.shipping != nil {
		want := stripe.Shipping{Name: d.shipping.Name, Phone: d.shipping.Phone, Address: toStripeAddress(d.shipping.Address)}
		if x.cus.Shipping == nil || *x.cus.Shipping != want {
			p.Shipping = &want
			fields = append(fields, "shipping")
		}
	}
	if d.taxExempt != "" {
		have := x.cus.TaxExempt
		if have == "" {
			have = string(billingv1alpha1.TaxExemptNone)
		}
		if have != d.taxExempt {
			v := d.taxExempt
			p.TaxExempt = &v
			fields = append(fields, "taxExempt")
		}
	}
	x.taxIDs = taxWork{}
	if d.taxIDsSet {
		want := map[string]billingv1alpha1.TaxID{}
		for _, t := range d.taxIDs {
			want[t.Type+"\x00"+t.Value] = t
		}
		have := map[string]bool{}
		for _, t := range x.cus.TaxIDs {
			k := t.Type + "\x00" + t.Value
			if _, ok := want[k]; !ok || have[k] {
				x.taxIDs.delete = append(x.taxIDs.delete, t.ID)
				continue
			}
			have[k] = true
		}
		for _, t := range d.taxIDs {
			if k := t.Type + "\x00" + t.Value; !have[k] {
				have[k] = true
				x.taxIDs.create = append(x.taxIDs.create, stripe.TaxID{Type: t.Type, Value: t.Value})
			}
		}
		if len(x.taxIDs.create)+len(x.taxIDs.delete) > 0 {
			fields = append(fields, "taxIDs")
		}
	}
	return fields, nil
}

// updateTaxIDs deletes the tax IDs that are not declared and creates the
// missing ones (a changed value is both). A value Stripe refuses stalls
// the resource naming the entry's type, never its value.
func (x *customerExternal) updateTaxIDs(ctx context.Context) error {
	for _, id := range x.taxIDs.delete {
		if err := x.writes.DeleteTaxID(ctx, x.owner, x.cus.ID, id); err != nil && !stripe.IsNotFound(err) {
			return fmt.Errorf("deleting tax ID %s of customer %s: %w", id, x.cus.ID, err)
		}
	}
	for _, t := range x.taxIDs.create {
		if _, err := x.writes.CreateTaxID(ctx, x.owner, x.cus.ID, t); err != nil {
			if stripe.ClassOf(err) == stripe.ClassTerminal {
				return newSpecError(billingv1alpha1.ReasonTaxDetailsInvalid, "Stripe refused a tax ID of type %s for customer %s; check its value.", t.Type, x.cus.ID)
			}
			return fmt.Errorf("creating a tax ID of type %s for customer %s: %w", t.Type, x.cus.ID, err)
		}
	}
	if len(x.taxIDs.create)+len(x.taxIDs.delete) > 0 {
		cus, err := x.r.Stripe.GetCustomer(ctx, x.cus.ID)
		if err != nil {
			return fmt.Errorf("reading customer %s after changing its tax IDs: %w", x.cus.ID, err)
		}
		x.cus = cus
	}
	return nil
}

// reportTax writes status.tax from the customer as last read.
func (x *customerExternal) reportTax() {
	c := x.cus
	if c == nil {
		return
	}
	if !c.TaxDetailsRead {
		// A copy from a resync's list has neither customer.tax nor the tax
		// IDs: keep what the last full read recorded.
		if prev := x.obj.Status.Tax; prev != nil {
			prev.TaxExempt, prev.Source = c.TaxExempt, x.taxSource
		}
		return
	}
	declared := x.obj.Spec.Address != nil || x.obj.Spec.Shipping != nil || x.obj.Spec.TaxIDs != nil || x.obj.Spec.TaxExempt != "" || x.obj.Spec.TaxDetailsFrom != nil
	if !declared && c.AutomaticTax == "" {
		x.obj.Status.Tax = nil
		return
	}
	st := &billingv1alpha1.CustomerTaxStatus{AutomaticTax: c.AutomaticTax, TaxExempt: c.TaxExempt, Source: x.taxSource}
	for _, t := range c.TaxIDs {
		st.TaxIDs = append(st.TaxIDs, billingv1alpha1.ObservedTaxID{ID: t.ID, Type: t.Type, Verification: t.Verification})
	}
	sort.Slice(st.TaxIDs, func(i, j int) bool { return st.TaxIDs[i].ID < st.TaxIDs[j].ID })
	x.obj.Status.Tax = st
}
