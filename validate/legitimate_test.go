package validate

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"k8s.io/utils/clock"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/mutate"
)

// legitimateJob is one entry of testdata/legitimate-jobs.yaml.
type legitimateJob struct {
	Name            string            `json:"name"`
	NamespaceLabels map[string]string `json:"namespaceLabels"`
	Job             json.RawMessage   `json:"job"`
}

func loadLegitimateJobs(t *testing.T) []legitimateJob {
	t.Helper()
	data, err := os.ReadFile("testdata/legitimate-jobs.yaml")
	require.NoError(t, err)
	var jobs []legitimateJob
	require.NoError(t, yaml.Unmarshal(data, &jobs))
	return jobs
}

// restrictedVersions are the Pod Security Standards versions the hardened
// pods are judged by: the pinned Kubernetes's and the evaluator's latest.
var restrictedVersions = []api.Version{api.MajorMinorVersion(1, 37), api.LatestVersion()}

// TestLegitimateJobsAreAdmittedHardenedAndRestricted sends every Job an
// agent platform runs through the mutating and then the validating
// handler, as the webhooks do. Each must be admitted, come back hardened,
// and its pod template must pass the upstream Pod Security `restricted`
// evaluator, which the Job as sent does not.
func TestLegitimateJobsAreAdmittedHardenedAndRestricted(t *testing.T) {
	jobs := loadLegitimateJobs(t)
	require.GreaterOrEqual(t, len(jobs), 30)
	evaluator, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	require.NoError(t, err)
	restricted := func(tmpl *corev1.PodTemplateSpec, v api.Version) psapolicy.AggregateCheckResult {
		return psapolicy.AggregateCheckResults(evaluator.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: v}, &tmpl.ObjectMeta, &tmpl.Spec))
	}
	engine := sharedEngine(t)
	names := map[string]bool{}
	for _, c := range jobs {
		t.Run(c.Name, func(t *testing.T) {
			require.False(t, names[c.Name], "names are unique")
			names[c.Name] = true

			var sent batchv1.Job
			require.NoError(t, json.Unmarshal(c.Job, &sent))
			assert.False(t, restricted(&sent.Spec.Template, api.LatestVersion()).Allowed, "as sent, the Job is not restricted: the hardening is what makes it so")

			// The whole chain, as the API server calls it.
			resp := admit(t, adversarialCase{Name: c.Name, Kind: "Job", NamespaceLabels: c.NamespaceLabels, Object: c.Job})
			msg := ""
			if resp.Result != nil {
				msg = resp.Result.Message
			}
			require.True(t, resp.Allowed, "denied: %s", msg)

			// What the mutation made of it.
			ns := func(context.Context, string) (map[string]string, error) { return c.NamespaceLabels, nil }
			raw, _, err := mutate.Review(context.Background(), &mutate.Handler{Policy: engine, Namespaces: ns, Clock: clock.RealClock{}}, "agents", c.Job)
			require.NoError(t, err)
			var job batchv1.Job
			require.NoError(t, json.Unmarshal(raw, &job))
			assertHardened(t, &sent, &job)
			for _, v := range restrictedVersions {
				res := restricted(&job.Spec.Template, v)
				assert.True(t, res.Allowed, "restricted %s: %s: %s", v, res.ForbiddenReason(), res.ForbiddenDetail())
			}
		})
	}
}

// assertHardened checks what the policy promises of every hardened Job.
func assertHardened(t *testing.T, sent, job *batchv1.Job) {
	t.Helper()
	spec := job.Spec.Template.Spec
	require.NotNil(t, spec.RuntimeClassName)
	assert.Equal(t, "gvisor", *spec.RuntimeClassName)
	require.NotNil(t, spec.AutomountServiceAccountToken)
	assert.False(t, *spec.AutomountServiceAccountToken)
	assert.Equal(t, corev1.RestartPolicyNever, spec.RestartPolicy)
	assert.Equal(t, "flowforge-worker", spec.PriorityClassName)
	assert.Equal(t, "gvisor", spec.NodeSelector["flowforge.io/sandbox"])
	assert.Contains(t, spec.Tolerations, corev1.Toleration{Key: "flowforge.io/sandbox", Operator: corev1.TolerationOpEqual, Value: "gvisor", Effect: corev1.TaintEffectNoSchedule})
	assert.Empty(t, spec.NodeName)
	require.NotNil(t, spec.TerminationGracePeriodSeconds)
	assert.LessOrEqual(t, *spec.TerminationGracePeriodSeconds, int64(120))
	require.NotNil(t, spec.SecurityContext)
	require.NotNil(t, spec.SecurityContext.RunAsNonRoot)
	assert.True(t, *spec.SecurityContext.RunAsNonRoot)
	require.NotNil(t, spec.SecurityContext.SeccompProfile)
	assert.Equal(t, corev1.SeccompProfileTypeLocalhost, spec.SecurityContext.SeccompProfile.Type)

	require.NotNil(t, job.Spec.ActiveDeadlineSeconds)
	assert.LessOrEqual(t, *job.Spec.ActiveDeadlineSeconds, int64(14400))
	require.NotNil(t, job.Spec.PodFailurePolicy)
	if sent.Spec.BackoffLimitPerIndex == nil {
		require.NotNil(t, job.Spec.BackoffLimit)
		assert.LessOrEqual(t, *job.Spec.BackoffLimit, int32(5))
	} else {
		assert.Equal(t, sent.Spec.BackoffLimit, job.Spec.BackoffLimit, "a per-index Job keeps its backoffLimit")
	}

	ctrs := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	require.Len(t, ctrs, len(sent.Spec.Template.Spec.InitContainers)+len(sent.Spec.Template.Spec.Containers), "no container added or dropped")
	podTotal := map[corev1.ResourceName]*resource.Quantity{}
	for _, c := range ctrs {
		sc := c.SecurityContext
		require.NotNil(t, sc, c.Name)
		require.NotNil(t, sc.AllowPrivilegeEscalation, c.Name)
		assert.False(t, *sc.AllowPrivilegeEscalation, c.Name)
		require.NotNil(t, sc.ReadOnlyRootFilesystem, c.Name)
		assert.True(t, *sc.ReadOnlyRootFilesystem, c.Name)
		require.NotNil(t, sc.Capabilities, c.Name)
		assert.Contains(t, sc.Capabilities.Drop, corev1.Capability("ALL"), c.Name)
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
			limit, ok := c.Resources.Limits[res]
			require.True(t, ok, "%s has a %s limit", c.Name, res)
			if podTotal[res] == nil {
				podTotal[res] = resource.NewQuantity(0, resource.DecimalSI)
			}
			podTotal[res].Add(limit)
		}
		for _, mount := range []string{"/tmp", "/workspace"} {
			found := false
			for _, m := range c.VolumeMounts {
				found = found || m.MountPath == mount
			}
			assert.True(t, found, "%s mounts %s", c.Name, mount)
		}
	}
	// The sum of all limits bounds what the scheduler counts: within the
	// largest profile's pod maximum.
	assert.LessOrEqual(t, podTotal[corev1.ResourceCPU].Cmp(resource.MustParse("6")), 0, "cpu %s", podTotal[corev1.ResourceCPU])
}
