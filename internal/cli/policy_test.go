package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

// The policy commands need no cluster; loading the policies runs their
// tests, which takes a while, so these tests run in parallel.

const bareJob = "../../mutate/testdata/golden/bare.input.yaml"

// escapingJob asks for a privileged container and the node's filesystem.
const escapingJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: claude-job-evil
  labels: {app: flowforge, component: worker, job-id: evil, user-id: u-666}
  annotations: {flowforge.io/repository: acme/app}
spec:
  template:
    spec:
      containers:
      - name: worker
        image: ghcr.io/flowforge/claude-worker:1.4.0
        securityContext: {privileged: true}
        volumeMounts: [{name: host, mountPath: /host}]
      volumes:
      - name: host
        hostPath: {path: /}
`

// policyRun runs a policy command line with no cluster at all.
func policyRun(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	h := &harness{t: t, now: t0, stdin: stdin}
	h.clientErr = assert.AnError
	h.clientsetErr = assert.AnError
	return h.run(args...)
}

func hardenedJob(t *testing.T, out string) *batchv1.Job {
	t.Helper()
	var job batchv1.Job
	require.NoError(t, yaml.UnmarshalStrict([]byte(out), &job), out)
	return &job
}

var admitted = regexp.MustCompile(`(?m)^Admitted \(policy \S+; the webhook's patch has (\d+) operations\)$`)

func TestPolicyApply(t *testing.T) {
	t.Run("a bare Job is hardened and admitted", func(t *testing.T) {
		t.Parallel()
		res := policyRun(t, "", "policy", "apply", "-f", bareJob)
		require.Equal(t, ExitOK, res.code, res.err)
		job := hardenedJob(t, res.out)
		spec := job.Spec.Template.Spec
		require.NotNil(t, spec.RuntimeClassName)
		assert.Equal(t, "gvisor", *spec.RuntimeClassName)
		require.NotNil(t, spec.SecurityContext)
		require.NotNil(t, spec.SecurityContext.SeccompProfile)
		assert.Equal(t, "Localhost", string(spec.SecurityContext.SeccompProfile.Type))
		assert.NotEmpty(t, job.Annotations["flowforge.io/policy-revision"])
		require.Len(t, spec.Containers, 1)
		sc := spec.Containers[0].SecurityContext
		require.NotNil(t, sc)
		require.NotNil(t, sc.AllowPrivilegeEscalation)
		assert.False(t, *sc.AllowPrivilegeEscalation)

		m := admitted.FindStringSubmatch(res.err)
		require.NotNil(t, m, "the verdict is on stderr: %s", res.err)
		ops, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		assert.Positive(t, ops)
		assert.Contains(t, res.err, "Admitted (policy "+job.Annotations["flowforge.io/policy-revision"]+";")
		assert.NotContains(t, res.out, "Admitted", "stdout is only the Job")
	})
	t.Run("from stdin, with a namespace label", func(t *testing.T) {
		t.Parallel()
		data, err := os.ReadFile(bareJob)
		require.NoError(t, err)
		res := policyRun(t, string(data), "policy", "apply", "-f", "-",
			"--job-namespace", "agents", "--namespace-label", "flowforge.io/seccomp=runtime-default")
		require.Equal(t, ExitOK, res.code, res.err)
		job := hardenedJob(t, res.out)
		require.NotNil(t, job.Spec.Template.Spec.SecurityContext.SeccompProfile)
		assert.Equal(t, "RuntimeDefault", string(job.Spec.Template.Spec.SecurityContext.SeccompProfile.Type),
			"the namespace's label selects the seccomp override")
		assert.Regexp(t, admitted, res.err)
	})
	t.Run("as another user", func(t *testing.T) {
		// Not parallel: each run loads and tests the policy, which is
		// CPU-bound; the trusted-submitter case is in the policy's tests.
		res := policyRun(t, "", "policy", "apply", "-f", bareJob, "--as", "mallory")
		assert.Equal(t, ExitDenied, res.code)
		assert.Contains(t, res.err, `metadata.labels[user-id]: Forbidden: user-id "u-42" is not the requester: "mallory"`)
	})
	t.Run("an escaping Job is denied", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "evil.yaml")
		require.NoError(t, os.WriteFile(path, []byte(escapingJob), 0o600))
		res := policyRun(t, "", "policy", "apply", "-f", path)
		assert.Equal(t, ExitDenied, res.code)
		assert.Contains(t, res.err, "Denied (policy ")
		assert.Contains(t, res.err, "spec.template.spec.volumes[0].hostPath: Forbidden")
		assert.Contains(t, res.err, "spec.template.spec.containers[0].securityContext.privileged: Forbidden")
		assert.Contains(t, res.err, "Warning: spec.template.spec.containers[0].image: ", "validation warnings are shown")
		assert.NotContains(t, res.err, "Admitted")
		assert.NotContains(t, res.err, "Error:", "the denial is explained once, by the verdict")
		hardenedJob(t, res.out) // the hardened Job is still shown
	})
	t.Run("an unlabelled Job in a managed namespace is denied", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "unlabelled.yaml")
		require.NoError(t, os.WriteFile(path, []byte(strings.Replace(escapingJob, "app: flowforge, ", "", 1)), 0o600))
		res := policyRun(t, "", "policy", "apply", "-f", path,
			"--job-namespace", "agents", "--namespace-label", "flowforge.io/managed=true")
		assert.Equal(t, ExitDenied, res.code)
		assert.Contains(t, res.err, `namespace "agents" is managed by FlowForge`)
		assert.Contains(t, res.err, "metadata.labels[app]")
	})
}

func TestPolicyApplyRefusedByTheMutatingWebhook(t *testing.T) {
	t.Parallel()
	res := policyRun(t, "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x, labels: {app: flowforge}}\nspec: \"not a spec\"\n",
		"policy", "apply", "-f", "-")
	assert.Equal(t, ExitDenied, res.code)
	assert.Equal(t, "Error: the mutating webhook refused the Job: the object is not a decodable batch/v1 Job: "+
		"json: cannot unmarshal string into Go struct field Job.spec of type v1.JobSpec\n", res.err)
	assert.Empty(t, res.out)
}

func TestPolicyApplyUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notYAML := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(notYAML, []byte("kind: [unclosed\n"), 0o600))
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file", []string{"policy", "apply"}, ExitUsage, "Error: -f job.yaml is required"},
		{"a missing file", []string{"policy", "apply", "-f", filepath.Join(dir, "missing.yaml")}, ExitUsage, "missing.yaml"},
		{"not YAML", []string{"policy", "apply", "-f", notYAML}, ExitUsage, "Error: " + notYAML + ": "},
		{"a bad namespace label", []string{"policy", "apply", "-f", bareJob, "--namespace-label", "managed"}, ExitUsage,
			`Error: --namespace-label "managed": want key=value`},
		{"a bad policy dir", []string{"policy", "apply", "-f", bareJob, "--policy-dir", filepath.Join(dir, "nowhere")}, ExitError,
			"Error: policy from " + filepath.Join(dir, "nowhere") + " refused"},
		{"arguments", []string{"policy", "apply", "job.yaml"}, ExitError, `unknown command "job.yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := policyRun(t, "", tt.args...)
			assert.Equal(t, tt.code, res.code, res.err)
			assert.Contains(t, res.err, tt.want)
			assert.Empty(t, res.out)
		})
	}
}

// writePolicyDir writes a minimal policy set: one module and its tests.
func writePolicyDir(t *testing.T, tests string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "small.rego"), []byte("package small\n\nanswer := 42\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "small_test.rego"), []byte("package small_test\n\nimport data.small\n\n"+tests), 0o600))
	return dir
}

var passSummary = regexp.MustCompile(`(?m)^PASS: (\d+)/(\d+) tests of embedded policies$`)

func TestPolicyTest(t *testing.T) {
	t.Run("the embedded policies pass; -v lists every test", func(t *testing.T) {
		t.Parallel()
		res := policyRun(t, "", "policy", "test", "-v")
		require.Equal(t, ExitOK, res.code, res.err)
		out := lines(res.out)
		m := passSummary.FindStringSubmatch(res.out)
		require.NotNil(t, m, res.out)
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		assert.Greater(t, n, 10)
		require.Len(t, out, n+1, "a line per test, and the summary")
		testLine := regexp.MustCompile(`^PASS  flowforge\.\S+\.test_\S+ \(\S+\)$`)
		for _, l := range out[:n] {
			assert.Regexp(t, testLine, l)
		}
		assert.Contains(t, res.out, "PASS  flowforge.validate.managed_namespace_test.test_unlabelled_job_in_managed_namespace_denied (")
	})
	t.Run("a policy dir whose tests pass", func(t *testing.T) {
		t.Parallel()
		dir := writePolicyDir(t, "test_answer if small.answer == 42\n\ntest_question if small.answer > 0\n")
		res := policyRun(t, "", "policy", "test", "--policy-dir", dir)
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "PASS: 2/2 tests of "+dir+"\n", res.out, "only the summary without -v")
	})
	t.Run("a policy dir, verbose", func(t *testing.T) {
		t.Parallel()
		dir := writePolicyDir(t, "test_answer if small.answer == 42\n\ntest_question if small.answer > 0\n")
		res := policyRun(t, "", "policy", "test", "--policy-dir", dir, "--verbose")
		require.Equal(t, ExitOK, res.code, res.err)
		out := lines(res.out)
		require.Len(t, out, 3, res.out)
		listed := regexp.MustCompile(` \(\S+\)$`)
		assert.ElementsMatch(t, []string{"PASS  small_test.test_answer", "PASS  small_test.test_question"},
			[]string{listed.ReplaceAllString(out[0], ""), listed.ReplaceAllString(out[1], "")})
		assert.Equal(t, "PASS: 2/2 tests of "+dir, out[2])
	})
	t.Run("a failing test", func(t *testing.T) {
		t.Parallel()
		dir := writePolicyDir(t, "test_answer if small.answer == 42\n\ntest_wrong_answer if small.answer == 41\n")
		res := policyRun(t, "", "policy", "test", "--policy-dir", dir)
		assert.Equal(t, ExitFailed, res.code)
		assert.Regexp(t, `^FAIL  small_test\.test_wrong_answer \(\S+\)\n$`, res.out, "only the failure is listed without -v")
		assert.Contains(t, res.err, "Error: "+dir+": 1 of 2 policy tests failed: data.small_test.test_wrong_answer")
	})
	t.Run("a policy dir without tests", func(t *testing.T) {
		t.Parallel()
		dir := writePolicyDir(t, "helper := 1\n")
		res := policyRun(t, "", "policy", "test", "--policy-dir", dir)
		assert.Equal(t, ExitFailed, res.code)
		assert.Contains(t, res.err, "policies have no tests")
	})
	t.Run("a policy dir that does not parse", func(t *testing.T) {
		t.Parallel()
		dir := writePolicyDir(t, "test_broken if {\n")
		res := policyRun(t, "", "policy", "test", "--policy-dir", dir)
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "Error: load "+dir+": ")
		assert.Empty(t, res.out)
	})
}
