package usage

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// usageJob is a labelled Job whose pod (one container) runs for duration
// and uses cpu and memory, as kwok reports them to metrics-server.
func usageJob(id, cpu, memory string, duration time.Duration) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        contract.JobName(id),
			Labels:      map[string]string{contract.LabelApp: contract.AppName, contract.LabelJobID: id, contract.LabelUserID: "alice"},
			Annotations: map[string]string{contract.AnnotationRepository: "acme/widgets", contract.AnnotationBranch: "main"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
				localcluster.AnnotationDuration:    duration.String(),
				localcluster.AnnotationUsageCPU:    cpu,
				localcluster.AnnotationUsageMemory: memory,
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}}},
		}},
	}
}

// TestPeakUsageReachesTheHistory runs a Job whose pod uses 1500m CPU and
// 96Mi memory through kwok, metrics-server and metrics.k8s.io, and checks
// the exported attempt's peaks: what metrics-server reported, read back
// through the aggregated history API.
func TestPeakUsageReachesTheHistory(t *testing.T) {
	ctx := context.Background()
	ns := framework.Namespace(t, clientset, "usage", nil)
	const id = "use-1"
	// Long enough for two of metrics-server's scrapes (CPU is a rate)
	// and a sample by the controller after them, with room for a loaded
	// machine: under a whole make test, three resolutions were not always
	// enough for the first metrics.
	run := 5*localcluster.MetricsServerResolution + 3*usageInterval
	job, err := clientset.BatchV1().Jobs(ns).Create(ctx, usageJob(id, "1500m", "96Mi", run), metav1.CreateOptions{})
	require.NoError(t, err)

	// metrics.k8s.io reports the running pod (what the controller samples).
	var pod string
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job.Name})
		if err != nil || len(pods.Items) == 0 || pods.Items[0].Status.Phase != corev1.PodRunning {
			return false, nil
		}
		pod = pods.Items[0].Name
		return true, nil
	}))
	require.NoError(t, testCluster.WaitPodMetrics(ctx, ns, pod, run))

	_, err = framework.WaitForJobCondition(ctx, clientset, ns, job.Name, batchv1.JobComplete)
	require.NoError(t, err)
	admin, err := history.NewAPIClient(testCluster.RESTConfig, ns)
	require.NoError(t, err)
	var rec *history.Job
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		rec, err = admin.Job(ctx, id)
		return err == nil && rec.Exported != nil, nil
	}), "the Job is exported (last error: %v)", err)
	require.Len(t, rec.Attempts, 1)
	a := rec.Attempts[0]
	assert.Equal(t, pod, a.Pod)
	// kwok reports exactly what the pod says; metrics-server's CPU is a
	// rate between two scrapes, so allow for rounding.
	assert.InDelta(t, 1500, a.PeakCPUMillicores, 100, "peak CPU (millicores)")
	assert.EqualValues(t, 96<<20, a.PeakMemoryBytes, "peak memory (bytes)")
	t.Logf("attempt %s: peak CPU %dm, peak memory %d bytes", a.Pod, a.PeakCPUMillicores, a.PeakMemoryBytes)
}
