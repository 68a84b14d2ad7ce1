package controller

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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

func TestTTL(t *testing.T) {
	t.Run("deleted by a user right after it finished", testDeletedRightAfterFinishing)
	t.Run("a burst is deleted after TTL and export", testBurstDeletedAfterTTL)
}

// testDeletedRightAfterFinishing deletes a Job the way the built-in TTL
// controller and `kubectl delete --cascade=foreground` do, the moment it
// finishes: its pods get a deletionTimestamp at once, so the simulated
// kubelet removes their logs a container-GC period later. The controller
// sees the deletion and exports before that.
func testDeletedRightAfterFinishing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := framework.Namespace(t, clientset, "user-delete", nil)
	lines := []string{"cloning acme/widgets", "editing", "pushed"}
	create(t, ns, agentJob("gone2", map[string]string{
		localcluster.AnnotationLogs:        strings.Join(lines, "\n"),
		localcluster.AnnotationLogInterval: "100ms",
		localcluster.AnnotationDuration:    "1s",
	}))
	name := contract.JobName("gone2")
	_, err := framework.WaitForJobCondition(ctx, clientset, ns, name, batchv1.JobComplete)
	require.NoError(t, err)
	require.NoError(t, clientset.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: new(metav1.DeletePropagationForeground)}))

	rec := exported(t, "gone2")
	assert.Equal(t, history.StatusSucceeded, rec.Status)
	var logs strings.Builder
	require.NoError(t, (&history.Client{BaseURL: ctl.HistoryURL}).Logs(ctx, "gone2", 0, "", &logs))
	assert.Equal(t, strings.Join(lines, "\n")+"\n", logs.String(), "every line was read before the node removed the containers")
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := clientset.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}), "the export released the Job")
}

// testBurstDeletedAfterTTL is a small version of `make burst -ttl`: many
// Jobs finishing together are each exported, with every log line, and
// deleted by FlowForge after their TTL. Times are reported, not asserted.
func testBurstDeletedAfterTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := framework.Namespace(t, clientset, "ttl-burst", nil)
	const n = 50
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("tb%d", i)
			job := agentJob(id, map[string]string{
				localcluster.AnnotationLogs:        fmt.Sprintf("%s starts\n%s ends", id, id),
				localcluster.AnnotationLogInterval: "100ms",
				localcluster.AnnotationDuration:    "1s",
			}, func(j *batchv1.Job) { j.Annotations[contract.AnnotationTTLSecondsAfterFinished] = "2" })
			if _, err := clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, wait.PollUntilContextTimeout(ctx, time.Second, 3*framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := clientset.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0, nil
	}), "every Job of the burst is deleted")
	t.Logf("%d Jobs created, run, exported and deleted (TTL 2s) in %s", n, time.Since(start).Round(time.Second))

	hc := &history.Client{BaseURL: ctl.HistoryURL}
	for i := range n {
		id := fmt.Sprintf("tb%d", i)
		rec, err := hc.Job(ctx, id)
		require.NoError(t, err)
		require.NotNil(t, rec.Exported, "%s was exported before its deletion", id)
		var logs strings.Builder
		require.NoError(t, hc.Logs(ctx, id, 0, "", &logs))
		assert.Equal(t, fmt.Sprintf("%s starts\n%s ends\n", id, id), logs.String(), id)
	}
}
