package restart

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// TestJobsThatFinishWhileTheControllerIsDownKeepTheirLogs is issue 20's
// scenario: short-TTL Jobs run and finish with no controller, well past
// their TTL and several container-GC periods of the simulated kubelet. The
// built-in TTL controller never deletes them (the webhook moved the TTL to
// FlowForge's annotation), so their logs are still on the "node" when the
// controller starts; it exports every line, then deletes the Jobs.
func TestJobsThatFinishWhileTheControllerIsDownKeepTheirLogs(t *testing.T) {
	ctx := context.Background()
	ns := framework.Namespace(t, clientset, "ttl-down", nil)

	// The documented limit, alongside: a Job that someone else deletes in
	// foreground (as the built-in TTL controller would) while the
	// controller is down loses its logs one container-GC period later. Its
	// export must still complete, and say so, rather than hold the Job.
	lost := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:   contract.JobName("lost"),
			Labels: map[string]string{contract.LabelApp: contract.AppName, contract.LabelJobID: "lost", contract.LabelUserID: "alice"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{localcluster.AnnotationLogs: "gone", localcluster.AnnotationDuration: "500ms"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}}},
		}},
	}
	_, err := clientset.BatchV1().Jobs(ns).Create(ctx, lost, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = framework.WaitForJobCondition(ctx, clientset, ns, lost.Name, batchv1.JobComplete)
	require.NoError(t, err)
	require.NoError(t, clientset.BatchV1().Jobs(ns).Delete(ctx, lost.Name, metav1.DeleteOptions{PropagationPolicy: new(metav1.DeletePropagationForeground)}))

	const n = 20
	lines := func(i int) []string {
		return []string{fmt.Sprintf("job %d: cloning", i), fmt.Sprintf("job %d: editing", i), fmt.Sprintf("job %d: testing", i), fmt.Sprintf("job %d: pushed", i)}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("down%d", i)
			job := &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{
					Name:   contract.JobName(id),
					Labels: map[string]string{contract.LabelApp: contract.AppName, contract.LabelJobID: id, contract.LabelUserID: "alice"},
				},
				Spec: batchv1.JobSpec{
					// What a client used to ask the built-in TTL controller for.
					TTLSecondsAfterFinished: ptr.To[int32](1),
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
							localcluster.AnnotationLogs:        strings.Join(lines(i), "\n"),
							localcluster.AnnotationLogInterval: "50ms",
							localcluster.AnnotationDuration:    "1s",
						}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}}},
					},
				},
			}
			created, err := clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
			if err != nil {
				errs <- fmt.Errorf("create %s: %w", id, err)
				return
			}
			if created.Spec.TTLSecondsAfterFinished != nil || created.Annotations[contract.AnnotationTTLSecondsAfterFinished] != "1" {
				errs <- fmt.Errorf("%s: the webhook did not move the TTL to the annotation: spec %v, annotations %v", id, created.Spec.TTLSecondsAfterFinished, created.Annotations)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i := range n {
		_, err := framework.WaitForJobCondition(ctx, clientset, ns, contract.JobName(fmt.Sprintf("down%d", i)), batchv1.JobComplete)
		require.NoError(t, err)
	}

	// The controller stays down for several container-GC periods past
	// every Job's TTL: whatever could lose the logs has had its chance.
	time.Sleep(4 * localcluster.DefaultContainerGCPeriod)
	list, err := clientset.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.Items, n+1, "nothing deleted a Job before its export (the deleted one is held by its finalizer)")
	pods, err := clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, p := range pods.Items {
		if p.Labels[contract.LabelJobID] == "lost" {
			continue
		}
		assert.Nil(t, p.DeletionTimestamp, "pod %s is not being deleted, so the node keeps its logs", p.Name)
	}

	ctl, err := framework.StartController(ctx, testCluster, framework.ControllerOptions{})
	require.NoError(t, err)
	defer ctl.Stop()
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := clientset.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0, nil
	}), "the controller deletes every Job once exported and past its TTL")

	hc := &history.Client{BaseURL: ctl.HistoryURL}
	for i := range n {
		id := fmt.Sprintf("down%d", i)
		rec, err := hc.Job(ctx, id)
		require.NoError(t, err)
		require.NotNil(t, rec.Exported, id)
		assert.Equal(t, history.StatusSucceeded, rec.Status, id)
		var logs strings.Builder
		require.NoError(t, hc.Logs(ctx, id, 0, "", &logs))
		assert.Equal(t, strings.Join(lines(i), "\n")+"\n", logs.String(), "every log line of %s is in the history", id)
	}
	// The limit: its status is there, its log is not. (A real kubelet
	// answers an error for a removed container, and the export reports
	// LogsLost; kwok answers an empty log, which is archived as such.)
	rec, err := hc.Job(ctx, "lost")
	require.NoError(t, err)
	require.NotNil(t, rec.Exported, "the export of the Job deleted while the controller was down completed")
	assert.Equal(t, history.StatusSucceeded, rec.Status)
	var lostLog strings.Builder
	_ = hc.Logs(ctx, "lost", 0, "", &lostLog)
	assert.NotContains(t, lostLog.String(), "gone", "the node removed the log before the export")
	deleted, err := framework.ScrapeMetric(ctx, ctl.MetricsURL, "flowforge_ttl_deletions_total")
	require.NoError(t, err)
	assert.Equal(t, float64(n), deleted)
	pods, err = clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, pods.Items, "the pods went with their Jobs")
	_, err = clientset.BatchV1().Jobs(ns).Get(ctx, contract.JobName("down0"), metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
}
