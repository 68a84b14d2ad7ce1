package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flowforge/flowforge/history"
	historystore "github.com/flowforge/flowforge/history/store"
	"github.com/flowforge/flowforge/internal/metrics"
)

// fullStore refuses log archives while full, as SQLite does when its
// volume is full ("database or disk is full").
type fullStore struct {
	history.Store
	full bool
}

func (s *fullStore) PutLogArchive(ctx context.Context, a history.LogArchive) error {
	if s.full {
		return errors.New("history: store logs: database or disk is full (13)")
	}
	return s.Store.PutLogArchive(ctx, a)
}

// TestFullStoreKeepsTheJobAndRecovers: while the store is full the export
// fails (counted, the finalizer kept, the reconcile returns the error so
// the workqueue retries it with backoff); once there is room again, the
// next retry exports and releases the Job.
func TestFullStoreKeepsTheJobAndRecovers(t *testing.T) {
	job := newJob("full1", finishedJob(batchv1.JobComplete, "CompletionsReached"))
	pod := newPod(job, "full1-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
	e := newEnv(t, job, pod)
	e.logs.logs["full1-a/worker"] = "2026-11-27T11:59:30.000000001Z hello\n"
	full := &fullStore{Store: e.store, full: true}
	e.r.Store = historystore.Instrumented{Store: full, OnError: func(op string, _ error) {
		metrics.HistoryStoreErrors.WithLabelValues(op).Inc()
	}}
	failures := testutil.ToFloat64(metrics.ExportFailures)
	storeErrors := testutil.ToFloat64(metrics.HistoryStoreErrors.WithLabelValues("PutLogArchive"))
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "agents", Name: job.Name}}
	for i := 1; i <= 3; i++ {
		_, err := e.r.Reconcile(context.Background(), req)
		require.ErrorContains(t, err, "database or disk is full", "an error, so that the workqueue retries with backoff")
		assert.Equal(t, failures+float64(i), testutil.ToFloat64(metrics.ExportFailures))
		assert.Equal(t, storeErrors+float64(i), testutil.ToFloat64(metrics.HistoryStoreErrors.WithLabelValues("PutLogArchive")))
		var got batchv1.Job
		require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
		assert.Contains(t, got.Finalizers, "flowforge.io/export", "the Job stays while its export cannot be stored")
	}

	full.full = false
	e.reconcile(t, job.Name)
	rec, err := e.store.Job(context.Background(), "full1")
	require.NoError(t, err)
	assert.NotNil(t, rec.Exported)
	var got batchv1.Job
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
	assert.NotContains(t, got.Finalizers, "flowforge.io/export", "released once stored")
}
