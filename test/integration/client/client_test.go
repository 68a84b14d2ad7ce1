package client

import (
	"context"
	"fmt"
	"net"
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
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/jobs"
	"github.com/flowforge/flowforge/templates"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// newClient is the Jobs client as the CLI builds it, on the test cluster.
func newClient(t *testing.T, ns string) *jobs.Client {
	t.Helper()
	c, err := jobs.NewForConfig(testCluster.RESTConfig, nil, jobs.Options{Namespace: ns})
	require.NoError(t, err)
	return c
}

func request(id string, podAnnotations map[string]string) templates.Request {
	return templates.Request{
		ID:             id,
		UserID:         "u-42",
		Repository:     "acme/widgets",
		RepositoryURL:  "https://github.com/acme/widgets.git",
		Branch:         "feature/login",
		Task:           "Fix the login redirect and add a test. Don't touch $(HOME).",
		Timeout:        10 * time.Minute,
		Profile:        "small",
		PodAnnotations: podAnnotations,
	}
}

// testContext bounds a test's calls.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSubmitIsHardenedAndWatchedToSuccess(t *testing.T) {
	ns := framework.Namespace(t, clientset, "client", nil)
	c := newClient(t, ns)
	ctx := testContext(t, 2*time.Minute)

	job, created, err := c.Submit(ctx, request("hardened", map[string]string{localcluster.AnnotationDuration: "2s"}))
	require.NoError(t, err)
	require.True(t, created)

	// What came back is the stored Job, after the webhook.
	pod := job.Spec.Template.Spec
	require.NotNil(t, pod.RuntimeClassName)
	assert.Equal(t, "gvisor", *pod.RuntimeClassName)
	assert.Equal(t, "flowforge-worker", pod.PriorityClassName)
	assert.NotEmpty(t, job.Annotations[contract.AnnotationPolicyRevision])
	require.NotNil(t, job.Spec.ActiveDeadlineSeconds)
	assert.Equal(t, int64(600), *job.Spec.ActiveDeadlineSeconds, "from the timeout annotation")
	assert.Equal(t, "1", pod.Containers[0].Resources.Limits.Cpu().String(), "the small profile")
	assert.Contains(t, job.Finalizers, "flowforge.io/export")
	assert.Equal(t, "u-42", job.Spec.Template.Labels[contract.LabelUserID])

	var mu sync.Mutex
	var phases []contract.Phase
	final, err := c.Watch(ctx, "hardened", func(st contract.Status) error {
		mu.Lock()
		defer mu.Unlock()
		if len(phases) == 0 || phases[len(phases)-1] != st.Phase {
			phases = append(phases, st.Phase)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseSucceeded, final.Phase)
	assert.Equal(t, contract.PhaseSucceeded, phases[len(phases)-1])
	assert.Contains(t, phases, contract.PhaseRunning, "the watch saw the pod run: %v", phases)
	assert.Equal(t, "hardened", final.ID)
	assert.Equal(t, "feature/login", final.Branch)
	assert.Equal(t, int32(1), final.Succeeded)
	assert.NotNil(t, final.Finished)
	assert.Equal(t, job.Annotations[contract.AnnotationPolicyRevision], final.PolicyRevision)

	list, err := c.List(ctx, jobs.ListOptions{UserID: "u-42", Phase: contract.PhaseSucceeded})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "claude-job-hardened", list[0].Name)

	var out strings.Builder
	require.NoError(t, c.Logs(ctx, "hardened", jobs.LogOptions{}, &out), "logs of a finished pod")
}

// syncBuffer is a writer the test reads while Logs writes to it.
type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

func TestLogsFollowWhileThePodRuns(t *testing.T) {
	ns := framework.Namespace(t, clientset, "client", nil)
	c := newClient(t, ns)
	ctx := testContext(t, 2*time.Minute)
	lines := []string{"cloning acme/widgets", "reading the task", "editing login.go", "running the tests", "pushing feature/login"}
	_, _, err := c.Submit(ctx, request("follow", map[string]string{
		localcluster.AnnotationLogs:        strings.Join(lines, "\n"),
		localcluster.AnnotationLogInterval: "700ms",
		localcluster.AnnotationDuration:    "6s",
	}))
	require.NoError(t, err)

	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- c.Logs(ctx, "follow", jobs.LogOptions{Follow: true}, out) }()

	require.Eventually(t, func() bool { return strings.Contains(out.String(), lines[0]) }, time.Minute, 50*time.Millisecond,
		"the first line arrives")
	pods, err := framework.JobPods(ctx, clientset, ns, "claude-job-follow")
	require.NoError(t, err)
	require.Len(t, pods, 1)
	assert.Equal(t, corev1.PodRunning, pods[0].Status.Phase, "lines arrive while the pod is still running")
	assert.NotContains(t, out.String(), lines[len(lines)-1], "and before it has printed everything")

	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatalf("Logs did not return after the pod ended; output so far: %q", out.String())
	}
	pods, err = framework.JobPods(ctx, clientset, ns, "claude-job-follow")
	require.NoError(t, err)
	assert.Equal(t, corev1.PodSucceeded, pods[0].Status.Phase, "the call returned after the pod ended")
	assert.Equal(t, strings.Join(lines, "\n")+"\n", out.String(), "every line once, in order, without timestamps")

	var again strings.Builder
	require.NoError(t, c.Logs(ctx, "follow", jobs.LogOptions{Timestamps: true}, &again))
	assert.Equal(t, len(lines), strings.Count(again.String(), "\n"))
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\S+ cloning acme/widgets\n`, again.String(), "timestamps when asked")
}

func TestResubmitIsIdempotent(t *testing.T) {
	ns := framework.Namespace(t, clientset, "client", nil)
	c := newClient(t, ns)
	ctx := testContext(t, time.Minute)
	req := request("again", map[string]string{localcluster.AnnotationRun: "forever"})

	first, created, err := c.Submit(ctx, req)
	require.NoError(t, err)
	require.True(t, created)
	second, created, err := c.Submit(ctx, req)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, first.UID, second.UID)
	assert.Equal(t, first.Name, second.Name)

	list, err := clientset.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, list.Items, 1)
}

func TestConflictingResubmitIsRefused(t *testing.T) {
	ns := framework.Namespace(t, clientset, "client", nil)
	c := newClient(t, ns)
	ctx := testContext(t, time.Minute)
	req := request("taken", map[string]string{localcluster.AnnotationRun: "forever"})
	first, _, err := c.Submit(ctx, req)
	require.NoError(t, err)

	other := req
	other.Task = "Rewrite the whole app in Rust."
	job, created, err := c.Submit(ctx, other)
	require.ErrorIs(t, err, jobs.ErrConflict)
	assert.Nil(t, job)
	assert.False(t, created)
	assert.Contains(t, err.Error(), "claude-job-taken in namespace "+ns)
	assert.Contains(t, err.Error(), "another request already uses this job id")
	assert.Contains(t, err.Error(), "the task")

	other = req
	other.Branch = "main"
	_, _, err = c.Submit(ctx, other)
	require.ErrorIs(t, err, jobs.ErrConflict)
	assert.Contains(t, err.Error(), `branch "feature/login", not "main"`)

	stored, err := c.Get(ctx, "taken")
	require.NoError(t, err)
	assert.Equal(t, first.UID, stored.UID, "the first Job is untouched")
}

func TestLargeTaskGoesInAnOwnedConfigMap(t *testing.T) {
	ns := framework.Namespace(t, clientset, "client", nil)
	c := newClient(t, ns)
	ctx := testContext(t, 2*time.Minute)
	req := request("large", map[string]string{localcluster.AnnotationDuration: "1s"})
	req.Task = strings.Repeat("Migrate every handler to the new router, one package at a time.\n", 800) // ~52 KB

	job, created, err := c.Submit(ctx, req)
	require.NoError(t, err, "the webhook admits the read-only ConfigMap volume")
	require.True(t, created)
	cm, err := clientset.CoreV1().ConfigMaps(ns).Get(ctx, contract.TaskConfigMapName("large"), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, req.Task, cm.Data[contract.TaskConfigMapKey])
	require.Len(t, cm.OwnerReferences, 1)
	assert.Equal(t, job.UID, cm.OwnerReferences[0].UID)

	final, err := c.Watch(ctx, "large", func(contract.Status) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseSucceeded, final.Phase)

	// Deleting the Job (once the export finalizer is released, as the
	// controller would) lets the garbage collector delete the ConfigMap.
	require.NoError(t, c.Delete(ctx, "large", metav1.DeletePropagationBackground))
	framework.ReleaseFinalizers(ctx, clientset, ns)
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		framework.ReleaseFinalizers(ctx, clientset, ns)
		_, err := clientset.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}), "the task ConfigMap goes with its Job")
	_, err = c.Get(ctx, "large")
	require.ErrorIs(t, err, jobs.ErrNotFound)
}

func TestCancelIsRecordedOnce(t *testing.T) {
	ns := framework.Namespace(t, clientset, "client", nil)
	c := newClient(t, ns)
	ctx := testContext(t, time.Minute)
	_, _, err := c.Submit(ctx, request("cancel", map[string]string{localcluster.AnnotationRun: "forever"}))
	require.NoError(t, err)

	job, err := c.Cancel(ctx, "cancel", "alice", "wrong branch")
	require.NoError(t, err)
	at := job.Annotations[contract.AnnotationCancelRequestedAt]
	_, err = time.Parse(time.RFC3339, at)
	require.NoError(t, err)

	again, err := c.Cancel(ctx, "cancel", "bob", "")
	require.NoError(t, err)
	assert.Equal(t, "alice", again.Annotations[contract.AnnotationCancelRequestedBy])
	assert.Equal(t, "wrong branch", again.Annotations[contract.AnnotationCancelReason])
	assert.Equal(t, at, again.Annotations[contract.AnnotationCancelRequestedAt])

	st, err := c.Status(ctx, "cancel")
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseCancelling, st.Phase, "until the controller acts on it")
	assert.Equal(t, "cancelled by alice: wrong branch", st.Message)
}

func TestUnreachableClusterFailsClearly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := rest.CopyConfig(testCluster.RESTConfig)
	cfg.Host = "https://" + addr
	c, err := jobs.NewForConfig(cfg, nil, jobs.Options{Namespace: "default"})
	require.NoError(t, err)

	for name, call := range map[string]func(context.Context) error{
		"status": func(ctx context.Context) error { _, err := c.Status(ctx, "x"); return err },
		"submit": func(ctx context.Context) error { _, _, err := c.Submit(ctx, request("x", nil)); return err },
		"watch": func(ctx context.Context) error {
			_, err := c.Watch(ctx, "x", func(contract.Status) error { return nil })
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := call(ctx)
			require.Error(t, err)
			require.NoError(t, ctx.Err(), "the client gave up by itself, well before the caller's deadline")
			assert.Contains(t, err.Error(), "the API server at https://"+addr)
			assert.Contains(t, err.Error(), "gave up after 5 attempts")
			assert.Contains(t, err.Error(), "connection refused")
		})
	}
}

// TestWatchSurvivesAPIServerRestartAndExpiry is not parallel: it restarts
// the API server that every test of the package talks to.
//
// A restart is what makes resource versions expire on this cluster: the
// new API server's watch cache starts at the current revision, so a watch
// from any earlier version is answered 410 (on a young cluster etcd has not
// been compacted yet, so older versions are otherwise still served).
func TestWatchSurvivesAPIServerRestartAndExpiry(t *testing.T) {
	ns := framework.Namespace(t, clientset, "client", nil)
	c := newClient(t, ns)
	ctx := testContext(t, 3*time.Minute)
	submitted, _, err := c.Submit(ctx, request("restart", map[string]string{localcluster.AnnotationDuration: "20s"}))
	require.NoError(t, err)
	before := submitted.ResourceVersion

	type result struct {
		final contract.Status
		err   error
	}
	watchInBackground := func(rv string) (<-chan contract.Status, <-chan result) {
		statuses := make(chan contract.Status, 100)
		done := make(chan result, 1)
		go func() {
			final, err := c.WatchFrom(ctx, "restart", rv, func(st contract.Status) error {
				statuses <- st
				return nil
			})
			done <- result{final, err}
		}()
		return statuses, done
	}
	awaitSuccess := func(name string, done <-chan result) {
		t.Helper()
		select {
		case res := <-done:
			require.NoError(t, res.err, name)
			assert.Equal(t, contract.PhaseSucceeded, res.final.Phase, name)
		case <-ctx.Done():
			t.Fatalf("%s did not report the end of the Job", name)
		}
	}

	// A watch that is running when the API server goes away.
	statuses, spanning := watchInBackground("")
	waitForPhase(t, ctx, statuses, contract.PhaseRunning)
	require.NoError(t, testCluster.RestartAPIServer(ctx))
	select {
	case res := <-spanning:
		t.Fatalf("the watch returned during the restart, before the Job ended: %s, %v", res.final.Phase, res.err)
	default:
	}

	// The version from before the restart is now too old for the server...
	selector := fields.OneTermEqualSelector("metadata.name", "claude-job-restart").String()
	w, err := clientset.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{FieldSelector: selector, ResourceVersion: before})
	if err == nil {
		ev := <-w.ResultChan()
		w.Stop()
		require.Equal(t, watch.Error, ev.Type, "the server answers a too-old version with an error event")
		err = apierrors.FromObject(ev.Object)
	}
	require.True(t, apierrors.IsResourceExpired(err) || apierrors.IsGone(err), "410 for resource version %s: %v", before, err)

	// ...but a watch resumed from it lists again and carries on.
	_, resumed := watchInBackground(before)

	awaitSuccess("the watch that spanned the restart", spanning)
	awaitSuccess("the watch resumed from an expired version", resumed)
	job, err := c.Get(ctx, "restart")
	require.NoError(t, err)
	assert.True(t, framework.JobHasCondition(job, batchv1.JobComplete))
}

func waitForPhase(t *testing.T, ctx context.Context, statuses <-chan contract.Status, phase contract.Phase) {
	t.Helper()
	var seen []string
	for {
		select {
		case st := <-statuses:
			seen = append(seen, fmt.Sprint(st.Phase))
			if st.Phase == phase {
				return
			}
			if st.Phase.Terminal() {
				t.Fatalf("the Job ended (%s) before reaching %s: %v", st.Phase, phase, seen)
			}
		case <-ctx.Done():
			t.Fatalf("never saw %s, only %v", phase, seen)
		}
	}
}
