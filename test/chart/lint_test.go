package chart_test

import (
	"testing"

	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestChartLints runs `helm lint` (through Helm's SDK) with the default
// values and with every optional part enabled.
func TestChartLints(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"defaults": nil,
		"everything enabled": {
			"metrics":       map[string]any{"serviceMonitor": map[string]any{"enabled": true}, "prometheusRule": map[string]any{"enabled": true}, "dashboard": map[string]any{"enabled": true}},
			"networkPolicy": map[string]any{"enabled": true, "apiServerCIDRs": []any{"10.0.0.1/32"}},
		},
		"in-process webhook server": {"webhookServer": map[string]any{"enabled": false}},
	} {
		t.Run(name, func(t *testing.T) {
			res := lint.All(chartDir(), values, releaseNS, false)
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint: %s", m)
				}
			}
		})
	}
}
