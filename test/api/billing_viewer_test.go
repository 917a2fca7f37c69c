package api_test

import (
	"context"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
)

// TestBillingViewerReadsTheReportOnly binds the billing-viewer ClusterRole
// of config/rbac to a user, as docs/financial-reporting.md shows: the user
// reads StripeBillingReports (and their financial status) and nothing
// else; the role carries no aggregate-to-* label, so the built-in admin,
// edit and view roles never include revenue.
func TestBillingViewerReadsTheReportOnly(t *testing.T) {
	ctx := context.Background()
	objs := decodeFile(t, repo("config", "rbac", "billing_viewer_role.yaml"))
	role, ok := objs[0].(*rbacv1.ClusterRole)
	if !ok || len(objs) != 1 || role.Name != "billing-viewer" {
		t.Fatalf("billing_viewer_role.yaml: want one ClusterRole billing-viewer, got %v", objs)
	}
	for k := range role.Labels {
		if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") {
			t.Errorf("billing-viewer carries %s: it must be aggregated to nothing", k)
		}
	}
	role.Name = "billing-viewer-test"
	mustCreate(t, role)
	t.Cleanup(func() { _ = env.Client.Delete(ctx, role) })
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "finance-team-billing-viewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "finance-team"}},
	}
	mustCreate(t, binding)
	t.Cleanup(func() { _ = env.Client.Delete(ctx, binding) })
	report := &billingv1alpha1.StripeBillingReport{ObjectMeta: metav1.ObjectMeta{Name: "billing-viewer-test"}}
	mustCreate(t, report)
	t.Cleanup(func() { _ = env.Client.Delete(ctx, report) })
	ns := newNamespace(t, "billing-viewer")

	user, err := env.ControlPlane.AddUser(envtest.User{Name: "finance-team"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(user.Config(), client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		do      func() error
		allowed bool
	}{
		{"get the report", func() error {
			return c.Get(ctx, client.ObjectKeyFromObject(report), &billingv1alpha1.StripeBillingReport{})
		}, true},
		{"list reports", func() error { return c.List(ctx, &billingv1alpha1.StripeBillingReportList{}) }, true},
		{"annotate the report (audit --now)", func() error {
			r := &billingv1alpha1.StripeBillingReport{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(report), r); err != nil {
				return err
			}
			r.Annotations = map[string]string{billingv1alpha1.AnnotationAuditNow: "x"}
			return c.Update(ctx, r)
		}, false},
		{"list subscriptions", func() error {
			return c.List(ctx, &billingv1alpha1.StripeSubscriptionList{}, client.InNamespace(ns))
		}, false},
		{"list customers", func() error {
			return c.List(ctx, &billingv1alpha1.StripeCustomerList{}, client.InNamespace(ns))
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			switch {
			case tc.allowed && err != nil:
				t.Errorf("want allowed, got %v", err)
			case !tc.allowed && !apierrors.IsForbidden(err):
				t.Errorf("want Forbidden, got %v", err)
			}
		})
	}
}
