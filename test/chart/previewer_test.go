package chart_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestBillingPreviewerIsAggregatedToNothing: the billing-previewer
// ClusterRole ships in the chart and in config/default, grants exactly what
// `kubectl stripe preview` needs, and no aggregation label hands it to
// admin, edit, view or any other role: it is granted only by a binding.
func TestBillingPreviewerIsAggregatedToNothing(t *testing.T) {
	for source, objs := range map[string][]*unstructured.Unstructured{
		"chart": render(t, releaseNS, nil), "config/default": kustomizeDefault(t),
	} {
		var role *unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == "ClusterRole" && strings.HasSuffix(o.GetName(), "billing-previewer") {
				role = o
			}
		}
		if role == nil {
			t.Errorf("%s: no billing-previewer ClusterRole", source)
			continue
		}
		for k := range role.GetLabels() {
			if strings.Contains(k, "aggregate-to") {
				t.Errorf("%s: billing-previewer carries the aggregation label %s", source, k)
			}
		}
		if _, found, _ := unstructured.NestedMap(role.Object, "aggregationRule"); found {
			t.Errorf("%s: billing-previewer has an aggregationRule", source)
		}
		var got []string
		for _, l := range rbacSummary(t, []*unstructured.Unstructured{role}) {
			got = append(got, l[strings.Index(l, ": ")+2:])
		}
		want := []string{
			"group=billing.stripe-operator.io resource=stripebillingpreviews name=- url=- verb=create",
			"group=billing.stripe-operator.io resource=stripebillingpreviews name=- url=- verb=delete",
			"group=billing.stripe-operator.io resource=stripebillingpreviews name=- url=- verb=get",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: billing-previewer grants\n  %s\nwant\n  %s", source, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
}
