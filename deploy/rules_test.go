package deploy

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/test/ruletest"
)

// prometheusRuleSpec returns the groups of monitoring/prometheus-rule.yaml
// as a Prometheus rules file.
func prometheusRuleSpec(t *testing.T) (rulesFile []byte, alerts []string) {
	t.Helper()
	data, err := os.ReadFile("monitoring/prometheus-rule.yaml")
	require.NoError(t, err)
	var pr struct {
		Spec struct {
			Groups []struct {
				Rules []map[string]any `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(data, &pr))
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if a, ok := r["alert"].(string); ok {
				alerts = append(alerts, a)
			}
		}
	}
	var spec map[string]any
	require.NoError(t, yaml.Unmarshal(data, &spec))
	out, err := yaml.Marshal(spec["spec"])
	require.NoError(t, err)
	return out, alerts
}

// TestPrometheusRules runs monitoring/testdata/prometheus-rule_test.yaml, in
// promtool's `test rules` format, against the PrometheusRule's rules with
// promtool's own test code (test/ruletest).
func TestPrometheusRules(t *testing.T) {
	rules, alerts := prometheusRuleSpec(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644))
	tests, err := os.ReadFile("monitoring/testdata/prometheus-rule_test.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tests.yaml"), tests, 0o644))
	for _, e := range ruletest.Run(filepath.Join(dir, "tests.yaml")) {
		t.Error(e)
	}

	// Every alert has a test in which it fires.
	var doc struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(tests, &doc))
	fires := map[string]bool{}
	for _, tc := range doc.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	var untested []string
	for _, a := range alerts {
		if !fires[a] {
			untested = append(untested, a)
		}
	}
	sort.Strings(untested)
	require.Empty(t, untested, "alerts without a test in monitoring/testdata/prometheus-rule_test.yaml where they fire")
	require.GreaterOrEqual(t, len(alerts), 10)
}
