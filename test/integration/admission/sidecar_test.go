package admission

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

func resources(cpu, memory, storage string) corev1.ResourceRequirements {
	list := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse(cpu),
		corev1.ResourceMemory:           resource.MustParse(memory),
		corev1.ResourceEphemeralStorage: resource.MustParse(storage),
	}
	return corev1.ResourceRequirements{Requests: list, Limits: list}
}

// TestJobWithANativeSidecarRunsToComplete runs a Job whose pod has a native
// sidecar (an init container with restartPolicy Always) on the local
// cluster: the sidecar starts and keeps running beside the worker, the
// worker ends, the sidecar is terminated, the pod succeeds and the Job
// completes (kwok stages, docs/local-cluster.md).
func TestJobWithANativeSidecarRunsToComplete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := managedRestrictedNamespace(t, "sidecar")
	job := plainJob("with-sidecar", map[string]string{localcluster.AnnotationDuration: "1500ms"})
	always := corev1.ContainerRestartPolicyAlways
	job.Spec.Template.Spec.InitContainers = []corev1.Container{{
		Name:          "egress-proxy",
		Image:         "ghcr.io/flowforge/egress-proxy:1.0.0",
		RestartPolicy: &always,
		Resources:     resources("100m", "128Mi", "256Mi"),
	}}
	job.Spec.Template.Spec.Containers[0].Resources = resources("500m", "1Gi", "2Gi")

	// Watch the Job's pods from before the Job exists, to see the sidecar
	// running beside the worker.
	w, err := clientset.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=with-sidecar"})
	require.NoError(t, err)
	defer w.Stop()
	sawTogether := make(chan bool, 1)
	go func() {
		together := false
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			if running(pod.Status.InitContainerStatuses, "egress-proxy") && running(pod.Status.ContainerStatuses, "worker") {
				together = true
			}
			if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
				break
			}
		}
		sawTogether <- together
	}()

	created, err := clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err)
	sidecar := created.Spec.Template.Spec.InitContainers[0]
	require.NotNil(t, sidecar.SecurityContext, "the sidecar is hardened like any container")
	assert.True(t, *sidecar.SecurityContext.ReadOnlyRootFilesystem)

	done, err := framework.WaitForJobCondition(ctx, clientset, ns, "with-sidecar", batchv1.JobComplete)
	require.NoError(t, err)
	assert.Equal(t, int32(1), done.Status.Succeeded)
	assert.True(t, <-sawTogether, "the sidecar ran beside the worker")

	pods, err := framework.JobPods(ctx, clientset, ns, "with-sidecar")
	require.NoError(t, err)
	require.Len(t, pods, 1)
	pod := pods[0]
	assert.Equal(t, corev1.PodSucceeded, pod.Status.Phase)
	require.Len(t, pod.Status.InitContainerStatuses, 1)
	st := pod.Status.InitContainerStatuses[0]
	require.NotNil(t, st.State.Terminated, "the sidecar was stopped when the worker ended: %+v", st.State)
	assert.Equal(t, int32(0), st.State.Terminated.ExitCode)
	require.Len(t, pod.Status.ContainerStatuses, 1)
	require.NotNil(t, pod.Status.ContainerStatuses[0].State.Terminated)
	assert.Equal(t, int32(0), pod.Status.ContainerStatuses[0].State.Terminated.ExitCode)
}

func running(statuses []corev1.ContainerStatus, name string) bool {
	for _, s := range statuses {
		if s.Name == name && s.State.Running != nil {
			return true
		}
	}
	return false
}
