package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowforge/flowforge/test/testjobs"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/history/store"
	"github.com/flowforge/flowforge/internal/metrics"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fakeLogs serves canned, timestamped logs per pod and container.
type fakeLogs struct {
	mu    sync.Mutex
	logs  map[string]string
	err   error
	calls int
}

func (f *fakeLogs) Stream(_ context.Context, _, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return io.NopCloser(strings.NewReader(f.logs[pod+"/"+opts.Container])), nil
}

// fakeEvents lists canned events by involved object UID.
type fakeEvents struct{ byUID map[string][]corev1.Event }

func (f fakeEvents) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := &client.ListOptions{}
	for _, opt := range opts {
		opt.ApplyToList(o)
	}
	uid, _ := o.FieldSelector.RequiresExactMatch("involvedObject.uid")
	list.(*corev1.EventList).Items = f.byUID[uid]
	return nil
}

type env struct {
	r      *Reconciler
	client client.Client
	store  *store.SQLite
	rec    *events.FakeRecorder
	clock  *clocktesting.FakeClock
	logs   *fakeLogs
}

func newEnv(t *testing.T, objs ...client.Object) *env {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithIndex(&corev1.Pod{}, PodJobUIDField, podJobUID).WithStatusSubresource(&batchv1.Job{}, &corev1.Pod{}).Build()
	store, err := store.OpenSQLite(context.Background(), ":memory:")
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	e := &env{client: c, store: store, rec: events.NewFakeRecorder(100), clock: clocktesting.NewFakeClock(now), logs: &fakeLogs{logs: map[string]string{}}}
	e.r = &Reconciler{
		Client: c, JobEvents: fakeEvents{byUID: map[string][]corev1.Event{}}, PodEvents: fakeEvents{byUID: map[string][]corev1.Event{}}, Store: store, Recorder: e.rec, Clock: e.clock, Logs: e.logs,
		Settings: func() Settings {
			return Settings{PendingTimeout: 5 * time.Minute, LogArchiveLimit: 1 << 20, JobFinalizer: "flowforge.io/export", PodFinalizer: "flowforge.io/log-export", ExportGrace: 2 * time.Minute}
		},
	}
	return e
}

func (e *env) reconcile(t *testing.T, name string) reconcile.Result {
	t.Helper()
	res, err := e.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "agents", Name: name}})
	require.NoError(t, err)
	return res
}

func (e *env) events() []string {
	var out []string
	for {
		select {
		case ev := <-e.rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func newJob(id string, mutate ...func(*batchv1.Job)) *batchv1.Job {
	return testjobs.MakeAgentJob(id, "agents").UID("uid-"+id).UserID("alice").
		Created(now.Add(-time.Minute)).Started(now.Add(-50*time.Second)).
		Annotation(contract.AnnotationRepository, "acme/app").Annotation(contract.AnnotationBranch, "main").
		Finalizers("flowforge.io/export").Deadline(3600).
		Apply(func(j *batchv1.Job) {
			j.Spec.Template = corev1.PodTemplateSpec{}
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{2}}},
				{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
			}}
		}).
		Apply(mutate...).Obj()
}

func finishedJob(cond batchv1.JobConditionType, reason string) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: cond, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: metav1.NewTime(now.Add(-10 * time.Second))})
		j.Status.CompletionTime = ptr.To(metav1.NewTime(now.Add(-10 * time.Second)))
	}
}

func newPod(job *batchv1.Job, name string, phase corev1.PodPhase, exit *int32, created time.Time) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "agents", UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(created),
			Labels:            map[string]string{batchv1.ControllerUidLabel: string(job.UID), contract.LabelApp: contract.AppName},
			Finalizers:        []string{"flowforge.io/log-export"},
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{NodeName: "kwok-worker-0", Containers: []corev1.Container{{Name: "worker", Image: "img"}}},
		Status: corev1.PodStatus{
			Phase:     phase,
			StartTime: ptr.To(metav1.NewTime(created.Add(2 * time.Second))),
		},
	}
	cs := corev1.ContainerStatus{Name: "worker"}
	switch {
	case exit != nil:
		cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: *exit, Reason: map[bool]string{true: "Completed", false: "Error"}[*exit == 0], FinishedAt: metav1.NewTime(created.Add(5 * time.Second))}
	case phase == corev1.PodRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(created.Add(2 * time.Second))}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}
		p.Status.StartTime = nil
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	return p
}

func TestRunningJobIsRecordedAndStartedOnce(t *testing.T) {
	job := newJob("run1", func(j *batchv1.Job) { j.Status.Active, j.Status.Ready = 1, ptr.To[int32](1) })
	e := newEnv(t, job, newPod(job, "run1-a", corev1.PodRunning, nil, now.Add(-40*time.Second)))
	before := testutil.CollectAndCount(metrics.QueueWait)
	e.reconcile(t, job.Name)
	e.reconcile(t, job.Name)

	rec, err := e.store.Job(context.Background(), "run1")
	require.NoError(t, err)
	assert.Equal(t, history.StatusRunning, rec.Status)
	assert.Equal(t, "alice", rec.User)
	assert.Equal(t, "acme/app", rec.Repository)
	require.Len(t, rec.Attempts, 1)
	assert.Equal(t, "kwok-worker-0", rec.Attempts[0].Node)
	assert.Equal(t, []string{"Normal Started attempt 1 started on node kwok-worker-0"}, e.events(), "one Started event across reconciles")
	assert.Equal(t, before, testutil.CollectAndCount(metrics.QueueWait), "a histogram keeps one series")
}

func TestRetriesAreRecordedOnce(t *testing.T) {
	job := newJob("retry1")
	e := newEnv(t, job,
		newPod(job, "retry1-a", corev1.PodFailed, ptr.To[int32](3), now.Add(-40*time.Second)),
		newPod(job, "retry1-b", corev1.PodRunning, nil, now.Add(-20*time.Second)))
	counter := metrics.Retries.WithLabelValues("Error")
	before := testutil.ToFloat64(counter)
	e.reconcile(t, job.Name)
	e.reconcile(t, job.Name)
	assert.Equal(t, before+1, testutil.ToFloat64(counter), "counted once")
	evs := e.events()
	require.Len(t, evs, 2, "%v", evs)
	assert.Contains(t, evs, "Warning Retried attempt 1 (pod retry1-a) failed: Error, exit code 3; attempt 2 started")

	rec, err := e.store.Job(context.Background(), "retry1")
	require.NoError(t, err)
	require.Len(t, rec.Attempts, 2)
	assert.Equal(t, int32(3), *rec.Attempts[0].ExitCode)
	assert.True(t, *rec.Attempts[0].Counted)
	assert.Nil(t, rec.Attempts[1].Counted)
}

func TestCancelLowersTheDeadline(t *testing.T) {
	job := newJob("cancel1", func(j *batchv1.Job) {
		j.Annotations[contract.AnnotationCancelRequestedBy] = "alice"
		j.Annotations[contract.AnnotationCancelReason] = "wrong branch"
		j.Annotations[contract.AnnotationCancelRequestedAt] = now.Format(time.RFC3339)
	})
	e := newEnv(t, job, newPod(job, "cancel1-a", corev1.PodRunning, nil, now.Add(-40*time.Second)))
	res := e.reconcile(t, job.Name)
	assert.Equal(t, time.Second, res.RequeueAfter)

	var got batchv1.Job
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
	assert.Equal(t, int64(50), *got.Spec.ActiveDeadlineSeconds, "the deadline becomes the time already run")
	assert.Equal(t, contract.TerminationCancelled, got.Annotations[contract.AnnotationTerminationReason])
	assert.Equal(t, "cancelled by alice: wrong branch", got.Annotations[AnnotationTerminationMessage])

	e.reconcile(t, job.Name)
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
	assert.Equal(t, int64(50), *got.Spec.ActiveDeadlineSeconds, "idempotent")
	evs := e.events()
	assert.Contains(t, evs, "Warning Terminating stopping the Job: cancelled by alice: wrong branch")
	cancelled := 0
	for _, ev := range evs {
		if strings.HasPrefix(ev, "Warning Terminating") {
			cancelled++
		}
	}
	assert.Equal(t, 1, cancelled)
}

func TestCancelBeforeTheJobStartedWaits(t *testing.T) {
	job := newJob("cancel2", func(j *batchv1.Job) {
		j.Status.StartTime = nil
		j.Annotations[contract.AnnotationCancelRequestedAt] = now.Format(time.RFC3339)
	})
	e := newEnv(t, job)
	res := e.reconcile(t, job.Name)
	assert.Equal(t, 500*time.Millisecond, res.RequeueAfter)
}

func TestPendingTimeout(t *testing.T) {
	job := newJob("pend1")
	e := newEnv(t, job, newPod(job, "pend1-a", corev1.PodPending, nil, now.Add(-100*time.Second)))
	res := e.reconcile(t, job.Name)
	assert.Equal(t, 200*time.Second, res.RequeueAfter, "called again when the limit would be reached")

	e.clock.Step(201 * time.Second)
	e.reconcile(t, job.Name)
	var got batchv1.Job
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
	assert.Equal(t, contract.TerminationPendingTimeout, got.Annotations[contract.AnnotationTerminationReason])
	assert.Contains(t, got.Annotations[AnnotationTerminationMessage], "container worker is waiting: ImagePullBackOff")
	assert.Equal(t, int64(251), *got.Spec.ActiveDeadlineSeconds)
	assert.Contains(t, strings.Join(e.events(), "\n"), "Warning Terminating stopping the Job: pod pend1-a stayed Pending for more than 5m0s")
}

func TestExportStoresEverythingThenReleasesTheJob(t *testing.T) {
	job := newJob("done1", finishedJob(batchv1.JobComplete, "CompletionsReached"))
	pod := newPod(job, "done1-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
	e := newEnv(t, job, pod)
	e.logs.logs["done1-a/worker"] = "2026-11-27T11:59:30.000000001Z cloning\n2026-11-27T11:59:31.000000001Z done\n"
	e.r.JobEvents = fakeEvents{byUID: map[string][]corev1.Event{
		string(job.UID): {{InvolvedObject: corev1.ObjectReference{Kind: "Job", Name: job.Name}, Type: "Normal", Reason: "Completed", Message: "Job completed", LastTimestamp: metav1.NewTime(now.Add(-10 * time.Second))}},
	}}
	e.r.PodEvents = fakeEvents{byUID: map[string][]corev1.Event{
		string(pod.UID): {{InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: pod.Name}, Type: "Normal", Reason: "Started", Message: "Started container", LastTimestamp: metav1.NewTime(now.Add(-38 * time.Second))}},
	}}
	lag := testutil.CollectAndCount(metrics.ExportLag)
	e.reconcile(t, job.Name)

	rec, err := e.store.Job(context.Background(), "done1")
	require.NoError(t, err)
	assert.Equal(t, history.StatusSucceeded, rec.Status)
	require.NotNil(t, rec.Exported)
	require.NotNil(t, rec.Finished)
	require.Len(t, rec.Events, 1, "a succeeded attempt's pod events are not copied")
	assert.Equal(t, "job/claude-job-done1", rec.Events[0].Object)
	archives, err := e.store.LogArchives(context.Background(), string(job.UID))
	require.NoError(t, err)
	require.Len(t, archives, 1)
	text, err := archives[0].Text()
	require.NoError(t, err)
	assert.Equal(t, "cloning\ndone\n", string(text), "timestamps are stripped")
	assert.Equal(t, lag, testutil.CollectAndCount(metrics.ExportLag))

	var gotJob batchv1.Job
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &gotJob))
	assert.NotContains(t, gotJob.Finalizers, "flowforge.io/export")
	var gotPod corev1.Pod
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(pod), &gotPod))
	assert.NotContains(t, gotPod.Finalizers, "flowforge.io/log-export")

	calls := e.logs.calls
	e.reconcile(t, job.Name)
	assert.Equal(t, calls, e.logs.calls, "archived logs are not fetched again")
	evs := e.events()
	assert.Equal(t, 1, countPrefix(evs, "Normal Exported"), "%v", evs)
	assert.Equal(t, 1, countPrefix(evs, "Normal Succeeded"))
}

func countPrefix(evs []string, prefix string) int {
	n := 0
	for _, e := range evs {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

func TestExportCopiesTheEventsOfFailedAttempts(t *testing.T) {
	job := newJob("evs", finishedJob(batchv1.JobFailed, "BackoffLimitExceeded"), func(j *batchv1.Job) { j.Status.Failed = 1 })
	pod := newPod(job, "evs-a", corev1.PodFailed, ptr.To[int32](1), now.Add(-40*time.Second))
	e := newEnv(t, job, pod)
	// Job events come from the cache, pod events from the API server.
	e.r.JobEvents = fakeEvents{byUID: map[string][]corev1.Event{
		string(job.UID): {{InvolvedObject: corev1.ObjectReference{Kind: "Job", Name: job.Name}, Type: "Warning", Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTimestamp: metav1.NewTime(now.Add(-20 * time.Second))}},
	}}
	e.r.PodEvents = fakeEvents{byUID: map[string][]corev1.Event{
		string(pod.UID): {{InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: pod.Name}, Type: "Warning", Reason: "BackOff", Message: "back-off", LastTimestamp: metav1.NewTime(now.Add(-30 * time.Second))}},
	}}
	e.reconcile(t, job.Name)
	rec, err := e.store.Job(context.Background(), "evs")
	require.NoError(t, err)
	require.Len(t, rec.Events, 2)
	assert.Equal(t, "pod/evs-a", rec.Events[0].Object, "sorted by time")
	assert.Equal(t, "job/claude-job-evs", rec.Events[1].Object)
}

func TestExportWaitsForTerminatingPodsThenGivesUp(t *testing.T) {
	job := newJob("wait1", finishedJob(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded))
	pod := newPod(job, "wait1-a", corev1.PodRunning, nil, now.Add(-40*time.Second))
	e := newEnv(t, job, pod)
	res := e.reconcile(t, job.Name)
	assert.Equal(t, 500*time.Millisecond, res.RequeueAfter)
	rec, err := e.store.Job(context.Background(), "wait1")
	require.NoError(t, err)
	assert.Nil(t, rec.Exported)

	e.clock.Step(3 * time.Minute)
	e.reconcile(t, job.Name)
	rec, err = e.store.Job(context.Background(), "wait1")
	require.NoError(t, err)
	assert.NotNil(t, rec.Exported, "exported after the grace period")
	assert.Equal(t, history.StatusTimedOut, rec.Status)
}

func TestExportFailureKeepsTheJob(t *testing.T) {
	job := newJob("fail1", finishedJob(batchv1.JobFailed, "BackoffLimitExceeded"))
	pod := newPod(job, "fail1-a", corev1.PodFailed, ptr.To[int32](1), now.Add(-40*time.Second))
	e := newEnv(t, job, pod)
	e.logs.err = errors.New("kubelet unreachable")
	before := testutil.ToFloat64(metrics.ExportFailures)
	_, err := e.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "agents", Name: job.Name}})
	require.ErrorContains(t, err, "kubelet unreachable")
	assert.Equal(t, before+1, testutil.ToFloat64(metrics.ExportFailures))
	var got batchv1.Job
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
	assert.Contains(t, got.Finalizers, "flowforge.io/export", "the Job stays until its export succeeds")

	e.logs.err = nil
	e.reconcile(t, job.Name)
	rec, err := e.store.Job(context.Background(), "fail1")
	require.NoError(t, err)
	assert.Equal(t, history.StatusFailed, rec.Status)
	assert.NotNil(t, rec.Exported)
}

func TestExportHookCanStopMidway(t *testing.T) {
	job := newJob("hook1", finishedJob(batchv1.JobComplete, "CompletionsReached"))
	e := newEnv(t, job, newPod(job, "hook1-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second)))
	e.r.hook = func(step string) error {
		if step == "recorded" {
			return fmt.Errorf("killed at %s", step)
		}
		return nil
	}
	_, err := e.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "agents", Name: job.Name}})
	require.ErrorContains(t, err, "killed at recorded")
	rec, err := e.store.Job(context.Background(), "hook1")
	require.NoError(t, err)
	assert.Nil(t, rec.Exported)
	e.r.hook = nil
	e.reconcile(t, job.Name)
	rec, err = e.store.Job(context.Background(), "hook1")
	require.NoError(t, err)
	assert.NotNil(t, rec.Exported)
	assert.Len(t, rec.Attempts, 1)
}

func TestDeletedBeforeFinishingIsExported(t *testing.T) {
	job := newJob("gone1", func(j *batchv1.Job) {
		j.DeletionTimestamp = ptr.To(metav1.NewTime(now))
	})
	e := newEnv(t, job)
	e.reconcile(t, job.Name)
	rec, err := e.store.Job(context.Background(), "gone1")
	require.NoError(t, err)
	assert.NotNil(t, rec.Exported)
}

func TestIgnoresWhatIsNotFlowForge(t *testing.T) {
	job := newJob("other", func(j *batchv1.Job) { j.Labels[contract.LabelApp] = "something" })
	e := newEnv(t, job)
	e.reconcile(t, job.Name)
	e.reconcile(t, "missing")
	_, err := e.store.Job(context.Background(), "other")
	assert.ErrorIs(t, err, history.ErrNotFound)
}

func TestCountedByPolicy(t *testing.T) {
	job := newJob("pfp")
	failed := func(code int32, conds ...corev1.PodConditionType) *corev1.Pod {
		p := newPod(job, "p", corev1.PodFailed, &code, now)
		for _, c := range conds {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue})
		}
		return p
	}
	assert.True(t, countedByPolicy(job, failed(3)), "no rule matches: counted")
	assert.True(t, countedByPolicy(job, failed(2)), "FailJob counts")
	assert.False(t, countedByPolicy(job, failed(137, corev1.DisruptionTarget)), "Ignore does not count")
	noPolicy := newJob("nopfp", func(j *batchv1.Job) { j.Spec.PodFailurePolicy = nil })
	assert.True(t, countedByPolicy(noPolicy, failed(3)))
	notIn := newJob("notin", func(j *batchv1.Job) {
		j.Spec.PodFailurePolicy.Rules[0] = batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1}}}
	})
	assert.False(t, countedByPolicy(notIn, failed(5)))
	assert.True(t, countedByPolicy(notIn, failed(1)))
	assert.Equal(t, "Disruption", failureReason(failed(137, corev1.DisruptionTarget)))
	evicted := failed(1)
	evicted.Status.Reason = "Evicted"
	assert.Equal(t, "Evicted", failureReason(evicted))
}

func TestStripTimestamps(t *testing.T) {
	out, err := io.ReadAll(stripTimestamps([]byte("2026-11-27T11:59:30Z a b\nnot stamped\n2026-11-27T11:59:31Z\n")))
	require.NoError(t, err)
	assert.Equal(t, "a b\nnot stamped\n\n", string(out))
}

func TestEveryAttemptIsRecordedOnLaterReconciles(t *testing.T) {
	job := newJob("many")
	e := newEnv(t, job,
		newPod(job, "many-a", corev1.PodFailed, ptr.To[int32](3), now.Add(-40*time.Second)),
		newPod(job, "many-b", corev1.PodFailed, ptr.To[int32](3), now.Add(-30*time.Second)),
		newPod(job, "many-c", corev1.PodRunning, nil, now.Add(-20*time.Second)))
	e.reconcile(t, job.Name)
	var pod corev1.Pod
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKey{Namespace: "agents", Name: "many-c"}, &pod))
	pod.Status.Phase = corev1.PodFailed
	pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}}
	require.NoError(t, e.client.Status().Update(context.Background(), &pod))
	e.reconcile(t, job.Name)
	rec, err := e.store.Job(context.Background(), "many")
	require.NoError(t, err)
	require.Len(t, rec.Attempts, 3)
	assert.Equal(t, "Failed", rec.Attempts[2].Phase, "the last attempt is updated after earlier retries were reported")
}

func TestUnscheduledDeletedPodsDoNotHoldTheExport(t *testing.T) {
	job := newJob("unsched", finishedJob(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded), func(j *batchv1.Job) { j.Status.Failed = 1 })
	pod := newPod(job, "unsched-a", corev1.PodPending, nil, now.Add(-20*time.Second))
	pod.Spec.NodeName = ""
	pod.DeletionTimestamp = ptr.To(metav1.NewTime(now.Add(-5 * time.Second)))
	e := newEnv(t, job, pod)
	e.reconcile(t, job.Name)
	rec, err := e.store.Job(context.Background(), "unsched")
	require.NoError(t, err)
	assert.NotNil(t, rec.Exported, "exported without waiting for the grace period")
}
