package jobs

import (
	"context"
	"errors"
	"io"
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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const jobUID = types.UID("uid-w")

func logJob(opts ...jobOpt) *batchv1.Job {
	j := flowJob("w", opts...)
	j.UID = jobUID
	return j
}

// testPod is a pod of the job; state is "waiting", "running" or "terminated".
func testPod(name string, created time.Time, phase corev1.PodPhase, state string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: testNS, CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{batchv1.ControllerUidLabel: string(jobUID)},
		},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "worker"}}},
		Status: corev1.PodStatus{Phase: phase},
	}
	cs := corev1.ContainerStatus{Name: "worker"}
	switch state {
	case "waiting":
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}
	case "running":
		cs.State.Running = &corev1.ContainerStateRunning{}
	case "terminated":
		cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1}
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	return p
}

// logCall records one request for a pod's logs.
type logCall struct {
	pod  string
	opts corev1.PodLogOptions
	w    *io.PipeWriter // follow: the test writes the stream
}

// logServer plays the kubelet's log endpoint.
type logServer struct {
	mu      sync.Mutex
	content map[string]string // non-follow answers, by pod
	fail    []error           // errors for the next calls
	calls   []logCall
	opened  chan logCall
}

func newLogServer() *logServer {
	return &logServer{content: map[string]string{}, opened: make(chan logCall, 100)}
}

func (s *logServer) open(ctx context.Context, ns, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	s.mu.Lock()
	call := logCall{pod: pod, opts: *opts}
	s.calls = append(s.calls, call)
	if len(s.fail) > 0 {
		err := s.fail[0]
		s.fail = s.fail[1:]
		s.mu.Unlock()
		return nil, err
	}
	content, ok := s.content[pod]
	s.mu.Unlock()
	if !opts.Follow {
		if !ok {
			return nil, apierrors.NewNotFound(corev1.Resource("pods"), pod)
		}
		return io.NopCloser(strings.NewReader(content)), nil
	}
	pr, pw := io.Pipe()
	go func() {
		<-ctx.Done()
		_ = pr.CloseWithError(ctx.Err())
	}()
	call.w = pw
	s.opened <- call
	return pr, nil
}

func (s *logServer) callList() []logCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]logCall(nil), s.calls...)
}

func newLogClient(t *testing.T, cs *fake.Clientset, change ...func(*Options)) (*Client, *logServer) {
	t.Helper()
	c := newTestClient(t, cs, change...)
	s := newLogServer()
	c.openLogs = s.open
	return c, s
}

func TestLogsSoFar(t *testing.T) {
	p1 := testPod("claude-job-w-aaaaa", t0, corev1.PodFailed, "terminated")
	p2 := testPod("claude-job-w-bbbbb", t1, corev1.PodFailed, "waiting")
	p3 := testPod("claude-job-w-ccccc", t2, corev1.PodRunning, "running")
	cs := fake.NewClientset(logJob(), p3, p1, p2)
	c, s := newLogClient(t, cs)
	s.content[p1.Name] = "first try\nfailed\n"
	s.content[p3.Name] = "second try\n"

	t.Run("the latest attempt", func(t *testing.T) {
		var out strings.Builder
		require.NoError(t, c.Logs(context.Background(), "w", LogOptions{}, &out))
		assert.Equal(t, "second try\n", out.String(), "no header for a single attempt")
	})
	t.Run("every attempt, oldest first", func(t *testing.T) {
		var out strings.Builder
		require.NoError(t, c.Logs(context.Background(), "w", LogOptions{AllAttempts: true}, &out))
		assert.Equal(t, "==> attempt 1 (pod claude-job-w-aaaaa) <==\nfirst try\nfailed\n"+
			"==> attempt 2 (pod claude-job-w-bbbbb) <==\n(no output: the container did not start: Failed, ImagePullBackOff)\n"+
			"==> attempt 3 (pod claude-job-w-ccccc) <==\nsecond try\n", out.String())
	})
	t.Run("options reach the kubelet", func(t *testing.T) {
		since := t1
		require.NoError(t, c.Logs(context.Background(), "w", LogOptions{Container: "worker", Since: &since, Timestamps: true}, io.Discard))
		calls := s.callList()
		last := calls[len(calls)-1]
		assert.Equal(t, p3.Name, last.pod)
		assert.Equal(t, "worker", last.opts.Container)
		assert.True(t, last.opts.Timestamps)
		assert.False(t, last.opts.Follow)
		assert.Equal(t, since, last.opts.SinceTime.Time)
	})
}

func TestLogsSoFarErrors(t *testing.T) {
	t.Run("no pods yet", func(t *testing.T) {
		c, _ := newLogClient(t, fake.NewClientset(logJob()))
		err := c.Logs(context.Background(), "w", LogOptions{}, io.Discard)
		require.ErrorContains(t, err, "logs of job w: it has no pods yet (Pending)")
	})
	t.Run("the pod has not started", func(t *testing.T) {
		c, _ := newLogClient(t, fake.NewClientset(logJob(), testPod("claude-job-w-aaaaa", t0, corev1.PodPending, "waiting")))
		err := c.Logs(context.Background(), "w", LogOptions{}, io.Discard)
		require.ErrorContains(t, err, "pod claude-job-w-aaaaa has not started yet (Pending, ImagePullBackOff)")
	})
	t.Run("no such job", func(t *testing.T) {
		c, _ := newLogClient(t, fake.NewClientset())
		require.ErrorIs(t, c.Logs(context.Background(), "w", LogOptions{}, io.Discard), ErrNotFound)
	})
	t.Run("transient errors opening the stream are retried", func(t *testing.T) {
		p := testPod("claude-job-w-aaaaa", t0, corev1.PodSucceeded, "terminated")
		c, s := newLogClient(t, fake.NewClientset(logJob(), p))
		s.content[p.Name] = "ok\n"
		s.fail = []error{apierrors.NewServiceUnavailable("kubelet busy")}
		var out strings.Builder
		require.NoError(t, c.Logs(context.Background(), "w", LogOptions{}, &out))
		assert.Equal(t, "ok\n", out.String())
	})
	t.Run("a permanent error is returned", func(t *testing.T) {
		p := testPod("claude-job-w-aaaaa", t0, corev1.PodSucceeded, "terminated")
		c, s := newLogClient(t, fake.NewClientset(logJob(), p))
		s.fail = []error{apierrors.NewForbidden(corev1.Resource("pods/log"), p.Name, errors.New("no"))}
		err := c.Logs(context.Background(), "w", LogOptions{}, io.Discard)
		assert.True(t, apierrors.IsForbidden(err))
	})
}

// followFixture scripts the pod and job watches of a follow.
type followFixture struct {
	cs   *fake.Clientset
	c    *Client
	s    *logServer
	pods *watch.FakeWatcher
	jobs *watch.FakeWatcher
	out  *syncBuffer
	errc chan error
}

func startFollow(t *testing.T, ctx context.Context, opts LogOptions, job *batchv1.Job, pods ...*corev1.Pod) *followFixture {
	t.Helper()
	cs := fake.NewClientset()
	require.NoError(t, cs.Tracker().Add(job))
	for _, p := range pods {
		require.NoError(t, cs.Tracker().Add(p))
	}
	f := &followFixture{cs: cs, pods: watch.NewFake(), jobs: watch.NewFake(), out: &syncBuffer{}, errc: make(chan error, 1)}
	served := map[string]bool{}
	var mu sync.Mutex
	for resource, w := range map[string]*watch.FakeWatcher{"pods": f.pods, "jobs": f.jobs} {
		cs.PrependWatchReactor(resource, func(k8stesting.Action) (bool, watch.Interface, error) {
			mu.Lock()
			defer mu.Unlock()
			if served[resource] {
				return true, watch.NewFake(), nil // a later reconnect: silent
			}
			served[resource] = true
			return true, w, nil
		})
	}
	f.c, f.s = newLogClient(t, cs, func(o *Options) { o.LogDrain = 100 * time.Millisecond })
	go func() { f.errc <- f.c.Logs(ctx, "w", opts, f.out) }()
	return f
}

func (f *followFixture) nextStream(t *testing.T) logCall {
	t.Helper()
	select {
	case call := <-f.s.opened:
		return call
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no log stream was opened", "output so far: %q", f.out)
		return logCall{}
	}
}

func (f *followFixture) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.errc:
		return err
	case <-time.After(10 * time.Second):
		require.FailNow(t, "Logs did not return", "output so far: %q", f.out)
		return nil
	}
}

func stamp(ts time.Time, text string) string { return ts.Format(time.RFC3339Nano) + " " + text + "\n" }

func write(t *testing.T, w io.Writer, lines ...string) {
	t.Helper()
	for _, l := range lines {
		_, err := io.WriteString(w, l)
		require.NoError(t, err)
	}
}

func TestLogsFollowResumesAndStopsAfterThePodEnds(t *testing.T) {
	pod := testPod("claude-job-w-aaaaa", t0, corev1.PodRunning, "running")
	f := startFollow(t, context.Background(), LogOptions{Follow: true}, logJob(withCounts(1, 1, 0, 0)), pod)
	ts1, ts2, ts3 := t0.Add(100*time.Millisecond), t0.Add(200*time.Millisecond), t0.Add(1300*time.Millisecond)

	first := f.nextStream(t)
	assert.True(t, first.opts.Follow)
	assert.True(t, first.opts.Timestamps, "requested internally, to resume")
	assert.Nil(t, first.opts.SinceTime)
	write(t, first.w, stamp(ts1, "line 1"), stamp(ts2, "line 2"))
	waitForText(t, f.out, "line 2\n")
	require.NoError(t, first.w.Close()) // the stream breaks while the pod runs

	second := f.nextStream(t)
	require.NotNil(t, second.opts.SinceTime)
	assert.Equal(t, ts2, second.opts.SinceTime.Time, "resumed from the last line seen")
	// The server repeats what it sent since that (second-precision) time.
	write(t, second.w, stamp(ts1, "line 1"), stamp(ts2, "line 2"), stamp(ts3, "line 3"))
	waitForText(t, f.out, "line 3\n")

	ended := pod.DeepCopy()
	ended.Status.Phase = corev1.PodSucceeded
	ended.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
	f.pods.Modify(ended)
	// kwok keeps the stream open: what comes during the drain is kept.
	write(t, second.w, stamp(ts3.Add(time.Millisecond), "line 4"))

	require.NoError(t, f.result(t), "Logs returns once the drain is over, though the stream never closed")
	assert.Equal(t, "line 1\nline 2\nline 3\nline 4\n", f.out.String(), "no line lost or repeated; timestamps stripped")
}

func TestLogsFollowKeepsTimestampsWhenAsked(t *testing.T) {
	pod := testPod("claude-job-w-aaaaa", t0, corev1.PodRunning, "running")
	f := startFollow(t, context.Background(), LogOptions{Follow: true, Timestamps: true}, logJob(withCounts(1, 1, 0, 0)), pod)
	s := f.nextStream(t)
	write(t, s.w, stamp(t1, "hello"), "no timestamp here\n")
	require.NoError(t, s.w.Close())
	ended := pod.DeepCopy()
	ended.Status.Phase = corev1.PodFailed
	f.pods.Modify(ended)
	// Depending on timing the stream is reopened once more before the pod
	// is seen to have ended: answer it as a real kubelet would.
	go func() {
		for call := range f.s.opened {
			_ = call.w.Close()
		}
	}()
	require.NoError(t, f.result(t))
	assert.Equal(t, stamp(t1, "hello")+"no timestamp here\n", f.out.String())
}

func TestLogsFollowEveryAttempt(t *testing.T) {
	p1 := testPod("claude-job-w-aaaaa", t0, corev1.PodFailed, "terminated")
	running := logJob(withCounts(0, 0, 0, 1))
	f := startFollow(t, context.Background(), LogOptions{Follow: true, AllAttempts: true}, running, p1)

	s1 := f.nextStream(t)
	assert.Equal(t, p1.Name, s1.pod)
	write(t, s1.w, stamp(t0, "attempt one"))
	require.NoError(t, s1.w.Close()) // a real kubelet closes the stream of an ended container
	waitForText(t, f.out, "attempt one\n")

	// The Job retries: a new pod appears, pending, then running.
	p2 := testPod("claude-job-w-bbbbb", t1, corev1.PodPending, "waiting")
	f.pods.Add(p2)
	p2 = p2.DeepCopy()
	p2.Status.Phase = corev1.PodRunning
	p2.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	f.pods.Modify(p2)

	s2 := f.nextStream(t)
	assert.Equal(t, p2.Name, s2.pod)
	write(t, s2.w, stamp(t1, "attempt two"))
	p2 = p2.DeepCopy()
	p2.Status.Phase = corev1.PodSucceeded
	f.pods.Modify(p2)
	require.NoError(t, s2.w.Close())
	f.jobs.Modify(logJob(withCounts(0, 0, 1, 1), withConditions(cond(batchv1.JobComplete, "CompletionsReached", t2))))

	require.NoError(t, f.result(t))
	assert.Equal(t, "==> attempt 1 (pod claude-job-w-aaaaa) <==\nattempt one\n==> attempt 2 (pod claude-job-w-bbbbb) <==\nattempt two\n", f.out.String())
}

func TestLogsFollowEdgeCases(t *testing.T) {
	t.Run("a job that ends without a pod", func(t *testing.T) {
		f := startFollow(t, context.Background(), LogOptions{Follow: true}, logJob())
		f.jobs.Modify(logJob(withConditions(cond(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded, t2))))
		require.NoError(t, f.result(t))
		assert.Empty(t, f.out.String())
	})
	t.Run("an attempt that never started", func(t *testing.T) {
		p := testPod("claude-job-w-aaaaa", t0, corev1.PodFailed, "waiting")
		f := startFollow(t, context.Background(), LogOptions{Follow: true, AllAttempts: true}, logJob(withConditions(cond(batchv1.JobFailed, "BackoffLimitExceeded", t2))), p)
		require.NoError(t, f.result(t))
		assert.Equal(t, "==> attempt 1 (pod claude-job-w-aaaaa) <==\n(no output: the container did not start: Failed, ImagePullBackOff)\n", f.out.String())
	})
	t.Run("waits for the pod to start, through kubelet errors", func(t *testing.T) {
		p := testPod("claude-job-w-aaaaa", t0, corev1.PodPending, "waiting")
		f := startFollow(t, context.Background(), LogOptions{Follow: true}, logJob(), p)
		f.s.mu.Lock()
		f.s.fail = []error{apierrors.NewBadRequest("container worker is waiting to start: ContainerCreating")}
		f.s.mu.Unlock()
		started := p.DeepCopy()
		started.Status.Phase = corev1.PodRunning
		started.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		f.pods.Modify(started)
		s := f.nextStream(t)
		write(t, s.w, stamp(t1, "up"))
		f.pods.Delete(started)
		require.NoError(t, f.result(t))
		assert.Equal(t, "up\n", f.out.String())
		assert.Len(t, f.s.callList(), 2, "the BadRequest was retried")
	})
	t.Run("the caller's context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p := testPod("claude-job-w-aaaaa", t0, corev1.PodRunning, "running")
		f := startFollow(t, ctx, LogOptions{Follow: true}, logJob(), p)
		s := f.nextStream(t)
		write(t, s.w, stamp(t1, "working"))
		waitForText(t, f.out, "working")
		cancel()
		require.ErrorIs(t, f.result(t), context.Canceled)
	})
	t.Run("a permanent stream error", func(t *testing.T) {
		p := testPod("claude-job-w-aaaaa", t0, corev1.PodRunning, "running")
		f := startFollow(t, context.Background(), LogOptions{Follow: true}, logJob(), p)
		s := f.nextStream(t)
		require.NoError(t, s.w.CloseWithError(apierrors.NewForbidden(corev1.Resource("pods/log"), p.Name, errors.New("revoked"))))
		err := f.result(t)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "revoked")
	})
	t.Run("the job is deleted", func(t *testing.T) {
		p := testPod("claude-job-w-aaaaa", t0, corev1.PodRunning, "running")
		f := startFollow(t, context.Background(), LogOptions{Follow: true}, logJob(), p)
		s := f.nextStream(t)
		write(t, s.w, stamp(t1, "bye"))
		f.jobs.Delete(logJob())
		gone := p.DeepCopy()
		gone.Status.Phase = corev1.PodFailed
		f.pods.Delete(gone)
		require.NoError(t, f.result(t))
		assert.Equal(t, "bye\n", f.out.String())
	})
	t.Run("the pod watch expires and the relist finds the pod gone", func(t *testing.T) {
		p := testPod("claude-job-w-aaaaa", t0, corev1.PodRunning, "running")
		f := startFollow(t, context.Background(), LogOptions{Follow: true}, logJob(), p)
		s := f.nextStream(t)
		write(t, s.w, stamp(t1, "last words"))
		require.NoError(t, f.cs.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), testNS, p.Name))
		f.pods.Error(expired())
		require.NoError(t, f.result(t), "a pod missing from the new list was deleted: drain, then stop")
		assert.Equal(t, "last words\n", f.out.String())
	})
	t.Run("a failing writer", func(t *testing.T) {
		p := testPod("claude-job-w-aaaaa", t0, corev1.PodRunning, "running")
		cs := fake.NewClientset(logJob(), p)
		c, s := newLogClient(t, cs)
		errc := make(chan error, 1)
		go func() { errc <- c.Logs(context.Background(), "w", LogOptions{Follow: true}, failingWriter{}) }()
		call := <-s.opened
		go write(t, call.w, stamp(t1, "x"))
		err := <-errc
		require.Error(t, err)
		assert.Contains(t, err.Error(), "write logs: disk full")
	})
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
