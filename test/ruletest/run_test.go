package ruletest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const rulesFile = `groups:
- name: g
  rules:
  - alert: Down
    expr: up == 0
    for: 2m
    labels: {severity: page}
`

func write(t *testing.T, tests string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rulesFile), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte(tests), 0o644))
	return filepath.Join(dir, "tests.yaml")
}

func TestRunPassesAndFailsAsPromtoolDoes(t *testing.T) {
	const series = `rule_files: [rules.yaml]
tests:
- interval: 1m
  input_series:
  - {series: 'up{job="a"}', values: '1 1 0 0 0 0'}
  alert_rule_test:
`
	pass := write(t, series+`  - {eval_time: 2m, alertname: Down, exp_alerts: []}
  - eval_time: 5m
    alertname: Down
    exp_alerts: [{exp_labels: {severity: page, job: a}}]
`)
	require.Empty(t, Run(pass))

	fail := write(t, series+`  - {eval_time: 3m, alertname: Down, exp_alerts: [{exp_labels: {severity: page, job: a}}]}
`)
	errs := Run(fail)
	require.Len(t, errs, 1, "pending at 3m, not firing")
	require.Contains(t, errs[0].Error(), "alertname: Down, time: 3m")

	require.NotEmpty(t, Run(filepath.Join(t.TempDir(), "missing.yaml")))
	require.NotEmpty(t, Run(write(t, "rule_files: [rules.yaml]\nunknown_field: 1\n")), "unknown fields are refused")
}

func TestParseTime(t *testing.T) {
	got, err := parseTime("1.5")
	require.NoError(t, err)
	require.Equal(t, int64(1500), got.UnixMilli())
	got, err = parseTime("2026-12-01T00:00:00Z")
	require.NoError(t, err)
	require.Equal(t, 2026, got.Year())
	_, err = parseTime("yesterday")
	require.Error(t, err)
}
