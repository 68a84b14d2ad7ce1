package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flowforge/flowforge/webhook"
)

// typed decodes every object of deploy/*.yaml into its Go type.
func typed(t *testing.T) []runtime.Object {
	t.Helper()
	var out []runtime.Object
	for _, u := range manifests(t) {
		if u.GetAPIVersion() == "v1" || u.GroupVersionKind().Group == "apps" || u.GroupVersionKind().Group == "policy" {
			raw, err := u.MarshalJSON()
			require.NoError(t, err)
			objs, err := decodeAll(raw)
			require.NoError(t, err, u.GetName())
			out = append(out, objs...)
		}
	}
	return out
}

func webhookDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	for _, o := range typed(t) {
		if d, ok := o.(*appsv1.Deployment); ok && d.Name == "flowforge-webhook" {
			return d
		}
	}
	require.FailNow(t, "no flowforge-webhook Deployment")
	return nil
}

// TestWebhookRunsThreeSpreadReplicas pins what docs/operations.md and the
// fault run justify: three replicas, never fewer during a rollout, spread
// over zones (preferred) and nodes (required, counting only the nodes the
// pods may use).
func TestWebhookRunsThreeSpreadReplicas(t *testing.T) {
	d := webhookDeployment(t)
	require.NotNil(t, d.Spec.Replicas)
	assert.Equal(t, int32(3), *d.Spec.Replicas)
	require.NotNil(t, d.Spec.Strategy.RollingUpdate)
	assert.Equal(t, intstr.FromInt32(0), *d.Spec.Strategy.RollingUpdate.MaxUnavailable, "a rollout never drops below three")
	assert.Equal(t, intstr.FromInt32(1), *d.Spec.Strategy.RollingUpdate.MaxSurge)
	podLabels := k8slabels.Set(d.Spec.Template.Labels)
	byKey := map[string]corev1.TopologySpreadConstraint{}
	for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
		byKey[c.TopologyKey] = c
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		require.NoError(t, err)
		assert.True(t, sel.Matches(podLabels), "%s counts the webhook's own pods", c.TopologyKey)
		assert.Equal(t, int32(1), c.MaxSkew, c.TopologyKey)
		require.NotNil(t, c.NodeTaintsPolicy, c.TopologyKey)
		assert.Equal(t, corev1.NodeInclusionPolicyHonor, *c.NodeTaintsPolicy, "%s: tainted nodes the pods cannot use are not empty domains", c.TopologyKey)
	}
	require.Contains(t, byKey, "topology.kubernetes.io/zone")
	require.Contains(t, byKey, "kubernetes.io/hostname")
	assert.Equal(t, corev1.ScheduleAnyway, byKey["topology.kubernetes.io/zone"].WhenUnsatisfiable, "many clusters have one zone, or nodes without the label")
	assert.Equal(t, corev1.DoNotSchedule, byKey["kubernetes.io/hostname"].WhenUnsatisfiable)
	assert.Equal(t, "system-cluster-critical", d.Spec.Template.Spec.PriorityClassName)
}

// TestWebhookDisruptionBudget: a drain takes one replica at a time, so two
// keep serving and one of them may still fail on its own.
func TestWebhookDisruptionBudget(t *testing.T) {
	d := webhookDeployment(t)
	var pdb *policyv1.PodDisruptionBudget
	for _, o := range typed(t) {
		if p, ok := o.(*policyv1.PodDisruptionBudget); ok && p.Namespace == d.Namespace {
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			require.NoError(t, err)
			if sel.Matches(k8slabels.Set(d.Spec.Template.Labels)) {
				pdb = p
			}
		}
	}
	require.NotNil(t, pdb, "a PodDisruptionBudget selects the webhook's pods")
	require.NotNil(t, pdb.Spec.MaxUnavailable)
	assert.Nil(t, pdb.Spec.MinAvailable)
	assert.Equal(t, intstr.FromInt32(1), *pdb.Spec.MaxUnavailable)
	assert.GreaterOrEqual(t, *d.Spec.Replicas-int32(pdb.Spec.MaxUnavailable.IntValue()), int32(2), "two serve during a drain")
	require.NotNil(t, pdb.Spec.UnhealthyPodEvictionPolicy)
	assert.Equal(t, policyv1.AlwaysAllow, *pdb.Spec.UnhealthyPodEvictionPolicy, "an unready replica never blocks a drain")
}

// TestCriticalPodsQuotaCoversEveryCriticalPod: each Deployment of
// FlowForge's namespace that runs at a critical priority is covered by a
// ResourceQuota scoped to that class, with room for a whole rollout: its
// replicas, the surge pod, and the old replicas still terminating.
func TestCriticalPodsQuotaCoversEveryCriticalPod(t *testing.T) {
	objs := typed(t)
	var quotas []*corev1.ResourceQuota
	for _, o := range objs {
		if q, ok := o.(*corev1.ResourceQuota); ok {
			quotas = append(quotas, q)
		}
	}
	need := map[string]int64{}
	for _, o := range objs {
		d, ok := o.(*appsv1.Deployment)
		if !ok || d.Spec.Template.Spec.PriorityClassName == "" {
			continue
		}
		class := d.Spec.Template.Spec.PriorityClassName
		if class != "system-cluster-critical" && class != "system-node-critical" {
			continue
		}
		replicas := int64(*d.Spec.Replicas)
		surge := int64(0)
		if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxSurge != nil {
			v, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, int(replicas), true)
			require.NoError(t, err)
			surge = int64(v)
		}
		need[d.Namespace+"/"+class] += replicas + surge + replicas
	}
	require.NotEmpty(t, need, "the webhook runs at a critical priority")
	for key, n := range need {
		covered := false
		for _, q := range quotas {
			if q.Spec.ScopeSelector == nil {
				continue
			}
			for _, e := range q.Spec.ScopeSelector.MatchExpressions {
				if e.ScopeName != corev1.ResourceQuotaScopePriorityClass || e.Operator != corev1.ScopeSelectorOpIn {
					continue
				}
				for _, v := range e.Values {
					if q.Namespace+"/"+v == key {
						covered = true
						pods := q.Spec.Hard[corev1.ResourcePods]
						assert.GreaterOrEqual(t, pods.Value(), n, "%s: room for a rollout", key)
						assert.LessOrEqual(t, pods.Value(), n+2, "%s: a bound, not a blank cheque", key)
						assert.Len(t, q.Spec.Hard, 1, "only pods are counted: a CPU or memory entry would require limits on every pod")
					}
				}
			}
		}
		assert.True(t, covered, "a ResourceQuota covers %s", key)
	}
}

// measuredTimeoutSeconds is every webhook's timeoutSeconds, chosen from
// the fault run (docs/operations.md, "Webhook timeouts"): above the
// slowest answer measured there (API server p99 in the 2.5-10 s bucket
// while a replica reloaded a policy on a saturated machine; 5 s refused 3
// of 635 creates) and above the slowest answer the server is built to
// give (the in-flight wait plus the largest admitted object's evaluation).
const measuredTimeoutSeconds = 10

// worstLegitimateEvaluation is the p99 of the largest admitted Job's
// admission with 8 such requests at once on one CPU (docs/performance.md,
// "Bounded cost per request": 720 ms).
const worstLegitimateEvaluation = 720 * time.Millisecond

// TestWebhookTimeoutsFollowTheMeasurement: every webhook waits the measured
// timeout; it leaves room for the in-flight wait and the worst legitimate
// evaluation, twice over; and a Job's chain of calls (mutate, its
// reinvocation, validate) fits in the API server's 60 s request timeout.
func TestWebhookTimeoutsFollowTheMeasurement(t *testing.T) {
	m, v, err := WebhookConfigurations()
	require.NoError(t, err)
	var all []*int32
	for i := range m.Webhooks {
		all = append(all, m.Webhooks[i].TimeoutSeconds)
	}
	for i := range v.Webhooks {
		all = append(all, v.Webhooks[i].TimeoutSeconds)
	}
	require.Len(t, all, len(m.Webhooks)+len(v.Webhooks))
	for _, ts := range all {
		require.NotNil(t, ts)
		assert.Equal(t, int32(measuredTimeoutSeconds), *ts)
	}
	timeout := time.Duration(measuredTimeoutSeconds) * time.Second
	assert.Greater(t, timeout, 2*(webhook.DefaultInFlightWait+worstLegitimateEvaluation), "a request refused for load is answered (429), not timed out")
	assert.LessOrEqual(t, 3*timeout, 60*time.Second, "mutate, reinvocation and validate within the API server's request timeout")
	assert.LessOrEqual(t, measuredTimeoutSeconds, 30, "the API's maximum")
}

// TestWebhookStopsWithoutFailingAdmissions pins the graceful stop of a
// replica (docs/operations.md, Stopping a webhook replica): a preStop
// sleep (the image has no shell) while the endpoint removal propagates,
// then --drain-delay of serving with /readyz failing, then a shutdown that
// waits for the admissions in flight longer than the API server waits for
// them (timeoutSeconds); all of it within the grace period.
func TestWebhookStopsWithoutFailingAdmissions(t *testing.T) {
	d := webhookDeployment(t)
	spec := d.Spec.Template.Spec
	require.Len(t, spec.Containers, 1)
	c := spec.Containers[0]
	require.NotNil(t, c.Lifecycle, "a preStop hook")
	require.NotNil(t, c.Lifecycle.PreStop)
	require.NotNil(t, c.Lifecycle.PreStop.Sleep, "the kubelet's sleep action: the image has no shell")
	assert.Nil(t, c.Lifecycle.PreStop.Exec)
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	assert.GreaterOrEqual(t, preStop, 3*time.Second, "long enough for kube-proxy and the API servers to see the endpoint go")

	flags := map[string]time.Duration{}
	for _, a := range c.Args {
		for _, name := range []string{"drain-delay", "shutdown-timeout"} {
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				dur, err := time.ParseDuration(v)
				require.NoError(t, err, a)
				flags[name] = dur
			}
		}
	}
	require.Contains(t, flags, "drain-delay")
	require.Contains(t, flags, "shutdown-timeout")
	assert.Positive(t, flags["drain-delay"])
	assert.Greater(t, flags["shutdown-timeout"], time.Duration(measuredTimeoutSeconds)*time.Second, "in-flight admissions may run as long as the API server waits for them")

	require.NotNil(t, spec.TerminationGracePeriodSeconds)
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	assert.LessOrEqual(t, preStop+flags["drain-delay"]+flags["shutdown-timeout"], grace, "the whole stop fits in the grace period, which counts from the preStop hook")

	require.NotNil(t, c.ReadinessProbe)
	require.NotNil(t, c.ReadinessProbe.HTTPGet)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path, "the probe that fails while the replica drains")
}
