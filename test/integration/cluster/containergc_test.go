package cluster

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// podLog reads a pod's whole log through the API server; a removed
// container reads as no text (kwok answers an error or nothing).
func podLog(ctx context.Context, ns, pod string) string {
	stream, err := clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).Stream(ctx)
	if err != nil {
		return ""
	}
	defer stream.Close() //nolint:errcheck // read-only
	b, _ := io.ReadAll(stream)
	return string(b)
}

// TestContainerGCFollowsTheKubeletsRule checks the simulated kubelet: a
// terminated pod keeps its logs while nobody deletes it, however long,
// and loses them one container-GC period after its deletion is requested,
// although a finalizer keeps the Pod object.
func TestContainerGCFollowsTheKubeletsRule(t *testing.T) {
	ctx := context.Background()
	ns := framework.Namespace(t, clientset, "container-gc", framework.RestrictedLabels())
	const hold = "test.flowforge.io/hold"
	job := restrictedJob("gc", map[string]string{
		localcluster.AnnotationLogs:        "one\ntwo",
		localcluster.AnnotationLogInterval: "50ms",
		localcluster.AnnotationDuration:    "500ms",
	})
	job.Spec.Template.Finalizers = []string{hold}
	createJob(t, ns, job)
	_, err := framework.WaitForJobCondition(ctx, clientset, ns, "gc", batchv1.JobComplete)
	require.NoError(t, err)
	pods, err := framework.JobPods(ctx, clientset, ns, "gc")
	require.NoError(t, err)
	require.Len(t, pods, 1)
	pod := pods[0].Name
	t.Cleanup(func() {
		_, _ = clientset.CoreV1().Pods(ns).Patch(context.Background(), pod, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	})

	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		return strings.Contains(podLog(ctx, ns, pod), "two"), nil
	}), "the terminated pod's log is readable")
	time.Sleep(3 * localcluster.DefaultContainerGCPeriod)
	assert.Equal(t, "one\ntwo\n", podLog(ctx, ns, pod), "a terminated pod that is not being deleted keeps its logs")

	// Foreground, as the TTL controller deletes: the garbage collector
	// reaches the pod's dependents at once.
	require.NoError(t, clientset.CoreV1().Pods(ns).Delete(ctx, pod, metav1.DeleteOptions{PropagationPolicy: new(metav1.DeletePropagationForeground)}))
	assert.Equal(t, "one\ntwo\n", podLog(ctx, ns, pod), "the logs stay for a container-GC period after the deletion")
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		return podLog(ctx, ns, pod) == "", nil
	}), "the deleted, terminated pod loses its logs")
	p, err := clientset.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	require.NoError(t, err, "the finalizer still holds the Pod object")
	assert.NotNil(t, p.DeletionTimestamp)
}
