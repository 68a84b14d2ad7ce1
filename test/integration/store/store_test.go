package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
	"github.com/flowforge/flowforge/controller"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/history/store"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

func historyJob(id string, ttl *int32, logs string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:   contract.JobName(id),
			Labels: map[string]string{contract.LabelApp: contract.AppName, contract.LabelJobID: id, contract.LabelUserID: "alice"},
		},
		Spec: batchv1.JobSpec{
			TTLSecondsAfterFinished: ttl,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{localcluster.AnnotationLogs: logs, localcluster.AnnotationDuration: "500ms"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}}},
			},
		},
	}
}

// TestRetentionPrunesTheHistoryOfGoneJobs runs the controller with a
// retention so short that every record is old at once: the record of a Job
// the controller deleted after its TTL is pruned, with its job-id record
// (ConfigMap), in the background; the record of a finished Job still in
// the cluster (TTL not reached) is kept, and so is its job-id record.
func TestRetentionPrunesTheHistoryOfGoneJobs(t *testing.T) {
	ctx := context.Background()
	ns := framework.Namespace(t, clientset, "retention", nil)
	ctl, err := framework.StartController(ctx, testCluster, framework.ControllerOptions{
		HistoryRetention:     time.Millisecond,
		HistoryPruneInterval: 300 * time.Millisecond,
		// Read through the loopback JSON API: what is tested here is the
		// store, not the aggregated API (test/integration/history).
		NoHistoryAPI: true,
	})
	require.NoError(t, err)
	defer ctl.Stop()
	hc := &history.Client{BaseURL: ctl.HistoryURL}

	_, err = clientset.BatchV1().Jobs(ns).Create(ctx, historyJob("kept", nil, "kept log"), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = clientset.BatchV1().Jobs(ns).Create(ctx, historyJob("gone", ptr.To[int32](2), "gone log"), metav1.CreateOptions{})
	require.NoError(t, err)

	// The short-TTL Job is exported (seen in the history) before its TTL.
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		rec, err := hc.Job(ctx, "gone")
		return err == nil && rec.Exported != nil, nil
	}), "the Job is exported")
	claims := clientset.CoreV1().ConfigMaps(policies.DefaultClaimNamespace)
	_, err = claims.Get(ctx, controller.ClaimName(ns, "gone"), metav1.GetOptions{})
	require.NoError(t, err, "its job-id is recorded")

	// Then deleted by its TTL, and its history pruned with its job-id record.
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := clientset.BatchV1().Jobs(ns).Get(ctx, contract.JobName("gone"), metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, nil
		}
		_, err = hc.Job(ctx, "gone")
		if !errors.Is(err, history.ErrNotFound) {
			return false, nil
		}
		_, err = claims.Get(ctx, controller.ClaimName(ns, "gone"), metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}), "the deleted Job's record and job-id record are pruned")

	rec, err := hc.Job(ctx, "kept")
	require.NoError(t, err, "the record of a Job still in the cluster is kept")
	require.NotNil(t, rec.Exported)
	var logs strings.Builder
	require.NoError(t, hc.Logs(ctx, "kept", 0, "", &logs))
	assert.Equal(t, "kept log\n", logs.String())
	_, err = claims.Get(ctx, controller.ClaimName(ns, "kept"), metav1.GetOptions{})
	require.NoError(t, err, "and so is its job-id record")

	for _, sample := range []string{"flowforge_history_pruned_records_total", "flowforge_history_pruned_claims_total", "flowforge_history_last_prune_timestamp_seconds", "flowforge_history_records", "flowforge_history_store_bytes", "flowforge_history_volume_capacity_bytes"} {
		v, err := framework.ScrapeMetric(ctx, ctl.MetricsURL, sample)
		require.NoError(t, err)
		assert.Positive(t, v, sample)
	}
}

// TestControllerUpgradesAnOldStore starts the controller on a store as the
// previous release wrote it (schema version 1, history/store/testdata): it
// migrates the schema at start, serves the old record and its logs, and
// records new Jobs in the same store.
func TestControllerUpgradesAnOldStore(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "flowforge-history-v1-")
	require.NoError(t, err)
	defer os.RemoveAll(dir) //nolint:errcheck // test
	path := filepath.Join(dir, "history.db")
	require.NoError(t, store.LoadSQLiteFixture(ctx, path, filepath.Join("..", "..", "..", "history", "store", "testdata", "history-v1.sql")))

	ctl, err := framework.StartController(ctx, testCluster, framework.ControllerOptions{Database: path, NoHistoryAPI: true})
	require.NoError(t, err)
	defer ctl.Stop()
	hc := &history.Client{BaseURL: ctl.HistoryURL}
	old, err := hc.Job(ctx, "v1-job")
	require.NoError(t, err)
	assert.Equal(t, "alice", old.User)
	assert.Equal(t, history.StatusSucceeded, old.Status)
	require.Len(t, old.Attempts, 1)
	var logs strings.Builder
	require.NoError(t, hc.Logs(ctx, "v1-job", 0, "", &logs))
	assert.Equal(t, "hello from v1\n", logs.String())

	ns := framework.Namespace(t, clientset, "upgraded", nil)
	_, err = clientset.BatchV1().Jobs(ns).Create(ctx, historyJob("after-upgrade", nil, "new log"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		rec, err := hc.Job(ctx, "after-upgrade")
		return err == nil && rec.Exported != nil, nil
	}), "a new Job is recorded in the upgraded store")
	list, err := hc.Jobs(ctx, "alice", "", "", 0)
	require.NoError(t, err)
	// Other tests of this package leave Jobs of alice in the cluster,
	// which this controller records too: look at this test's two.
	var ids []string
	for _, j := range list {
		if j.ID == "after-upgrade" || j.ID == "v1-job" {
			ids = append(ids, j.ID)
		}
	}
	assert.Equal(t, []string{"after-upgrade", "v1-job"}, ids, "the old record and the new one, newest first")
}
