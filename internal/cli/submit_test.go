package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flowforge/flowforge/contract"
)

func workerEnv(t *testing.T, job *batchv1.Job) map[string]string {
	t.Helper()
	require.NotEmpty(t, job.Spec.Template.Spec.Containers)
	env := map[string]string{}
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	return env
}

func createdJobs(h *harness) int {
	n := 0
	for _, a := range h.cs.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "jobs" {
			n++
		}
	}
	return n
}

func TestSubmitFromFlags(t *testing.T) {
	h := newHarness(t)
	res := h.run(submitArgs("a1", "--timeout", "45m", "--profile", "small")...)
	require.Equal(t, ExitOK, res.code, res.err)
	assert.Equal(t, "job a1 created: Job flowforge-jobs/claude-job-a1, policy revision -\n", res.out)
	assert.Empty(t, res.err)

	job := h.job("a1")
	assert.Equal(t, "alice", job.Labels[contract.LabelUserID])
	assert.Equal(t, "a1", job.Labels[contract.LabelJobID])
	assert.Equal(t, "acme/widgets", job.Annotations[contract.AnnotationRepository])
	assert.Equal(t, "fix-a1", job.Annotations[contract.AnnotationBranch])
	assert.Equal(t, "2700", job.Annotations[contract.AnnotationTimeout])
	assert.Equal(t, "small", job.Annotations[contract.AnnotationProfile])
	env := workerEnv(t, job)
	assert.Equal(t, "Fix the flaky test.", env["TASK"])
	assert.Equal(t, "https://github.com/acme/widgets.git", env["REPOSITORY_URL"])
}

func TestSubmitNamespaceFlag(t *testing.T) {
	h := newHarness(t)
	res := h.run(append([]string{"-n", "team-a"}, submitArgs("ns1")...)...)
	require.Equal(t, ExitOK, res.code, res.err)
	assert.Equal(t, "job ns1 created: Job team-a/claude-job-ns1, policy revision -\n", res.out)
	assert.Equal(t, []string{"team-a"}, h.namespaces)
	_, err := h.cs.Tracker().Get(jobsGVR, "team-a", "claude-job-ns1")
	require.NoError(t, err)
}

const requestYAML = `id: f1
userID: alice
repository: acme/widgets
repositoryURL: https://github.com/acme/widgets.git
branch: from-file
task: Task from the file.
timeout: 45m
profile: small
nodeSelector: {zone: eu-1}
env: {FROM_FILE: "yes"}
`

func TestSubmitFromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "request.yaml")
	require.NoError(t, os.WriteFile(path, []byte(requestYAML), 0o600))
	jsonPath := filepath.Join(dir, "request.json")
	require.NoError(t, os.WriteFile(jsonPath, []byte(`{"id":"f1","userID":"alice","repository":"acme/widgets",
		"repositoryURL":"https://github.com/acme/widgets.git","branch":"from-file","task":"Task from the file.",
		"timeout":"45m","profile":"small","nodeSelector":{"zone":"eu-1"},"env":{"FROM_FILE":"yes"}}`), 0o600))

	tests := []struct {
		name  string
		stdin string
		args  []string
		check func(t *testing.T, job *batchv1.Job)
	}{
		{
			name: "a file",
			args: []string{"-f", path},
			check: func(t *testing.T, job *batchv1.Job) {
				assert.Equal(t, "from-file", job.Annotations[contract.AnnotationBranch])
				assert.Equal(t, "2700", job.Annotations[contract.AnnotationTimeout])
				assert.Equal(t, "small", job.Annotations[contract.AnnotationProfile])
				assert.Equal(t, "Task from the file.", workerEnv(t, job)["TASK"])
			},
		},
		{
			name: "a JSON file",
			args: []string{"--filename", jsonPath},
			check: func(t *testing.T, job *batchv1.Job) {
				assert.Equal(t, "from-file", job.Annotations[contract.AnnotationBranch])
				assert.Equal(t, "2700", job.Annotations[contract.AnnotationTimeout])
			},
		},
		{
			name:  "stdin",
			stdin: requestYAML,
			args:  []string{"-f", "-"},
			check: func(t *testing.T, job *batchv1.Job) {
				assert.Equal(t, "from-file", job.Annotations[contract.AnnotationBranch])
				assert.Equal(t, "small", job.Annotations[contract.AnnotationProfile])
			},
		},
		{
			name: "flags override the file's fields",
			args: []string{"-f", path, "--branch", "from-flag", "--timeout", "1h", "--profile", "large", "--task", "Task from a flag."},
			check: func(t *testing.T, job *batchv1.Job) {
				assert.Equal(t, "from-flag", job.Annotations[contract.AnnotationBranch])
				assert.Equal(t, "3600", job.Annotations[contract.AnnotationTimeout])
				assert.Equal(t, "large", job.Annotations[contract.AnnotationProfile])
				assert.Equal(t, "Task from a flag.", workerEnv(t, job)["TASK"])
				// Fields no flag set keep the file's values.
				assert.Equal(t, "acme/widgets", job.Annotations[contract.AnnotationRepository])
				assert.Equal(t, "alice", job.Labels[contract.LabelUserID])
			},
		},
		{
			name: "key=value flags merge into the file's maps",
			args: []string{"-f", path, "--node-selector", "disk=ssd", "--node-selector", "zone=eu-2", "--env", "EXTRA=a=b"},
			check: func(t *testing.T, job *batchv1.Job) {
				assert.Equal(t, map[string]string{"zone": "eu-2", "disk": "ssd"}, job.Spec.Template.Spec.NodeSelector)
				env := workerEnv(t, job)
				assert.Equal(t, "yes", env["FROM_FILE"])
				assert.Equal(t, "a=b", env["EXTRA"], "only the first = separates key and value")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.stdin = tt.stdin
			res := h.run(append([]string{"submit"}, tt.args...)...)
			require.Equal(t, ExitOK, res.code, res.err)
			assert.Equal(t, "job f1 created: Job flowforge-jobs/claude-job-f1, policy revision -\n", res.out)
			tt.check(t, h.job("f1"))
		})
	}
}

func TestSubmitTaskFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "task.md")
	require.NoError(t, os.WriteFile(path, []byte("Task from a file.\nSecond line.\n"), 0o600))
	h := newHarness(t)
	args := submitArgs("tf1", "--task-file", path)
	res := h.run(args...)
	require.Equal(t, ExitOK, res.code, res.err)
	assert.Equal(t, "Task from a file.\nSecond line.\n", workerEnv(t, h.job("tf1"))["TASK"], "--task-file wins over --task")
}

func TestSubmitPairs(t *testing.T) {
	h := newHarness(t)
	res := h.run(submitArgs("p1",
		"--node-selector", "zone=eu-1",
		"--env", "LOG_LEVEL=debug", "--env", "EMPTY=",
		"--pod-annotation", "sim.example.com/duration=5s")...)
	require.Equal(t, ExitOK, res.code, res.err)
	job := h.job("p1")
	assert.Equal(t, "eu-1", job.Spec.Template.Spec.NodeSelector["zone"])
	env := workerEnv(t, job)
	assert.Equal(t, "debug", env["LOG_LEVEL"])
	assert.Contains(t, env, "EMPTY")
	assert.Empty(t, env["EMPTY"])
	assert.Equal(t, "5s", job.Spec.Template.Annotations["sim.example.com/duration"])
}

func TestSubmitBadPairs(t *testing.T) {
	tests := []struct {
		flag, value, want string
	}{
		{"--node-selector", "zone", `Error: --node-selector "zone": want key=value`},
		{"--env", "=value", `Error: --env "=value": want key=value`},
		{"--pod-annotation", "note", `Error: --pod-annotation "note": want key=value`},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			h := newHarness(t)
			res := h.run(submitArgs("bp1", tt.flag, tt.value)...)
			assert.Equal(t, ExitUsage, res.code)
			assert.Equal(t, tt.want+"\n", res.err)
			assert.Empty(t, res.out)
			assert.Zero(t, createdJobs(h), "nothing is submitted")
		})
	}
}

func TestSubmitUsageErrors(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.yaml")
	require.NoError(t, os.WriteFile(typo, []byte("id: x\nrepo: acme/widgets\n"), 0o600))
	missing := filepath.Join(dir, "missing.yaml")

	tests := []struct {
		name  string
		stdin string
		args  []string
		want  []string
	}{
		{
			name: "an invalid request names the fields",
			args: []string{"submit", "--id", "bad1", "--user", "alice", "--task", "t"},
			want: []string{"invalid job request", "repositoryURL", "branch"},
		},
		{
			name: "an invalid id",
			args: submitArgs("Not_A_Valid_Id!"),
			want: []string{"invalid job request", "id"},
		},
		{
			name: "a reserved env name",
			args: submitArgs("bad2", "--env", "JOB_ID=other"),
			want: []string{"invalid job request", "env[JOB_ID]"},
		},
		{
			name: "an unknown field in the file",
			args: []string{"submit", "-f", typo},
			want: []string{typo, "field repo not found"},
		},
		{
			name: "a missing file",
			args: []string{"submit", "-f", missing},
			want: []string{"read " + missing},
		},
		{
			name: "an empty stdin",
			args: []string{"submit", "-f", "-"},
			want: []string{"-: parse job request: the document is empty"},
		},
		{
			name: "a missing task file",
			args: submitArgs("bad3", "--task-file", missing),
			want: []string{"read task"},
		},
		{
			name: "arguments",
			args: append(submitArgs("bad4"), "extra"),
			want: []string{`unknown command "extra"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.stdin = tt.stdin
			res := h.run(tt.args...)
			if tt.name == "arguments" {
				assert.Equal(t, ExitError, res.code, "cobra's own argument errors are plain errors")
			} else {
				assert.Equal(t, ExitUsage, res.code)
			}
			assert.True(t, strings.HasPrefix(res.err, "Error: "), res.err)
			for _, w := range tt.want {
				assert.Contains(t, res.err, w)
			}
			assert.Zero(t, createdJobs(h), "nothing is submitted")
		})
	}
}

func TestSubmitIsIdempotent(t *testing.T) {
	h := newHarness(t)
	first := h.run(submitArgs("i1")...)
	require.Equal(t, ExitOK, first.code, first.err)
	assert.Contains(t, first.out, "job i1 created:")

	again := h.run(submitArgs("i1")...)
	require.Equal(t, ExitOK, again.code, again.err)
	assert.Equal(t, "job i1 already exists (same request): Job flowforge-jobs/claude-job-i1, policy revision -\n", again.out)

	other := h.run(submitArgs("i1", "--branch", "another")...)
	assert.Equal(t, ExitError, other.code)
	assert.Contains(t, other.err, "another request already uses this job id")
	assert.Contains(t, other.err, `branch "fix-i1", not "another"`)
}

func TestSubmitClusterErrors(t *testing.T) {
	t.Run("no cluster", func(t *testing.T) {
		h := newHarness(t)
		h.clientErr = errors.New("no Kubernetes configuration found")
		res := h.run(submitArgs("e1")...)
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: no Kubernetes configuration found\n", res.err)
	})
	t.Run("the webhook refuses", func(t *testing.T) {
		h := newHarness(t)
		h.cs.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "jobs"}, "claude-job-e2",
				errors.New(`admission webhook "validate.flowforge.io" denied the request: privileged`))
		})
		res := h.run(submitArgs("e2")...)
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "denied the request: privileged")
		assert.Empty(t, res.out)
	})
}

func TestSubmitDiff(t *testing.T) {
	h := newHarness(t)
	h.hardenOnCreate("rev-7")
	res := h.run(submitArgs("d1", "--diff")...)
	require.Equal(t, ExitOK, res.code, res.err)

	out := res.out
	assert.True(t, strings.HasPrefix(out, "job d1 created: Job flowforge-jobs/claude-job-d1, policy revision rev-7\n\nWhat the admission webhook changed:\n"), out)
	assert.Contains(t, out, "--- rendered by flowforge\n+++ admitted by the cluster\n")
	assert.Contains(t, out, "\n+      runtimeClassName: gvisor\n")
	assert.Contains(t, out, "\n+    flowforge.io/policy-revision: rev-7\n")
	var changed []string
	for _, l := range strings.Split(out, "\n") {
		if (strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-")) && !strings.HasPrefix(l, "+++") && !strings.HasPrefix(l, "---") {
			changed = append(changed, l)
		}
	}
	assert.ElementsMatch(t, []string{"+      runtimeClassName: gvisor", "+    flowforge.io/policy-revision: rev-7"}, changed,
		"server-set fields (uid, namespace, timestamps) are not reported as changes")
}

func TestSubmitDiffWithoutChanges(t *testing.T) {
	h := newHarness(t)
	res := h.run(submitArgs("d2", "--diff")...)
	require.Equal(t, ExitOK, res.code, res.err)
	assert.Equal(t, "job d2 created: Job flowforge-jobs/claude-job-d2, policy revision -\n\nWhat the admission webhook changed:\n\n", res.out)
}

func TestSubmitWait(t *testing.T) {
	tests := []struct {
		name     string
		end      func(*batchv1.Job)
		code     int
		progress string
		final    string
	}{
		{"succeeded", succeeded, ExitOK, "Succeeded  attempts 1  active 0", "job w1 Succeeded"},
		{"failed", failed, ExitFailed, "Failed     attempts 2  active 0", "job w1 Failed: Job has reached the specified backoff limit"},
		{"timed out", timedOut, ExitTimedOut, "TimedOut   attempts 2  active 0", "job w1 TimedOut: Job was active longer than specified deadline"},
		{"cancelled", cancelled, ExitCancelled, "Cancelled  attempts 2  active 0", "job w1 Cancelled: cancelled by bob: wrong branch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.scriptWatch("w1", running, tt.end)
			res := h.run(submitArgs("w1", "--wait")...)
			assert.Equal(t, tt.code, res.code, res.err)
			assert.Empty(t, res.err, "the outcome is explained on stdout only")
			got := lines(res.out)
			require.Len(t, got, 5, res.out)
			assert.Equal(t, "job w1 created: Job flowforge-jobs/claude-job-w1, policy revision -", got[0])
			assert.Equal(t, "12:00:00  w1  Pending    attempts 0  active 0  0s", got[1])
			assert.Equal(t, "12:00:00  w1  Running    attempts 1  active 1  0s", got[2])
			assert.Equal(t, "12:00:00  w1  "+tt.progress+"  0s", got[3])
			assert.Equal(t, tt.final, got[4])
		})
	}
}

func TestSubmitWaitOnAnExistingJob(t *testing.T) {
	// Resubmitting a request whose Job already ended reports its outcome.
	h := newHarness(t, clusterJob(t, testRequest("w2"), failed))
	res := h.run(submitArgs("w2", "--wait")...)
	assert.Equal(t, ExitFailed, res.code)
	assert.Equal(t, []string{
		"job w2 already exists (same request): Job flowforge-jobs/claude-job-w2, policy revision -",
		"12:00:00  w2  Failed     attempts 2  active 0  0s",
		"job w2 Failed: Job has reached the specified backoff limit",
	}, lines(res.out))
}
