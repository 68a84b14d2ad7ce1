package admission

// Issue 14, section 3: objects whose shape no real Job has are refused
// before any policy evaluation, through the real API server, with the
// limit named; a large legitimate Job is admitted.

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
)

func servedLimits(t *testing.T) policies.Limits {
	t.Helper()
	p, err := engine.Load(context.Background(), policies.Embedded())
	require.NoError(t, err)
	return p.Limits()
}

func envOf(n int64) []corev1.EnvVar {
	env := make([]corev1.EnvVar, n)
	for i := range env {
		env[i] = corev1.EnvVar{Name: fmt.Sprintf("VAR_%d", i), Value: "value"}
	}
	return env
}

func TestJobOverALimitIsRefusedWithTheLimitNamed(t *testing.T) {
	t.Parallel()
	limits := servedLimits(t)
	ns := managedRestrictedNamespace(t, "limits")
	ctx := context.Background()

	tests := []struct {
		name  string
		edit  func(job *corev1.PodSpec)
		wants []string
	}{
		{name: "env", edit: func(pod *corev1.PodSpec) { pod.Containers[0].Env = envOf(limits.EnvPerContainer + 1) },
			wants: []string{"spec.template.spec.containers[0].env has", fmt.Sprintf("over the limit of %d (limits.envPerContainer", limits.EnvPerContainer)}},
		{name: "containers", edit: func(pod *corev1.PodSpec) {
			for i := int64(1); i <= limits.Containers; i++ {
				pod.Containers = append(pod.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: pod.Containers[0].Image})
			}
		}, wants: []string{"containers, initContainers and ephemeralContainers has", "(limits.containers"}},
		{name: "volumes", edit: func(pod *corev1.PodSpec) {
			for i := int64(0); i <= limits.Volumes; i++ {
				pod.Volumes = append(pod.Volumes, corev1.Volume{Name: fmt.Sprintf("v%d", i), VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
			}
		}, wants: []string{"spec.template.spec.volumes has", "(limits.volumes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := plainJob("over-"+tc.name, nil)
			tc.edit(&job.Spec.Template.Spec)
			_, err := clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
			require.Error(t, err)
			require.ErrorContains(t, err, `admission webhook "jobs.mutate.flowforge.io" denied the request: FlowForge refuses this object`)
			for _, want := range tc.wants {
				require.ErrorContains(t, err, want)
			}
		})
	}
}

// TestLargeLegitimateJobIsAdmitted: a Job at the per-container env limit,
// with a sidecar, volumes and mounts, is hardened and stored.
func TestLargeLegitimateJobIsAdmitted(t *testing.T) {
	t.Parallel()
	limits := servedLimits(t)
	ns := managedRestrictedNamespace(t, "limits-ok")
	job := plainJob("large", nil)
	pod := &job.Spec.Template.Spec
	pod.Containers[0].Env = envOf(limits.EnvPerContainer)
	pod.Containers = append(pod.Containers, corev1.Container{Name: "proxy", Image: "ghcr.io/flowforge/egress-proxy:1.0.0", Env: envOf(limits.EnvTotal - limits.EnvPerContainer)[:limits.EnvPerContainer]})
	for i := range 8 {
		name := fmt.Sprintf("scratch-%d", i)
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		pod.Containers[0].VolumeMounts = append(pod.Containers[0].VolumeMounts, corev1.VolumeMount{Name: name, MountPath: "/scratch/" + name})
	}
	created, err := clientset.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Len(t, created.Spec.Template.Spec.Containers[0].Env, int(limits.EnvPerContainer))
	require.Equal(t, "gvisor", *created.Spec.Template.Spec.RuntimeClassName, "hardened")
}
