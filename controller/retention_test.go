package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/flowforge/flowforge/history"
	historystore "github.com/flowforge/flowforge/history/store"
	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies"
)

var retentionNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// retentionFixture stores four exported records of Jobs created 40, 35,
// 20 and 1 days ago (uid-40d ...), each with a 100-byte archive and a
// job-id record created a minute after the Job.
func retentionFixture(t *testing.T, inCluster ...string) (*Retention, history.Store, client.Client) {
	t.Helper()
	ctx := context.Background()
	store, err := historystore.OpenSQLite(ctx, ":memory:")
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	for _, days := range []int{40, 35, 20, 1} {
		uid := "uid-" + itoa(days) + "d"
		created := retentionNow.Add(-time.Duration(days) * 24 * time.Hour)
		require.NoError(t, store.UpsertJob(ctx, history.Job{UID: uid, ID: "id-" + uid, Namespace: "agents", Name: "claude-job-" + uid, User: "alice", Status: history.StatusSucceeded, Created: created}))
		require.NoError(t, store.PutLogArchive(ctx, history.LogArchive{PodUID: "pod-" + uid, JobUID: uid, Attempt: 1, Pod: "p", Container: "worker", Gzip: make([]byte, 100), Size: 100}))
		_, err := store.MarkExported(ctx, uid, created.Add(time.Hour))
		require.NoError(t, err)
		require.NoError(t, c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Namespace: policies.DefaultClaimNamespace, Name: ClaimName("agents", "id-"+uid),
			CreationTimestamp: metav1.NewTime(created.Add(time.Minute)),
			Labels:            map[string]string{policies.ClaimNamespaceLabel: "agents", policies.ClaimJobIDLabel: "id-" + uid},
			Annotations:       map[string]string{policies.ClaimJobUIDAnnotation: uid, policies.ClaimJobNameAnnotation: "claude-job-" + uid},
		}}))
	}
	for _, uid := range inCluster {
		require.NoError(t, c.Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "agents", Name: "claude-job-" + uid, UID: types.UID(uid)}}))
	}
	return &Retention{
		Store: store, Jobs: c, ClaimReader: c, ClaimWriter: c,
		Clock: clocktesting.NewFakeClock(retentionNow), Log: logr.Discard(),
		MaxAge: 30 * 24 * time.Hour,
	}, store, c
}

func itoa(n int) string { return string(rune('0'+n/10)) + string(rune('0'+n%10)) }

func remaining(t *testing.T, s history.Store) []string {
	t.Helper()
	list, err := s.Jobs(context.Background(), history.Filter{})
	require.NoError(t, err)
	var out []string
	for _, j := range list {
		out = append(out, j.UID)
	}
	return out
}

func claimsLeft(t *testing.T, c client.Client) []string {
	t.Helper()
	var list corev1.ConfigMapList
	require.NoError(t, c.List(context.Background(), &list, client.InNamespace(policies.DefaultClaimNamespace)))
	var out []string
	for _, cm := range list.Items {
		out = append(out, cm.Annotations[policies.ClaimJobUIDAnnotation])
	}
	return out
}

func TestRetentionPrunesByAgeAndReleasesJobIDs(t *testing.T) {
	r, store, c := retentionFixture(t, "uid-35d")
	records := testutil.ToFloat64(metrics.HistoryPrunedRecords)
	ageBytes := testutil.ToFloat64(metrics.HistoryPrunedBytes.WithLabelValues("age"))
	claims := testutil.ToFloat64(metrics.HistoryPrunedClaims)

	require.NoError(t, r.PruneOnce(context.Background()))
	assert.Equal(t, []string{"uid-01d", "uid-20d", "uid-35d"}, remaining(t, store), "the 40-day-old record goes; the 35-day-old Job is still in the cluster")
	assert.ElementsMatch(t, []string{"uid-01d", "uid-20d", "uid-35d"}, claimsLeft(t, c), "its job-id is released with it")
	assert.Equal(t, records+1, testutil.ToFloat64(metrics.HistoryPrunedRecords))
	assert.Equal(t, ageBytes+100, testutil.ToFloat64(metrics.HistoryPrunedBytes.WithLabelValues("age")))
	assert.Equal(t, claims+1, testutil.ToFloat64(metrics.HistoryPrunedClaims))
	assert.Equal(t, 3.0, testutil.ToFloat64(metrics.HistoryRecords))
	assert.Equal(t, 300.0, testutil.ToFloat64(metrics.HistoryArchiveBytes))
	assert.Positive(t, testutil.ToFloat64(metrics.HistoryStoreBytes))
	assert.Equal(t, float64(retentionNow.Unix()), testutil.ToFloat64(metrics.HistoryLastPrune))

	// The Job leaves the cluster: its record and job-id go at the next pass.
	require.NoError(t, c.DeleteAllOf(context.Background(), &batchv1.Job{}, client.InNamespace("agents")))
	require.NoError(t, r.PruneOnce(context.Background()))
	assert.Equal(t, []string{"uid-01d", "uid-20d"}, remaining(t, store))
	assert.ElementsMatch(t, []string{"uid-01d", "uid-20d"}, claimsLeft(t, c))
}

func TestRetentionKeepsJobIDsOfRecentOrKeptRecords(t *testing.T) {
	r, store, c := retentionFixture(t)
	ctx := context.Background()
	// A record of an old Job that was never exported stays, and so does
	// its job-id; a job-id record whose history record is missing but
	// which is recent stays too (a store replaced by an empty one does not
	// release every job-id).
	require.NoError(t, store.UpsertJob(ctx, history.Job{UID: "uid-stuck", ID: "stuck", Namespace: "agents", Name: "n", Status: history.StatusFailed, Created: retentionNow.Add(-50 * 24 * time.Hour)}))
	for uid, age := range map[string]time.Duration{"uid-stuck": 49 * 24 * time.Hour, "uid-unknown": time.Hour} {
		require.NoError(t, c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Namespace: policies.DefaultClaimNamespace, Name: "job-id-" + uid, CreationTimestamp: metav1.NewTime(retentionNow.Add(-age)),
			Labels:      map[string]string{policies.ClaimNamespaceLabel: "agents", policies.ClaimJobIDLabel: uid},
			Annotations: map[string]string{policies.ClaimJobUIDAnnotation: uid},
		}}))
	}
	require.NoError(t, r.PruneOnce(ctx))
	assert.Equal(t, []string{"uid-01d", "uid-20d", "uid-stuck"}, remaining(t, store))
	assert.ElementsMatch(t, []string{"uid-01d", "uid-20d", "uid-stuck", "uid-unknown"}, claimsLeft(t, c))
}

func TestRetentionCapsArchives(t *testing.T) {
	r, store, _ := retentionFixture(t, "uid-40d")
	r.MaxAge = 0
	r.MaxArchiveBytes = 250
	sizeBytes := testutil.ToFloat64(metrics.HistoryPrunedBytes.WithLabelValues("size"))
	require.NoError(t, r.PruneOnce(context.Background()))
	assert.Len(t, remaining(t, store), 4, "the cap removes logs, not records")
	for uid, kept := range map[string]bool{"uid-40d": true, "uid-35d": false, "uid-20d": false, "uid-01d": true} {
		archives, err := store.LogArchives(context.Background(), uid)
		require.NoError(t, err)
		assert.Equal(t, kept, len(archives) == 1, uid)
	}
	assert.Equal(t, sizeBytes+200, testutil.ToFloat64(metrics.HistoryPrunedBytes.WithLabelValues("size")))
	assert.Equal(t, 200.0, testutil.ToFloat64(metrics.HistoryArchiveBytes))
}

func TestRetentionDisabledOnlyObserves(t *testing.T) {
	r, store, _ := retentionFixture(t)
	r.MaxAge, r.MaxArchiveBytes = 0, 0
	r.VolumePath = t.TempDir()
	require.NoError(t, r.PruneOnce(context.Background()))
	assert.Len(t, remaining(t, store), 4)
	assert.Equal(t, 4.0, testutil.ToFloat64(metrics.HistoryRecords))
	assert.Positive(t, testutil.ToFloat64(metrics.HistoryVolumeCapacity))
	assert.Positive(t, testutil.ToFloat64(metrics.HistoryVolumeAvailable))
	r.VolumePath = "/proc/no/such/dir"
	assert.ErrorContains(t, r.PruneOnce(context.Background()), "history volume")
}

func TestRetentionFailures(t *testing.T) {
	r, _, c := retentionFixture(t)
	r.Jobs = fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			return errors.New("cache gone")
		},
	}).Build()
	require.ErrorContains(t, r.PruneOnce(context.Background()), "list Jobs for retention: cache gone")

	r.Jobs = c
	r.ClaimWriter = interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
		Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
			return errors.New("forbidden")
		},
	})
	require.ErrorContains(t, r.PruneOnce(context.Background()), "delete job-id record")
}

// TestRetentionRunsEveryInterval drives Start with a fake clock: a pass at
// once, then one per interval, and a failed pass is counted and retried.
func TestRetentionRunsEveryInterval(t *testing.T) {
	r, _, _ := retentionFixture(t)
	clk := clocktesting.NewFakeClock(retentionNow)
	r.Clock, r.Interval = clk, time.Hour
	failures := testutil.ToFloat64(metrics.HistoryPruneFailures)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Start(ctx) }()
	require.Eventually(t, clk.HasWaiters, 10*time.Second, time.Millisecond, "first pass done")
	assert.Equal(t, float64(retentionNow.Unix()), testutil.ToFloat64(metrics.HistoryLastPrune))

	r.VolumePath = "/proc/no/such/dir" // the next pass fails
	clk.Step(time.Hour)
	require.Eventually(t, func() bool { return testutil.ToFloat64(metrics.HistoryPruneFailures) == failures+1 }, 10*time.Second, time.Millisecond)
	require.Eventually(t, clk.HasWaiters, 10*time.Second, time.Millisecond, "waiting for the next pass")
	cancel()
	require.NoError(t, <-done)
	assert.True(t, r.NeedLeaderElection())
}
