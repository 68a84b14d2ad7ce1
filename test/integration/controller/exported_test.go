package controller

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// TestExportedJobsLeaveTheCache: an exported Job and its pods are labelled
// (policy data export.exportedLabel), which takes them out of the
// controller's cache, and the Job is still deleted at the end of its TTL,
// by the sweep of the labelled Jobs (the reconciler no longer sees it).
// Nobody else may set the label.
func TestExportedJobsLeaveTheCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := policies.EmbeddedConfig()
	require.NoError(t, err)
	label := cfg.Export.ExportedLabel
	require.NotEmpty(t, label)
	ns := framework.Namespace(t, clientset, "exported", nil)

	// A user cannot create a Job hidden from the controller...
	hidden := agentJob("hidden1", nil, func(j *batchv1.Job) { j.Labels[label] = "Succeeded.1764600000" })
	_, err = clientset.BatchV1().Jobs(ns).Create(ctx, hidden, metav1.CreateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), label)

	create(t, ns, agentJob("exp1", map[string]string{localcluster.AnnotationDuration: "1s"},
		func(j *batchv1.Job) { j.Annotations[contract.AnnotationTTLSecondsAfterFinished] = "6" }))
	name := contract.JobName("exp1")
	// ...nor label one before (or after) its export: only the controller may.
	patch := []byte(`{"metadata":{"labels":{"` + label + `":"Succeeded.1764600000"}}}`)
	_, err = clientset.BatchV1().Jobs(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	require.Error(t, err, "the test's admin is not the controller")
	assert.Contains(t, err.Error(), "only the FlowForge controller")

	rec := exported(t, "exp1")
	assert.Equal(t, history.StatusSucceeded, rec.Status)
	var value string
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		job, err := clientset.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		value = job.Labels[label]
		return value != "" && len(job.Finalizers) == 0, nil
	}), "the controller labels the exported Job and releases it")
	assert.Regexp(t, `^Succeeded\.[0-9]+$`, value)
	pods, err := clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + name})
	require.NoError(t, err)
	for _, p := range pods.Items {
		assert.Equal(t, value, p.Labels[label], "pod %s follows its Job out of the cache", p.Name)
		assert.Empty(t, p.Finalizers)
	}

	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := clientset.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}), "the sweep deletes the labelled Job at the end of its TTL")
	c := &history.Client{BaseURL: ctl.HistoryURL}
	rec, err = c.Job(ctx, "exp1")
	require.NoError(t, err)
	assert.NotNil(t, rec.Exported, "the history keeps it")
}
