package controller

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/contract"
	ffcontroller "github.com/flowforge/flowforge/controller"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/jobs"
	"github.com/flowforge/flowforge/templates"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// agentJob is a plain labelled Job, as any client would create it.
func agentJob(id string, podAnnotations map[string]string, mutate ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        contract.JobName(id),
			Labels:      map[string]string{contract.LabelApp: contract.AppName, contract.LabelJobID: id, contract.LabelUserID: "alice"},
			Annotations: map[string]string{contract.AnnotationRepository: "acme/widgets", contract.AnnotationBranch: "main"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: podAnnotations},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}}},
		}},
	}
	for _, m := range mutate {
		m(j)
	}
	return j
}

func create(t *testing.T, ns string, job *batchv1.Job) {
	t.Helper()
	_, err := clientset.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{})
	require.NoError(t, err)
}

// exported waits until the history has the job's exported record.
func exported(t *testing.T, id string) *history.Job {
	t.Helper()
	c := &history.Client{BaseURL: ctl.HistoryURL}
	var rec *history.Job
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 2*framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		var err error
		rec, err = c.Job(ctx, id)
		return err == nil && rec.Exported != nil, nil
	}), "job %s was never exported", id)
	return rec
}

// eventReasons lists the reasons of the object's Events once every reason
// in want is among them (or 30 s have passed): an Event is written after
// the work it reports (the Exported event after the history record), so
// a test that saw the work may list the Events before it lands.
func eventReasons(t *testing.T, ns, name string, want ...string) []string {
	t.Helper()
	var out []string
	_ = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := clientset.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String()})
		if err != nil {
			return false, err
		}
		out = out[:0]
		for _, e := range list.Items {
			out = append(out, e.Reason)
		}
		for _, w := range want {
			if count(out, w) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	return out
}

func count(list []string, want string) int {
	n := 0
	for _, s := range list {
		if s == want {
			n++
		}
	}
	return n
}

func jobsClient(t *testing.T, ns string) *jobs.Client {
	t.Helper()
	r, err := templates.NewRenderer(templates.RendererOptions{})
	require.NoError(t, err)
	c, err := jobs.New(clientset, r, jobs.Options{Namespace: ns})
	require.NoError(t, err)
	return c
}

func TestLifecycle(t *testing.T) {
	t.Run("jobs", func(t *testing.T) {
		t.Run("success outlives the Job", testSuccessOutlivesTheJob)
		t.Run("failure with retries", testFailureWithRetries)
		t.Run("configuration error is not retried", testConfigErrorNotRetried)
		t.Run("pending timeout", testPendingTimeout)
		t.Run("deadline exceeded", testDeadlineExceeded)
		t.Run("cancel a running job", testCancelRunning)
		t.Run("cancel a pending job", testCancelPending)
	})
	t.Run("metrics", testMetrics)
}

func testSuccessOutlivesTheJob(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "success", framework.RestrictedLabels())
	lines := []string{"cloning acme/widgets", "editing 3 files", "pushed branch main"}
	create(t, ns, agentJob("ok1", map[string]string{
		localcluster.AnnotationLogs:        strings.Join(lines, "\n"),
		localcluster.AnnotationLogInterval: "200ms",
		localcluster.AnnotationDuration:    "2s",
	}, func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](1) }))

	// The webhook moved the TTL to FlowForge's annotation; the controller
	// deletes the Job once it has exported it and the TTL is up.
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 2*framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := clientset.BatchV1().Jobs(ns).Get(ctx, contract.JobName("ok1"), metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}), "the controller deletes the Job after the export and its TTL")

	rec := exported(t, "ok1")
	assert.Equal(t, history.StatusSucceeded, rec.Status)
	assert.Equal(t, "alice", rec.User)
	assert.Equal(t, "acme/widgets", rec.Repository)
	assert.NotEmpty(t, rec.PolicyRevision)
	require.Len(t, rec.Attempts, 1)
	assert.Equal(t, int32(0), *rec.Attempts[0].ExitCode)
	assert.Contains(t, testCluster.WorkerNodeNames(), rec.Attempts[0].Node)
	reasons := map[string]bool{}
	for _, e := range rec.Events {
		reasons[e.Reason] = true
	}
	assert.True(t, reasons["Started"] || reasons["Scheduled"], "the Job's events were exported: %v", rec.Events)

	var logs strings.Builder
	require.NoError(t, (&history.Client{BaseURL: ctl.HistoryURL}).Logs(context.Background(), "ok1", 0, "", &logs))
	assert.Equal(t, strings.Join(lines, "\n")+"\n", logs.String(), "the logs outlive the pod")

	var shipped []map[string]any
	for _, l := range ctl.Shipped.Lines() {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		if m["job_id"] == "ok1" {
			shipped = append(shipped, m)
		}
	}
	require.Len(t, shipped, len(lines), "every line shipped once")
	assert.Equal(t, "alice", shipped[0]["user_id"])
	assert.EqualValues(t, 1, shipped[0]["attempt"])
	assert.Equal(t, lines[0], shipped[0]["msg"])
}

func testFailureWithRetries(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "retries", nil)
	create(t, ns, agentJob("fail3", map[string]string{localcluster.AnnotationExitCode: "3", localcluster.AnnotationDuration: "300ms"}))
	rec := exported(t, "fail3")
	assert.Equal(t, history.StatusFailed, rec.Status)
	require.Len(t, rec.Attempts, 3, "one attempt and the policy's two retries")
	for i, a := range rec.Attempts {
		assert.Equal(t, i+1, a.Number)
		require.NotNil(t, a.ExitCode)
		assert.Equal(t, int32(3), *a.ExitCode)
		require.NotNil(t, a.Counted)
		assert.True(t, *a.Counted, "exit code 3 counts towards backoffLimit")
		assert.NotNil(t, a.Finished)
	}
	kinds := map[string]bool{}
	for _, e := range rec.Events {
		kinds[strings.SplitN(e.Object, "/", 2)[0]] = true
	}
	assert.True(t, kinds["job"], "the Job's events (from the controller's cache) were exported: %v", rec.Events)
	assert.True(t, kinds["pod"], "the failed pods' events (listed from the API server) were exported: %v", rec.Events)
	reasons := eventReasons(t, ns, contract.JobName("fail3"), "Retried", "Failed", "Exported")
	assert.Equal(t, 2, count(reasons, "Retried"), "%v", reasons)
	assert.Equal(t, 1, count(reasons, "Failed"))
	assert.Equal(t, 1, count(reasons, "Exported"))
}

func testConfigErrorNotRetried(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "config-error", nil)
	create(t, ns, agentJob("fail2", map[string]string{localcluster.AnnotationExitCode: "2", localcluster.AnnotationDuration: "300ms"}))
	rec := exported(t, "fail2")
	assert.Equal(t, history.StatusFailed, rec.Status)
	require.Len(t, rec.Attempts, 1, "podFailurePolicy fails the Job on a configuration error")
	assert.Contains(t, rec.Message+rec.Reason, "PodFailurePolicy")
}

func testPendingTimeout(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "pending", nil)
	create(t, ns, agentJob("stuck1", map[string]string{localcluster.AnnotationImagePull: "fail"}))
	rec := exported(t, "stuck1")
	assert.Equal(t, history.StatusTimedOut, rec.Status)
	assert.Contains(t, rec.Message, "stayed Pending")
	assert.Contains(t, rec.Message, "ImagePullBackOff")
	reasons := eventReasons(t, ns, contract.JobName("stuck1"), "Terminating", "TimedOut")
	assert.Equal(t, 1, count(reasons, "Terminating"), "%v", reasons)
	assert.Equal(t, 1, count(reasons, "TimedOut"), "%v", reasons)
}

func testDeadlineExceeded(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "deadline", nil)
	create(t, ns, agentJob("slow1", map[string]string{localcluster.AnnotationRun: "forever"}, func(j *batchv1.Job) {
		j.Annotations[contract.AnnotationTimeout] = "3"
	}))
	rec := exported(t, "slow1")
	assert.Equal(t, history.StatusTimedOut, rec.Status)
	assert.Equal(t, batchv1.JobReasonDeadlineExceeded, rec.Reason)
	require.Len(t, rec.Attempts, 1)
	assert.Equal(t, int32(143), *rec.Attempts[0].ExitCode, "the pod was stopped with SIGTERM")
}

// waitPodTerminating returns how long after since the Job's pod got a
// deletion timestamp. It is reported, not asserted: these machines are shared.
func waitPodTerminating(t *testing.T, ns, jobName string, since time.Time) time.Duration {
	t.Helper()
	var took time.Duration
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := framework.JobPods(ctx, clientset, ns, jobName)
		if err != nil || len(pods) == 0 {
			return false, nil
		}
		if pods[0].DeletionTimestamp != nil || pods[0].Status.Phase == corev1.PodFailed {
			took = time.Since(since)
			return true, nil
		}
		return false, nil
	}))
	return took
}

func testCancelRunning(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "cancel-run", nil)
	create(t, ns, agentJob("cancel1", map[string]string{localcluster.AnnotationRun: "forever"}))
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := framework.JobPods(ctx, clientset, ns, contract.JobName("cancel1"))
		return err == nil && len(pods) == 1 && pods[0].Status.Phase == corev1.PodRunning, nil
	}))
	c := jobsClient(t, ns)
	start := time.Now()
	_, err := c.Cancel(context.Background(), "cancel1", "alice", "wrong branch")
	require.NoError(t, err)
	took := waitPodTerminating(t, ns, contract.JobName("cancel1"), start)
	t.Logf("running job: pod terminating %s after the cancel request", took.Round(time.Millisecond))
	if _, err = c.Cancel(context.Background(), "cancel1", "bob", "again"); err != nil {
		require.ErrorIs(t, err, jobs.ErrFinished, "cancelling twice keeps the first request")
	}

	rec := exported(t, "cancel1")
	assert.Equal(t, history.StatusCancelled, rec.Status)
	assert.Equal(t, "alice", rec.CancelledBy, "the first request is the one recorded")
	st, err := c.Status(context.Background(), "cancel1")
	if err == nil {
		assert.Equal(t, contract.PhaseCancelled, st.Phase, "the Job shows a Cancelled state until TTL removes it")
	}
	reasons := eventReasons(t, ns, contract.JobName("cancel1"), "Cancelled", "Terminating")
	assert.Equal(t, 1, count(reasons, "Cancelled"), "%v", reasons)
	assert.Equal(t, 1, count(reasons, "Terminating"), "%v", reasons)
}

func testCancelPending(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "cancel-pend", nil)
	// A node selector no node matches keeps the pod Pending (unschedulable).
	create(t, ns, agentJob("cancel2", nil, func(j *batchv1.Job) {
		j.Spec.Template.Spec.NodeSelector = map[string]string{"topology.kubernetes.io/zone": "nowhere"}
	}))
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := framework.JobPods(ctx, clientset, ns, contract.JobName("cancel2"))
		return err == nil && len(pods) == 1, nil
	}))
	_, err := jobsClient(t, ns).Cancel(context.Background(), "cancel2", "alice", "not needed")
	require.NoError(t, err)
	rec := exported(t, "cancel2")
	assert.Equal(t, history.StatusCancelled, rec.Status)
}

func testMetrics(t *testing.T) {
	ctx := context.Background()
	for sample, min := range map[string]float64{
		`flowforge_job_retries_total{reason="Error"}`:              2,
		`flowforge_job_cancellations_total`:                        2,
		`flowforge_job_timeouts_total{kind="pending"}`:             1,
		`flowforge_job_timeouts_total{kind="deadline"}`:            1,
		`flowforge_export_lag_seconds_count`:                       7,
		`flowforge_job_duration_seconds_count{status="Succeeded"}`: 1,
		`flowforge_job_queue_wait_seconds_count`:                   1,
		`flowforge_ttl_deletions_total`:                            1,
		`flowforge_log_bytes_shipped_total`:                        float64(len("cloning acme/widgets\n")),
	} {
		v, err := framework.ScrapeMetric(ctx, ctl.MetricsURL, sample)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, v, min, sample)
	}
	awaiting, err := framework.ScrapeMetric(ctx, ctl.MetricsURL, "flowforge_jobs_awaiting_export")
	require.NoError(t, err)
	assert.Zero(t, awaiting, "every finished Job has been exported")
	_, err = framework.ScrapeMetric(ctx, ctl.MetricsURL, `flowforge_jobs{phase="Running"}`)
	require.NoError(t, err)
}

// TestRemoveFinalizerFromAStaleCopy checks, on the real API server, that
// the export's finalizer patch removes its finalizer, and only it, from a
// stale cached copy: one whose finalizer list moved (the Job controller
// removed its own) and whose other fields changed meanwhile.
func TestRemoveFinalizerFromAStaleCopy(t *testing.T) {
	ctx := context.Background()
	ns := framework.Namespace(t, clientset, "finalizers", nil)
	const ours = "flowforge.io/export"
	c, err := client.New(testCluster.RESTConfig, client.Options{})
	require.NoError(t, err)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fin", Namespace: ns, Finalizers: []string{"example.com/gone", ours, "example.com/other"}}}
	require.NoError(t, c.Create(ctx, cm))
	t.Cleanup(func() {
		_ = c.Patch(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fin", Namespace: ns}}, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))
	})
	stale := cm.DeepCopy()

	fresh := cm.DeepCopy()
	fresh.Finalizers = []string{ours, "example.com/other"}
	fresh.Data = map[string]string{"k": "v"}
	require.NoError(t, c.Update(ctx, fresh))

	require.NoError(t, ffcontroller.RemoveFinalizer(ctx, c, stale, ours))
	var got corev1.ConfigMap
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(cm), &got))
	assert.Equal(t, []string{"example.com/other"}, got.Finalizers, "only ours is removed")
	assert.Equal(t, "v", got.Data["k"], "the other change is kept")

	require.NoError(t, ffcontroller.RemoveFinalizer(ctx, c, stale, ours), "removing it again is a no-op")
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(cm), &got))
	assert.Equal(t, []string{"example.com/other"}, got.Finalizers)
}
