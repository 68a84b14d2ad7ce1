package admission

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowforge/flowforge/test/testjobs"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// plainJob is what a client that knows nothing about hardening sends: a
// labelled Job with an image and nothing else.
func plainJob(name string, podAnnotations map[string]string) *batchv1.Job {
	return testjobs.MakeAgentJob(name, "").Name(name).PodAnnotations(podAnnotations).Obj()
}

func TestLabelledJobIsHardenedAndRunsOnAWorker(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "harden", framework.RestrictedLabels())
	ctx := context.Background()
	created, err := clientset.BatchV1().Jobs(ns).Create(ctx, plainJob("plain", map[string]string{localcluster.AnnotationDuration: "300ms"}), metav1.CreateOptions{})
	require.NoError(t, err)

	pod := created.Spec.Template.Spec
	assert.Equal(t, "gvisor", *pod.RuntimeClassName)
	assert.Equal(t, "flowforge-worker", pod.PriorityClassName)
	assert.False(t, *pod.AutomountServiceAccountToken)
	assert.False(t, *pod.EnableServiceLinks)
	assert.Equal(t, corev1.RestartPolicyNever, pod.RestartPolicy)
	require.NotNil(t, pod.SecurityContext)
	assert.True(t, *pod.SecurityContext.RunAsNonRoot)
	assert.Equal(t, int64(1000), *pod.SecurityContext.RunAsUser)
	assert.Equal(t, int64(1000), *pod.SecurityContext.FSGroup)
	assert.Equal(t, corev1.SeccompProfileTypeLocalhost, pod.SecurityContext.SeccompProfile.Type)
	assert.Equal(t, "claude-worker.json", *pod.SecurityContext.SeccompProfile.LocalhostProfile)
	assert.Equal(t, corev1.AppArmorProfileTypeRuntimeDefault, pod.SecurityContext.AppArmorProfile.Type)
	assert.Equal(t, map[string]string{"flowforge.io/sandbox": "gvisor"}, pod.NodeSelector)
	require.NotEmpty(t, pod.Tolerations)
	c := pod.Containers[0]
	assert.False(t, *c.SecurityContext.Privileged)
	assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	assert.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
	assert.Equal(t, "2", c.Resources.Limits.Cpu().String())
	assert.Equal(t, "10Gi", c.Resources.Limits.StorageEphemeral().String())
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	assert.Equal(t, map[string]string{"/tmp": "flowforge-tmp", "/workspace": "flowforge-workspace"}, mounts)
	assert.Equal(t, int64(3600), *created.Spec.ActiveDeadlineSeconds)
	assert.NotNil(t, created.Spec.PodFailurePolicy)
	assert.Contains(t, created.Annotations, "flowforge.io/policy-revision")
	assert.Contains(t, created.Finalizers, "flowforge.io/export")

	done, err := framework.WaitForJobCondition(ctx, clientset, ns, "plain", batchv1.JobComplete)
	require.NoError(t, err, "the hardened pod passes PodSecurity restricted and runs")
	assert.Equal(t, int32(1), done.Status.Succeeded)
	pods, err := framework.JobPods(ctx, clientset, ns, "plain")
	require.NoError(t, err)
	require.Len(t, pods, 1)
	assert.Contains(t, testCluster.WorkerNodeNames(), pods[0].Spec.NodeName, "the pod ran on a tainted gVisor worker")
}

func TestUnlabelledJobIsUntouched(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "untouched", nil)
	job := plainJob("other", nil)
	job.Labels = map[string]string{"app": "something-else"}
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	created, err := clientset.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Nil(t, created.Spec.Template.Spec.RuntimeClassName)
	assert.Empty(t, created.Spec.Template.Spec.PriorityClassName)
	assert.Nil(t, created.Spec.ActiveDeadlineSeconds)
	assert.NotContains(t, created.Annotations, "flowforge.io/policy-revision")
}

func TestDryRunShowsTheHardenedJobWithoutCreatingIt(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "dryrun", nil)
	got, err := clientset.BatchV1().Jobs(ns).Create(context.Background(), plainJob("dry", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.NoError(t, err)
	assert.Equal(t, "gvisor", *got.Spec.Template.Spec.RuntimeClassName)
	_, err = clientset.BatchV1().Jobs(ns).Get(context.Background(), "dry", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "a dry run persists nothing")
}

// dryRunRevision asks the API server which policy revision would harden
// a new labelled Job.
func dryRunRevision(ctx context.Context, ns string) (string, error) {
	got, err := clientset.BatchV1().Jobs(ns).Create(ctx, plainJob("probe", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return "", err
	}
	return got.Annotations["flowforge.io/policy-revision"], nil
}

func readyzVerbose(t *testing.T) string {
	t.Helper()
	return readyzVerboseOf(t, hook.ProbeURL)
}

func readyzVerboseOf(t *testing.T, probeURL string) string {
	t.Helper()
	resp, err := http.Get(probeURL + "/readyz?verbose")
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a refused reload does not make the server unready: %s", body)
	return string(body)
}

// everyReplica reports whether every webhook replica's /readyz?verbose
// satisfies ok: each replica reloads the policy on its own.
func everyReplica(t *testing.T, ok func(readyz string) bool) bool {
	t.Helper()
	for _, r := range hook.Replicas {
		if !ok(readyzVerboseOf(t, r.ProbeURL)) {
			return false
		}
	}
	return true
}

// TestPolicyHotReload edits, then breaks, the served policy directory. It
// is not parallel: it changes the policy every other test sees.
func TestPolicyHotReload(t *testing.T) {
	ns := framework.Namespace(t, clientset, "reload", nil)
	ctx := context.Background()
	dataPath := filepath.Join(policyDir, "data.yaml")
	original, err := os.ReadFile(dataPath)
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.WriteFile(dataPath, original, 0o644) })

	firstRevision, err := dryRunRevision(ctx, ns)
	require.NoError(t, err)
	require.NotEmpty(t, firstRevision)

	t.Run("an edited policy applies to the next admission without a restart", func(t *testing.T) {
		edited := strings.Replace(string(original), `release: "2026-11-27"`, `release: "hot-reloaded"`, 1)
		require.NotEqual(t, string(original), edited)
		require.NoError(t, os.WriteFile(dataPath, []byte(edited), 0o644))
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
			revision, err := dryRunRevision(ctx, ns)
			return err == nil && strings.HasPrefix(revision, "hot-reloaded-"), nil
		}))
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
			return everyReplica(t, func(readyz string) bool { return strings.Contains(readyz, "revision hot-reloaded-") }), nil
		}), "every replica serves the edited policy")
	})

	t.Run("an identity rule the compiled evaluator cannot run is served by topdown", func(t *testing.T) {
		// The served policy's identity query runs compiled (policies/engine/irvm.go).
		require.True(t, everyReplica(t, func(readyz string) bool { return strings.Contains(readyz, "identity query compiled") }))
		clock := filepath.Join(policyDir, "validate", "identity", "clock.rego")
		require.NoError(t, os.WriteFile(clock, []byte(`package flowforge.validate

identity_violation contains {"msg": "the clock says no", "field": "spec.template.metadata.annotations[example.com/clock]"} if {
	input.request.kind.kind == "Job"
	object.get(input.request.object, ["spec", "template", "metadata", "annotations", "example.com/clock"], "") == "deny"
	time.now_ns() > 0
}
`), 0o644))
		t.Cleanup(func() { _ = os.Remove(clock) })
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
			return everyReplica(t, func(readyz string) bool { return strings.Contains(readyz, "identity query topdown") }), nil
		}), "every replica serves the identity query with topdown")
		_, err := clientset.BatchV1().Jobs(ns).Create(ctx, plainJob("clock", map[string]string{"example.com/clock": "deny"}), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		require.Error(t, err, "the rule denies")
		assert.Contains(t, err.Error(), "the clock says no")
		_, err = dryRunRevision(ctx, ns)
		require.NoError(t, err, "and admits what it does not deny")

		require.NoError(t, os.Remove(clock))
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
			return everyReplica(t, func(readyz string) bool { return strings.Contains(readyz, "identity query compiled") }), nil
		}), "without the rule every replica compiles the identity query again")
	})

	t.Run("a broken policy is refused and the previous one keeps serving", func(t *testing.T) {
		servingRevision, err := dryRunRevision(ctx, ns)
		require.NoError(t, err)
		require.NotEqual(t, firstRevision, servingRevision)
		broken := filepath.Join(policyDir, "mutate", "broken.rego")
		require.NoError(t, os.WriteFile(broken, []byte("package flowforge.mutate\n\npatch contains {\n"), 0o644))
		t.Cleanup(func() { _ = os.Remove(broken) })
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
			return everyReplica(t, func(readyz string) bool { return strings.Contains(readyz, "last reload refused") }), nil
		}), "every replica refuses the broken policy")
		assert.Contains(t, readyzVerbose(t), "rego_parse_error")

		revision, err := dryRunRevision(ctx, ns)
		require.NoError(t, err, "admissions continue")
		assert.Equal(t, servingRevision, revision, "under the previous policy")

		require.NoError(t, os.Remove(broken))
		require.NoError(t, os.WriteFile(dataPath, original, 0o644))
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
			revision, err := dryRunRevision(ctx, ns)
			return err == nil && revision == firstRevision, nil
		}), "restoring the files restores the first revision")
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
			return everyReplica(t, func(readyz string) bool {
				return strings.Contains(readyz, "revision "+firstRevision) && !strings.Contains(readyz, "last reload refused")
			}), nil
		}), "every replica serves the first revision again, with no refused reload")
	})
}
