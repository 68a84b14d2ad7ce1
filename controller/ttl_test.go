package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/internal/metrics"
)

// withTTL sets the TTL annotation the webhook writes.
func withTTL(seconds string) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Annotations[contract.AnnotationTTLSecondsAfterFinished] = seconds }
}

// finishedAgo makes the Job finished, d before now.
func finishedAgo(d time.Duration) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: metav1.NewTime(now.Add(-d))}}
		j.Status.CompletionTime = ptr.To(metav1.NewTime(now.Add(-d)))
	}
}

// deletes records the Delete calls a client sees.
type deletes struct {
	opts []client.DeleteOptions
}

// envRecordingDeletes is newEnv with a client that records Delete options.
func envRecordingDeletes(t *testing.T, d *deletes, objs ...client.Object) *env {
	t.Helper()
	e := newEnv(t, objs...)
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithIndex(&corev1.Pod{}, PodJobUIDField, podJobUID).WithStatusSubresource(&batchv1.Job{}, &corev1.Pod{}).
		WithInterceptorFuncs(interceptor.Funcs{Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			o := client.DeleteOptions{}
			o.ApplyOptions(opts)
			d.opts = append(d.opts, o)
			return c.Delete(ctx, obj, opts...)
		}}).Build()
	e.client, e.r.Client = c, c
	return e
}

func sampleCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, h.Write(&m))
	return m.GetHistogram().GetSampleCount()
}

func requestFor(job *batchv1.Job) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: job.Namespace, Name: job.Name}}
}

func jobGone(t *testing.T, e *env, job *batchv1.Job) bool {
	t.Helper()
	err := e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1.Job{})
	if apierrors.IsNotFound(err) {
		return true
	}
	require.NoError(t, err)
	return false
}

func TestTTLDeletionWaitsUntilTheTTLHasPassed(t *testing.T) {
	job := newJob("ttl1", withTTL("60"), finishedAgo(10*time.Second))
	pod := newPod(job, "ttl1-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
	d := &deletes{}
	e := envRecordingDeletes(t, d, job, pod)
	e.logs.logs["ttl1-a/worker"] = "2026-11-27T11:59:30.000000001Z done\n"
	deleted := testutil.ToFloat64(metrics.TTLDeletions)
	delays := sampleCount(t, metrics.TTLDeletionDelay)

	res := e.reconcile(t, job.Name)
	assert.Equal(t, 50*time.Second, res.RequeueAfter, "called again when the TTL is up")
	rec, err := e.store.Job(context.Background(), "ttl1")
	require.NoError(t, err)
	require.NotNil(t, rec.Exported, "exported at once")
	assert.False(t, jobGone(t, e, job), "kept until its TTL is up")

	e.clock.Step(49 * time.Second)
	res = e.reconcile(t, job.Name)
	assert.Equal(t, time.Second, res.RequeueAfter)
	assert.False(t, jobGone(t, e, job))
	assert.Empty(t, d.opts)

	e.clock.Step(time.Second)
	res = e.reconcile(t, job.Name)
	assert.Zero(t, res.RequeueAfter)
	assert.True(t, jobGone(t, e, job), "deleted once exported and its TTL is up")
	require.Len(t, d.opts, 1)
	assert.Equal(t, metav1.DeletePropagationForeground, *d.opts[0].PropagationPolicy, "its pods go first")
	require.NotNil(t, d.opts[0].Preconditions)
	assert.Equal(t, job.UID, *d.opts[0].Preconditions.UID, "never another Job of the same name")
	assert.Equal(t, deleted+1, testutil.ToFloat64(metrics.TTLDeletions))
	assert.Equal(t, delays+1, sampleCount(t, metrics.TTLDeletionDelay))
	evs := e.events()
	assert.Equal(t, 1, countPrefix(evs, "Normal Deleted"), "%v", evs)

	first, err := e.store.Mark(context.Background(), string(job.UID), "deleted")
	require.NoError(t, err)
	assert.False(t, first, "the deletion is marked, so a restarted controller does not report it again")
}

func TestTTLDeletionWaitsForTheExport(t *testing.T) {
	job := newJob("ttl2", withTTL("1"), finishedAgo(2*time.Hour))
	pod := newPod(job, "ttl2-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-3*time.Hour))
	e := newEnv(t, job, pod)
	e.logs.err = errors.New("kubelet unreachable")
	_, err := e.r.Reconcile(context.Background(), requestFor(job))
	require.Error(t, err)
	assert.False(t, jobGone(t, e, job), "long past its TTL, but not exported: kept")

	e.logs.err = nil
	e.logs.logs["ttl2-a/worker"] = "2026-11-27T09:59:30.000000001Z done\n"
	res := e.reconcile(t, job.Name)
	assert.Zero(t, res.RequeueAfter)
	assert.True(t, jobGone(t, e, job), "deleted as soon as the export is complete")
	archives, err := e.store.LogArchives(context.Background(), string(job.UID))
	require.NoError(t, err)
	require.Len(t, archives, 1)
}

func TestTTLZeroDeletesRightAfterTheExport(t *testing.T) {
	job := newJob("ttl3", withTTL("0"), finishedAgo(0))
	e := newEnv(t, job)
	e.reconcile(t, job.Name)
	assert.True(t, jobGone(t, e, job))
}

func TestJobsFlowForgeDoesNotDelete(t *testing.T) {
	tests := []struct {
		name string
		job  *batchv1.Job
	}{
		{name: "legacy spec TTL: the built-in TTL controller's", job: newJob("legacy", finishedAgo(time.Hour), func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](1) })},
		{name: "no TTL: kept", job: newJob("keep", finishedAgo(time.Hour))},
		{name: "malformed TTL: kept", job: newJob("bad", withTTL("soon"), finishedAgo(time.Hour))},
		{name: "already being deleted", job: newJob("deleting", withTTL("1"), finishedAgo(time.Hour), func(j *batchv1.Job) {
			j.DeletionTimestamp = ptr.To(metav1.NewTime(now))
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &deletes{}
			e := envRecordingDeletes(t, d, tc.job)
			res := e.reconcile(t, tc.job.Name)
			assert.Zero(t, res.RequeueAfter)
			rec, err := e.store.Job(context.Background(), tc.job.Labels[contract.LabelJobID])
			require.NoError(t, err)
			assert.NotNil(t, rec.Exported, "exported all the same")
			assert.Empty(t, d.opts, "no delete")
		})
	}
}

func TestTTLDeletionOfAJobReplacedMeanwhile(t *testing.T) {
	job := newJob("ttl4", withTTL("1"), finishedAgo(time.Hour))
	e := newEnv(t, job)
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	gr := schema.GroupResource{Group: "batch", Resource: "jobs"}
	for _, failure := range []error{
		apierrors.NewConflict(gr, job.Name, errors.New("Precondition failed: UID in precondition: uid-ttl4, UID in object meta: other")),
		apierrors.NewNotFound(gr, job.Name),
	} {
		c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(job.DeepCopy()).WithIndex(&corev1.Pod{}, PodJobUIDField, podJobUID).WithStatusSubresource(&batchv1.Job{}).
			WithInterceptorFuncs(interceptor.Funcs{Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error { return failure }}).Build()
		e.client, e.r.Client = c, c
		res := e.reconcile(t, job.Name)
		assert.Zero(t, res.RequeueAfter, "%v: nothing left to do", failure)
	}
	e.client = fake.NewClientBuilder().WithScheme(scheme).WithObjects(job.DeepCopy()).WithIndex(&corev1.Pod{}, PodJobUIDField, podJobUID).WithStatusSubresource(&batchv1.Job{}).
		WithInterceptorFuncs(interceptor.Funcs{Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
			return errors.New("apiserver down")
		}}).Build()
	e.r.Client = e.client
	_, err := e.r.Reconcile(context.Background(), requestFor(job))
	require.ErrorContains(t, err, "delete job claude-job-ttl4")
	assert.Empty(t, countPrefix(e.events(), "Normal Deleted"), "no Deleted event for a failed delete")
}

func TestLogsRemovedByTheNodeAreReportedNotRetriedForever(t *testing.T) {
	deletedAgo := func(d time.Duration) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.NewTime(now.Add(-d))) }
	}
	tests := []struct {
		name      string
		pod       func(*corev1.Pod)
		wantError bool
	}{
		{name: "deleted longer ago than the export grace: lost", pod: deletedAgo(3 * time.Minute)},
		{name: "deleted just now: retried", pod: deletedAgo(10 * time.Second), wantError: true},
		{name: "not deleted: retried", pod: func(*corev1.Pod) {}, wantError: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := newJob("lost", withTTL("3600"), finishedAgo(5*time.Minute), func(j *batchv1.Job) { j.DeletionTimestamp = ptr.To(metav1.NewTime(now.Add(-4 * time.Minute))) })
			pod := newPod(job, "lost-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-10*time.Minute))
			tc.pod(pod)
			e := newEnv(t, job, pod)
			e.logs.err = errors.New(`no logs found for container "worker"`)
			lost := testutil.ToFloat64(metrics.ExportLogsLost)
			_, err := e.r.Reconcile(context.Background(), requestFor(job))
			rec, recErr := e.store.Job(context.Background(), "lost")
			require.NoError(t, recErr)
			if tc.wantError {
				require.ErrorContains(t, err, "read logs of lost-a/worker")
				assert.Nil(t, rec.Exported, "the export is retried while the node may still have the log")
				assert.Equal(t, lost, testutil.ToFloat64(metrics.ExportLogsLost))
				return
			}
			require.NoError(t, err)
			require.NotNil(t, rec.Exported, "the export completes without the log")
			assert.Equal(t, lost+1, testutil.ToFloat64(metrics.ExportLogsLost))
			evs := e.events()
			assert.Equal(t, 1, countPrefix(evs, "Warning LogsLost"), "%v", evs)
			_, err = e.r.Reconcile(context.Background(), requestFor(job))
			require.NoError(t, err)
			assert.Equal(t, lost+1, testutil.ToFloat64(metrics.ExportLogsLost), "reported once")
		})
	}
}
