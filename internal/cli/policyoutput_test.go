package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

func TestPolicyStructuredOutput(t *testing.T) {
	t.Run("apply -o json prints the hardened Job as JSON", func(t *testing.T) {
		t.Parallel()
		res := policyRun(t, "", "policy", "apply", "-f", bareJob, "-o", "json")
		require.Equal(t, ExitOK, res.code, res.err)
		var job batchv1.Job
		require.NoError(t, json.Unmarshal([]byte(res.out), &job), res.out)
		assert.NotEmpty(t, job.Annotations["flowforge.io/policy-revision"])
		assert.Regexp(t, admitted, res.err, "the verdict stays on stderr")
	})
	t.Run("apply -o yaml is the default's YAML", func(t *testing.T) {
		t.Parallel()
		asYAML := policyRun(t, "", "policy", "apply", "-f", bareJob, "-o", "yaml")
		plain := policyRun(t, "", "policy", "apply", "-f", bareJob)
		require.Equal(t, ExitOK, asYAML.code, asYAML.err)
		assert.Equal(t, plain.out, asYAML.out)
	})
	t.Run("apply -o xml", func(t *testing.T) {
		t.Parallel()
		res := policyRun(t, "", "policy", "apply", "-f", bareJob, "-o", "xml")
		assert.Equal(t, ExitUsage, res.code)
		assert.Equal(t, "Error: unknown output format \"xml\": use table, json or yaml\n", res.err)
	})
	t.Run("test -o json reports every test", func(t *testing.T) {
		t.Parallel()
		res := policyRun(t, "", "policy", "test", "-o", "json")
		require.Equal(t, ExitOK, res.code, res.err)
		var rep policyTestReport
		require.NoError(t, json.Unmarshal([]byte(res.out), &rep), res.out)
		assert.True(t, rep.OK)
		assert.Equal(t, "embedded policies", rep.Source)
		assert.Greater(t, rep.Passed, 10)
		assert.Len(t, rep.Tests, rep.Passed)
		for _, r := range rep.Tests {
			assert.Equal(t, "PASS", r.Status, r.Name)
		}
	})
	t.Run("test -o yaml with a failing test", func(t *testing.T) {
		t.Parallel()
		dir := writePolicyDir(t, "test_answer if small.answer == 42\n\ntest_wrong_answer if small.answer == 41\n")
		res := policyRun(t, "", "policy", "test", "--policy-dir", dir, "-o", "yaml")
		assert.Equal(t, ExitFailed, res.code)
		var rep policyTestReport
		require.NoError(t, yaml.Unmarshal([]byte(res.out), &rep), res.out)
		assert.False(t, rep.OK)
		assert.NotEmpty(t, rep.Error)
		assert.Contains(t, res.out, "status: FAIL")
	})
}
