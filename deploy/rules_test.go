package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/test/ruletest"
)

// prometheusRuleSpec returns the groups of monitoring/prometheus-rule.yaml
// as a Prometheus rules file, with the names of its alerts and of its
// recording rules.
func prometheusRuleSpec(t *testing.T) (rulesFile []byte, alerts, records []string) {
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
			if rec, ok := r["record"].(string); ok {
				records = append(records, rec)
			}
		}
	}
	var spec map[string]any
	require.NoError(t, yaml.Unmarshal(data, &spec))
	out, err := yaml.Marshal(spec["spec"])
	require.NoError(t, err)
	return out, alerts, records
}

// TestPrometheusRules runs monitoring/testdata/prometheus-rule_test.yaml, in
// promtool's `test rules` format, against the PrometheusRule's rules with
// promtool's own test code (test/ruletest).
func TestPrometheusRules(t *testing.T) {
	rules, alerts, records := prometheusRuleSpec(t)
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
			PromQLExprTest []struct {
				Expr       string           `json:"expr"`
				ExpSamples []map[string]any `json:"exp_samples"`
			} `json:"promql_expr_test"`
		} `json:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(tests, &doc))
	fires, recorded := map[string]bool{}, map[string]bool{}
	for _, tc := range doc.Tests {
		for _, e := range tc.PromQLExprTest {
			if len(e.ExpSamples) > 0 {
				recorded[e.Expr] = true
			}
		}
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

	// Every recording rule has a test that evaluates it by name and
	// expects samples.
	var unrecorded []string
	for _, r := range records {
		if !recorded[r] {
			unrecorded = append(unrecorded, r)
		}
	}
	require.Empty(t, unrecorded, "recording rules without a promql_expr_test in monitoring/testdata/prometheus-rule_test.yaml that expects samples")
	require.Subset(t, records, []string{"flowforge:job_cpu_usage_seconds:rate5m", "flowforge:job_memory_working_set_bytes"})
}

// TestDashboardRecordedSeries checks that every recorded series
// (level:metric:operations, with colons) the Grafana dashboard queries is
// recorded by the PrometheusRule, and that the per-job usage is on it.
func TestDashboardRecordedSeries(t *testing.T) {
	_, _, records := prometheusRuleSpec(t)
	data, err := os.ReadFile("monitoring/grafana-dashboard.json")
	require.NoError(t, err)
	used := regexp.MustCompile(`flowforge(?::[a-z_0-9]+)+`).FindAllString(string(data), -1)
	require.NotEmpty(t, used)
	for _, name := range used {
		require.Contains(t, records, name, "the dashboard queries %s, which no rule records", name)
	}
	require.Contains(t, used, "flowforge:job_cpu_usage_seconds:rate5m")
	require.Contains(t, used, "flowforge:job_memory_working_set_bytes")
}
