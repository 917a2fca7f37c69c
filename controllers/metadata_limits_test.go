package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/yaml"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/identity"
)

// TestOperatorMetadataKeysLeaveRoom counts the keys the operator writes on
// each kind's Stripe objects against Stripe's 50
// (https://docs.stripe.com/metadata): every CRD's spec metadata allows at
// most 50 less the operator's keys, every operator key is under the
// reserved stripe-operator.io/ prefix (which spec.metadata refuses) and at
// most 40 characters.
func TestOperatorMetadataKeysLeaveRoom(t *testing.T) {
	g := NewWithT(t)
	crds := map[string]struct {
		file string
		path []string
	}{
		"StripeCustomer":     {"billing.stripe-operator.io_stripecustomers.yaml", []string{"spec", "metadata"}},
		"StripePlan":         {"billing.stripe-operator.io_stripeplans.yaml", []string{"spec", "product", "metadata"}},
		"StripeSubscription": {"billing.stripe-operator.io_stripesubscriptions.yaml", []string{"spec", "metadata"}},
		"StripeCoupon":       {"billing.stripe-operator.io_stripecoupons.yaml", []string{"spec", "metadata"}},
	}
	g.Expect(operatorMetadataKeys).To(HaveLen(len(crds)))
	for kind, crd := range crds {
		keys := operatorMetadataKeys[kind]
		seen := map[string]bool{}
		for _, k := range keys {
			g.Expect(seen[k]).To(BeFalse(), "%s: %s listed twice", kind, k)
			seen[k] = true
			g.Expect(k).To(HavePrefix(billingv1alpha1.StripeMetadataPrefix))
			g.Expect(len(k)).To(BeNumerically("<=", 40), "Stripe keys are at most 40 characters: %s", k)
		}
		want := billingv1alpha1.StripeMaxMetadataKeys - len(keys)
		g.Expect(maxUserMetadataKeys[kind]).To(Equal(want), "%s: 50 keys less the operator's %d", kind, len(keys))

		raw, err := os.ReadFile(filepath.Join("..", "config", "crd", "bases", crd.file))
		g.Expect(err).NotTo(HaveOccurred())
		var def apiextensionsv1.CustomResourceDefinition
		g.Expect(yaml.Unmarshal(raw, &def)).To(Succeed())
		for _, v := range def.Spec.Versions {
			s := v.Schema.OpenAPIV3Schema
			for _, p := range crd.path {
				next, ok := s.Properties[p]
				g.Expect(ok).To(BeTrue(), "%s %s: no %s", kind, v.Name, strings.Join(crd.path, "."))
				s = &next
			}
			g.Expect(s.MaxProperties).NotTo(BeNil(), "%s %s: %s has no maxProperties", kind, v.Name, strings.Join(crd.path, "."))
			g.Expect(int(*s.MaxProperties)).To(Equal(want), "%s %s: %s", kind, v.Name, strings.Join(crd.path, "."))
			g.Expect(s.AdditionalProperties.Schema.MaxLength).NotTo(BeNil())
			g.Expect(int(*s.AdditionalProperties.Schema.MaxLength)).To(Equal(500), "values are at most 500 characters")
		}
	}
}

// fullMetadata is n user keys of 40 characters with values of 500.
func fullMetadata(n int) billingv1alpha1.Metadata {
	md := billingv1alpha1.Metadata{}
	for i := range n {
		k := fmt.Sprintf("key-%02d-", i)
		md[k+strings.Repeat("k", 40-len(k))] = billingv1alpha1.MetadataValue(strings.Repeat("v", 500))
	}
	return md
}

// TestMaxUserMetadataOnEveryKindReady: the most user metadata each kind
// admits (keys of 40 characters, values of 500) reaches Ready with the
// test-mode Stripe refusing more than 50 keys, as Stripe does; the Stripe
// objects carry the user's keys and the operator's; one key more is refused
// by the API server with a message naming the field.
func TestMaxUserMetadataOnEveryKindReady(t *testing.T) {
	h := startHarness(t, harnessOptions{})
	g := NewWithT(t)
	ctx := context.Background()
	cus := newCustomer("cus", func(s *billingv1alpha1.StripeCustomerSpec) {
		s.Metadata = fullMetadata(billingv1alpha1.MaxUserMetadataKeysCustomer)
	})
	plan := newPlan("plan", 500, func(s *billingv1alpha1.StripePlanSpec) {
		s.Product.Metadata = fullMetadata(billingv1alpha1.MaxUserMetadataKeysPlan)
	})
	sub := newSub("sub", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.Metadata = fullMetadata(billingv1alpha1.MaxUserMetadataKeysSubscription)
	}, planItem("plan", 1))
	h.create(cus)
	h.create(plan)
	h.create(sub)
	h.waitReady(cus)
	h.waitReady(plan)
	h.waitReady(sub)

	c := h.stripeCustomer(cus.Status.CustomerID)
	g.Expect(c.Metadata).To(HaveLen(billingv1alpha1.MaxUserMetadataKeysCustomer + len(identity.Keys)))
	prod, err := h.stripe.GetProduct(ctx, plan.Status.ProductID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(prod.Metadata).To(HaveLen(billingv1alpha1.MaxUserMetadataKeysPlan + len(identity.Keys)))
	g.Expect(h.stripePrice(plan.Status.PriceID).Metadata).To(HaveLen(billingv1alpha1.MaxUserMetadataKeysPlan + len(identity.Keys)))
	g.Expect(h.snapshot(sub).Metadata).To(HaveLen(billingv1alpha1.MaxUserMetadataKeysSubscription + len(identity.Keys)))

	// One key more is refused, naming the field.
	over := newCustomer("over", func(s *billingv1alpha1.StripeCustomerSpec) {
		s.Metadata = fullMetadata(billingv1alpha1.MaxUserMetadataKeysCustomer + 1)
	})
	over.SetNamespace(h.ns)
	err = h.c.Create(ctx, over)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("spec.metadata"))
	overPlan := newPlan("over", 500, func(s *billingv1alpha1.StripePlanSpec) {
		s.Product.Metadata = fullMetadata(billingv1alpha1.MaxUserMetadataKeysPlan + 1)
	})
	overPlan.SetNamespace(h.ns)
	err = h.c.Create(ctx, overPlan)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("spec.product.metadata"))
	overSub := newSub("over", func(s *billingv1alpha1.StripeSubscriptionSpec) {
		s.Metadata = fullMetadata(billingv1alpha1.MaxUserMetadataKeysSubscription + 1)
	}, planItem("plan", 1))
	overSub.SetNamespace(h.ns)
	err = h.c.Create(ctx, overSub)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("spec.metadata"))
}
