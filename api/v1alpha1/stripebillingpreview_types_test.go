package v1alpha1

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

// spec.plans[].spec has no schema in the CRD: DecodeSpec is what refuses a
// bad plan spec, naming the field.
func TestPreviewPlanDecodeSpecIsStrict(t *testing.T) {
	ok, err := NewPreviewPlan("pro", StripePlanSpec{Price: PriceSpec{Currency: "usd", UnitAmount: 1500}})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ok.DecodeSpec()
	if err != nil || spec.Price.UnitAmount != 1500 || spec.Price.Currency != "usd" {
		t.Fatalf("DecodeSpec = %+v, %v; want the embedded spec", spec, err)
	}
	for raw, want := range map[string]string{
		`{"price":{"currency":"usd","unitAmout":1500}}`:  `unknown field "price.unitAmout"`,
		`{"price":{"currency":"usd","unitAmount":"15"}}`: "unitAmount",
		`{"price":{"currency":"usd"},"price":{}}`:        `duplicate field "price"`,
		``: "Required",
	} {
		p := PreviewPlan{Name: "pro", Spec: runtime.RawExtension{Raw: []byte(raw)}}
		_, err := p.DecodeSpec()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeSpec(%s) = %v, want an error naming %q", raw, err, want)
		}
	}
}
