package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/internal/metrics"
)

const exportedLabel = "flowforge.io/exported"

// withExportedLabel makes an env's reconciler label exported Jobs.
func withExportedLabel(e *env) *env {
	base := e.r.Settings
	e.r.Settings = func() Settings {
		s := base()
		s.ExportedLabel = exportedLabel
		return s
	}
	return e
}

func TestCacheSelectorLeavesExportedObjectsOut(t *testing.T) {
	plain, err := CacheSelector(Settings{})
	require.NoError(t, err)
	withLabel, err := CacheSelector(Settings{SelectorLabel: "app", SelectorValue: "flowforge", ExportedLabel: exportedLabel})
	require.NoError(t, err)
	for _, tc := range []struct {
		name        string
		labels      labels.Set
		plain, with bool
	}{
		{"FlowForge's", labels.Set{"app": "flowforge"}, true, true},
		{"exported", labels.Set{"app": "flowforge", exportedLabel: "Succeeded.1764600000"}, true, false},
		{"exported, empty value", labels.Set{"app": "flowforge", exportedLabel: ""}, true, false},
		{"another app's", labels.Set{"app": "other"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.plain, plain.Matches(tc.labels))
			assert.Equal(t, tc.with, withLabel.Matches(tc.labels))
		})
	}
	_, err = CacheSelector(Settings{ExportedLabel: "not a label"})
	require.Error(t, err)
}

func TestExportedValueRoundTrips(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	v := ExportedValue(contract.PhaseTimedOut, at)
	assert.Equal(t, "TimedOut.1796119200", v)
	phase, done, err := ParseExportedValue(v)
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseTimedOut, phase)
	assert.Equal(t, at, done)
	for _, bad := range []string{"", "Succeeded", "Succeeded.", ".1764583200", "Succeeded.x", "Succeeded.-5"} {
		_, _, err := ParseExportedValue(bad)
		require.Error(t, err, bad)
	}
}

func TestExportLabelsTheJobAndItsPodsOutOfTheCache(t *testing.T) {
	job := newJob("lab1", withTTL("3600"), finishedAgo(10*time.Second), func(j *batchv1.Job) { j.Status.Succeeded = 1 })
	pod := newPod(job, "lab1-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
	e := withExportedLabel(newEnv(t, job, pod))
	e.logs.logs["lab1-a/worker"] = "2026-11-27T11:59:30.000000001Z done\n"

	res := e.reconcile(t, job.Name)
	assert.Equal(t, time.Hour-10*time.Second, res.RequeueAfter)
	want := ExportedValue(contract.PhaseSucceeded, now.Add(-10*time.Second))
	var got batchv1.Job
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
	assert.Equal(t, want, got.Labels[exportedLabel])
	assert.Empty(t, got.Finalizers, "released in the same patch")
	var gotPod corev1.Pod
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(pod), &gotPod))
	assert.Equal(t, want, gotPod.Labels[exportedLabel])
	assert.Empty(t, gotPod.Finalizers)
	rec, err := e.store.Job(context.Background(), "lab1")
	require.NoError(t, err)
	require.NotNil(t, rec.Exported, "exported before it is labelled")
}

func TestExportLeavesAJobDueSoonInTheCache(t *testing.T) {
	for name, mutate := range map[string]func(*batchv1.Job){
		"TTL ends within a minute": withTTL("30"),
		"still has a pod running":  func(j *batchv1.Job) { j.Status.Succeeded = 2 },
	} {
		t.Run(name, func(t *testing.T) {
			job := newJob("soon", withTTL("3600"), finishedAgo(10*time.Second), mutate)
			pod := newPod(job, "soon-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
			e := withExportedLabel(newEnv(t, job, pod))
			e.r.Settings = func(base func() Settings) func() Settings {
				return func() Settings { s := base(); s.ExportGrace = 0; return s }
			}(e.r.Settings)
			e.logs.logs["soon-a/worker"] = "2026-11-27T11:59:30.000000001Z done\n"
			e.reconcile(t, job.Name)
			var got batchv1.Job
			require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
			assert.NotContains(t, got.Labels, exportedLabel)
			assert.Empty(t, got.Finalizers, "released all the same")
		})
	}
}

func TestAJobWhosePodsWereLabelledIsFinishedAfterARestart(t *testing.T) {
	job := newJob("lab2", withTTL("3600"), finishedAgo(10*time.Second), func(j *batchv1.Job) { j.Status.Succeeded = 1 })
	pod := newPod(job, "lab2-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
	e := withExportedLabel(newEnv(t, job, pod))
	e.logs.logs["lab2-a/worker"] = "2026-11-27T11:59:30.000000001Z done\n"
	e.reconcile(t, job.Name)

	// The Job's patch was lost (the controller stopped first): it is back
	// as it was, its pod gone from the cache; a new process has no memo.
	var got batchv1.Job
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
	delete(got.Labels, exportedLabel)
	got.Finalizers = []string{"flowforge.io/export"}
	require.NoError(t, e.client.Update(context.Background(), &got))
	require.NoError(t, e.client.Delete(context.Background(), pod))
	e.r = &Reconciler{Client: e.r.Client, JobEvents: e.r.JobEvents, PodEvents: e.r.PodEvents, Store: e.r.Store, Recorder: e.r.Recorder, Clock: e.r.Clock, Logs: e.r.Logs, Settings: e.r.Settings}
	exports := sampleCount(t, metrics.ExportLag)

	res := e.reconcile(t, job.Name)
	assert.Equal(t, time.Hour-10*time.Second, res.RequeueAfter, "no wait for the pod: the history has the export")
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
	assert.Equal(t, ExportedValue(contract.PhaseSucceeded, now.Add(-10*time.Second)), got.Labels[exportedLabel])
	assert.Empty(t, got.Finalizers)
	assert.Equal(t, exports, sampleCount(t, metrics.ExportLag), "not exported again")
}

func TestAPodLateForItsLabelledJobIsReleased(t *testing.T) {
	job := newJob("lab3", withTTL("3600"), finishedAgo(10*time.Second), func(j *batchv1.Job) {
		j.Labels[exportedLabel] = ExportedValue(contract.PhaseSucceeded, now.Add(-10*time.Second))
		j.Finalizers = nil
	})
	ended := newPod(job, "lab3-a", corev1.PodFailed, ptr.To[int32](1), now.Add(-40*time.Second))
	running := newPod(job, "lab3-b", corev1.PodRunning, nil, now.Add(-20*time.Second))
	other := newPod(newJob("other"), "other-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
	for _, p := range []*corev1.Pod{ended, running, other} {
		p.Labels[batchv1.JobNameLabel] = job.Name
	}
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	// The cache holds the pods, not the labelled Job; the API server both.
	cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(ended, running, other).Build()
	api := fake.NewClientBuilder().WithScheme(scheme).WithObjects(job).Build()
	e := withExportedLabel(newEnv(t))
	e.r.Client, e.r.APIReader = cache, api

	_, err := e.r.Reconcile(context.Background(), requestFor(job))
	require.NoError(t, err)
	var got corev1.Pod
	require.NoError(t, cache.Get(context.Background(), client.ObjectKeyFromObject(ended), &got))
	assert.Equal(t, job.Labels[exportedLabel], got.Labels[exportedLabel], "the ended pod follows its Job out of the cache")
	assert.Empty(t, got.Finalizers)
	require.NoError(t, cache.Get(context.Background(), client.ObjectKeyFromObject(running), &got))
	assert.NotContains(t, got.Labels, exportedLabel, "a running pod waits until it ends")
	assert.Equal(t, []string{"flowforge.io/log-export"}, got.Finalizers)
	require.NoError(t, cache.Get(context.Background(), client.ObjectKeyFromObject(other), &got))
	assert.NotContains(t, got.Labels, exportedLabel, "another Job's pod is not touched")

	// A Job that is really gone leaves its pods alone.
	e.r.APIReader = fake.NewClientBuilder().WithScheme(scheme).Build()
	_, err = e.r.Reconcile(context.Background(), requestFor(job))
	require.NoError(t, err)
}

// exportedJob is a labelled Job as the API server's metadata list returns it.
func exportedJob(name string, finished time.Time, ttl string) *batchv1.Job {
	return newJob(name, withTTL(ttl), func(j *batchv1.Job) {
		j.Labels[exportedLabel] = ExportedValue(contract.PhaseSucceeded, finished)
		j.Finalizers = nil
	})
}

func TestSweeperDeletesExportedJobsAtTheirTTL(t *testing.T) {
	due := exportedJob("sw1", now.Add(-time.Hour), "3600")
	later := exportedJob("sw2", now.Add(-10*time.Minute), "3600")
	later.Finalizers = []string{"flowforge.io/export"} // left behind
	kept := exportedJob("sw3", now.Add(-48*time.Hour), "3600")
	delete(kept.Annotations, contract.AnnotationTTLSecondsAfterFinished)
	malformed := exportedJob("sw4", now, "60")
	malformed.Labels[exportedLabel] = "nonsense"
	unlabelled := newJob("sw5", withTTL("0"), finishedAgo(time.Hour), func(j *batchv1.Job) { j.Finalizers = nil })
	d := &deletes{}
	e := withExportedLabel(envRecordingDeletes(t, d, due, later, kept, malformed, unlabelled))
	s := &ExportedSweeper{Reader: e.client, Reconciler: e.r, Settings: e.r.Settings, Clock: e.clock, Log: logr.Discard(), PageSize: 2}
	deleted := testutil.ToFloat64(metrics.TTLDeletions)

	next, err := s.Sweep(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 50*time.Minute, next, "the next deletion due")
	assert.True(t, jobGone(t, e, due), "its TTL is up")
	for _, j := range []*batchv1.Job{later, kept, malformed, unlabelled} {
		assert.False(t, jobGone(t, e, j), j.Name)
	}
	require.Len(t, d.opts, 1)
	assert.Equal(t, metav1.DeletePropagationForeground, *d.opts[0].PropagationPolicy)
	assert.Equal(t, due.UID, *d.opts[0].Preconditions.UID)
	var got batchv1.Job
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(later), &got))
	assert.Empty(t, got.Finalizers, "a finalizer left behind is released")
	assert.Empty(t, e.r.memo.hashes, "the sweep keeps no memo per Job")
	assert.Equal(t, deleted+1, testutil.ToFloat64(metrics.TTLDeletions))
	assert.Equal(t, map[contract.Phase]float64{contract.PhaseSucceeded: 3, "": 1}, s.Counts(), "every labelled Job of the sweep, by phase")
	uids, err := s.UIDs(context.Background())
	require.NoError(t, err)
	assert.Equal(t, map[types.UID]bool{later.UID: true, kept.UID: true, malformed.UID: true}, uids)

	e.clock.Step(50 * time.Minute)
	_, err = s.Sweep(context.Background())
	require.NoError(t, err)
	assert.True(t, jobGone(t, e, later))
	assert.False(t, jobGone(t, e, kept), "no TTL: kept")

	// Without the label configured, nothing is listed.
	off := &ExportedSweeper{Reader: e.client, Reconciler: e.r, Settings: func() Settings { return Settings{} }, Clock: e.clock, Log: logr.Discard()}
	next, err = off.Sweep(context.Background())
	require.NoError(t, err)
	assert.Zero(t, next)
	uids, err = off.UIDs(context.Background())
	require.NoError(t, err)
	assert.Empty(t, uids)
}

func TestSweeperRunsUntilStopped(t *testing.T) {
	job := exportedJob("sw6", now.Add(-2*time.Hour), "3600")
	e := withExportedLabel(newEnv(t, job))
	e.r.SweepInterval = time.Minute
	s := &ExportedSweeper{Reader: e.client, Reconciler: e.r, Settings: e.r.Settings, Clock: e.clock, Log: logr.Discard()}
	assert.True(t, s.NeedLeaderElection())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	require.Eventually(t, func() bool { return e.clock.HasWaiters() }, 10*time.Second, 10*time.Millisecond, "waits for the next sweep")
	assert.True(t, jobGone(t, e, job), "the first sweep deleted it")
	cancel()
	require.NoError(t, <-done)
}

func TestStateCollectorCountsTheExportedJobs(t *testing.T) {
	running := newJob("st1", func(j *batchv1.Job) { j.Status.Active, j.Status.Ready = 1, ptr.To[int32](1) })
	e := newEnv(t, running)
	c := newStateCollector(e.client, e.clock, "flowforge.io/export", func() map[contract.Phase]float64 {
		return map[contract.Phase]float64{contract.PhaseSucceeded: 3, contract.PhaseFailed: 1, "": 2}
	})
	expected := `
# HELP flowforge_jobs FlowForge Jobs in the cluster, by phase.
# TYPE flowforge_jobs gauge
flowforge_jobs{phase="Cancelled"} 0
flowforge_jobs{phase="Cancelling"} 0
flowforge_jobs{phase="Failed"} 1
flowforge_jobs{phase="Pending"} 0
flowforge_jobs{phase="Running"} 1
flowforge_jobs{phase="Succeeded"} 3
flowforge_jobs{phase="TimedOut"} 0
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(expected), "flowforge_jobs"))
}

func TestForgetDropsTheMemoOfAnObjectGoneFromTheCache(t *testing.T) {
	job := newJob("fg1", withTTL("3600"), finishedAgo(10*time.Second), func(j *batchv1.Job) { j.Status.Succeeded = 1 })
	pod := newPod(job, "fg1-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
	e := withExportedLabel(newEnv(t, job, pod))
	e.logs.logs["fg1-a/worker"] = "2026-11-27T11:59:30.000000001Z done\n"
	e.reconcile(t, job.Name)
	require.True(t, e.r.memo.marked("exported/"+string(job.UID)))
	require.True(t, e.r.memo.marked("labelled/"+string(pod.UID)))
	before := len(e.r.memo.hashes)

	e.r.Forget(job)
	e.r.Forget(toolscache.DeletedFinalStateUnknown{Key: "agents/fg1-a", Obj: pod})
	e.r.Forget("not an object")
	assert.False(t, e.r.memo.marked("exported/"+string(job.UID)))
	assert.False(t, e.r.memo.marked("labelled/"+string(pod.UID)))
	assert.Empty(t, e.r.memo.hashes, "of %d entries, none left", before)
}

// storeReader is a cache whose Job informer serves a store, as the
// manager's does.
type storeReader struct {
	client.Reader
	store toolscache.Store
}

type storeInformer struct {
	crcache.Informer
	store toolscache.Store
}

func (i storeInformer) GetStore() toolscache.Store { return i.store }

func (r storeReader) GetInformer(context.Context, client.Object, ...crcache.InformerGetOption) (crcache.Informer, error) {
	return storeInformer{store: r.store}, nil
}

func TestStateCollectorReadsTheInformersStore(t *testing.T) {
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	require.NoError(t, store.Add(newJob("st2", func(j *batchv1.Job) { j.Status.Active, j.Status.Ready = 1, ptr.To[int32](1) })))
	require.NoError(t, store.Add(newJob("st3", finishedJob(batchv1.JobComplete, "CompletionsReached"))))
	require.NoError(t, store.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "not-a-job"}}))
	c := newStateCollector(storeReader{store: store}, clocktesting.NewFakeClock(now), "flowforge.io/export", nil)
	expected := `
# HELP flowforge_jobs FlowForge Jobs in the cluster, by phase.
# TYPE flowforge_jobs gauge
flowforge_jobs{phase="Cancelled"} 0
flowforge_jobs{phase="Cancelling"} 0
flowforge_jobs{phase="Failed"} 0
flowforge_jobs{phase="Pending"} 0
flowforge_jobs{phase="Running"} 1
flowforge_jobs{phase="Succeeded"} 1
flowforge_jobs{phase="TimedOut"} 0
# HELP flowforge_jobs_awaiting_export Finished Jobs whose export has not completed; they are kept by the export finalizer.
# TYPE flowforge_jobs_awaiting_export gauge
flowforge_jobs_awaiting_export 1
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(expected), "flowforge_jobs", "flowforge_jobs_awaiting_export"))
}
