package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowforge/flowforge/podlog"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/history/store"
	"github.com/flowforge/flowforge/internal/metrics"
)

// lockedBuffer is a concurrency-safe sink target.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines(t *testing.T) []Line {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Line
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var line Line
		require.NoError(t, json.Unmarshal([]byte(l), &line))
		out = append(out, line)
	}
	return out
}

// streamingLogs serves a follow stream that stays open until ctx ends,
// like kwok's kubelet, after honouring SinceTime.
type streamingLogs struct{ text string }

func (s streamingLogs) Stream(ctx context.Context, _, _ string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	var kept []string
	for _, l := range strings.SplitAfter(s.text, "\n") {
		if ts, _, ok := podlog.SplitTimestamp(strings.TrimSpace(l)); ok && (opts.SinceTime == nil || !ts.Before(opts.SinceTime.Time)) {
			kept = append(kept, l)
		}
	}
	r, w := io.Pipe()
	go func() {
		_, _ = w.Write([]byte(strings.Join(kept, "")))
		<-ctx.Done()
		_ = w.CloseWithError(ctx.Err())
	}()
	return r, nil
}

func TestShipperFollowsAndResumesWithoutRepeating(t *testing.T) {
	store, err := store.OpenSQLite(context.Background(), ":memory:")
	require.NoError(t, err)
	defer store.Close() //nolint:errcheck // test
	job := newJob("ship1")
	pod := newPod(job, "ship1-a", corev1.PodRunning, nil, now)
	out := &lockedBuffer{}
	text := "2026-11-27T12:00:01.000000001Z one\n2026-11-27T12:00:01.000000002Z two\n2026-11-27T12:00:02.5Z three\n"
	bytesBefore := testutil.ToFloat64(metrics.LogBytesShipped)

	run := func() {
		s := &Shipper{Logs: streamingLogs{text: text}, Sink: NewJSONSink(out), Store: store, Clock: clock.RealClock{}, Log: logr.Discard()}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = s.Start(ctx); close(done) }()
		require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
			s.Follow(pod, Tags{JobID: "ship1", UserID: "alice", Attempt: 1})
			return s.Following(pod.UID), nil
		}))
		require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
			until, _, err := store.Shipped(context.Background(), string(pod.UID), "worker")
			return err == nil && until.Equal(time.Date(2026, 11, 27, 12, 0, 2, 500000000, time.UTC)), nil
		}))
		s.Stop(pod.UID)
		assert.False(t, s.Following(pod.UID))
		cancel()
		<-done
	}
	run()
	run() // a restarted controller resumes from the checkpoint

	lines := out.lines(t)
	require.Len(t, lines, 3, "every line once, even across a restart")
	assert.Equal(t, []string{"one", "two", "three"}, []string{lines[0].Message, lines[1].Message, lines[2].Message})
	assert.Equal(t, Line{Time: lines[0].Time, JobID: "ship1", UserID: "alice", Namespace: "agents", Pod: "ship1-a", Container: "worker", Attempt: 1, Message: "one"}, lines[0])
	assert.Equal(t, bytesBefore+float64(len("one\ntwo\nthree\n")), testutil.ToFloat64(metrics.LogBytesShipped))
}

func TestCatchUpShipsOnlyTheRest(t *testing.T) {
	store, err := store.OpenSQLite(context.Background(), ":memory:")
	require.NoError(t, err)
	defer store.Close() //nolint:errcheck // test
	pod := newPod(newJob("c1"), "c1-a", corev1.PodSucceeded, ptr.To[int32](0), now)
	require.NoError(t, store.Checkpoint(context.Background(), string(pod.UID), "worker", time.Date(2026, 11, 27, 12, 0, 1, 0, time.UTC), 4))
	out := &lockedBuffer{}
	s := &Shipper{Sink: NewJSONSink(out), Store: store, Clock: clocktesting.NewFakeClock(now), Log: logr.Discard()}
	require.NoError(t, s.CatchUp(context.Background(), pod, "worker", Tags{JobID: "c1"},
		strings.NewReader("2026-11-27T12:00:01Z seen\n2026-11-27T12:00:03Z new\nno timestamp\n")))
	lines := out.lines(t)
	require.Len(t, lines, 1)
	assert.Equal(t, "new", lines[0].Message)
	s.Follow(pod, Tags{})
	assert.False(t, s.Following(pod.UID), "a stopped shipper follows nothing")
	s.Stop(pod.UID) // nothing to stop
}

func TestStateCollector(t *testing.T) {
	running := newJob("s1", func(j *batchv1.Job) { j.Status.Active, j.Status.Ready = 1, ptr.To[int32](1) })
	done := newJob("s2", finishedJob(batchv1.JobComplete, "CompletionsReached"))
	released := newJob("s3", finishedJob(batchv1.JobComplete, "CompletionsReached"), func(j *batchv1.Job) { j.Finalizers = nil })
	e := newEnv(t, running, done, released)
	c := NewStateCollector(e.client, e.clock, "flowforge.io/export")
	expected := `
# HELP flowforge_jobs FlowForge Jobs in the cluster, by phase.
# TYPE flowforge_jobs gauge
flowforge_jobs{phase="Cancelled"} 0
flowforge_jobs{phase="Cancelling"} 0
flowforge_jobs{phase="Failed"} 0
flowforge_jobs{phase="Pending"} 0
flowforge_jobs{phase="Running"} 1
flowforge_jobs{phase="Succeeded"} 2
flowforge_jobs{phase="TimedOut"} 0
# HELP flowforge_jobs_awaiting_export Finished Jobs whose export has not completed; they are kept by the export finalizer.
# TYPE flowforge_jobs_awaiting_export gauge
flowforge_jobs_awaiting_export 1
# HELP flowforge_export_oldest_pending_seconds How long the oldest finished Job has waited for its export (0 if none).
# TYPE flowforge_export_oldest_pending_seconds gauge
flowforge_export_oldest_pending_seconds 10
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(expected)))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// flakySink refuses the line at position failAt once, then accepts.
type flakySink struct {
	next   Sink
	failAt int
	seen   int
}

func (f *flakySink) Ship(l Line) error {
	f.seen++
	if f.seen == f.failAt {
		return errors.New("sink unavailable")
	}
	return f.next.Ship(l)
}

func TestShipReportsSinkFailureAndRetryShipsTheRest(t *testing.T) {
	ctx := context.Background()
	store, err := store.OpenSQLite(ctx, ":memory:")
	require.NoError(t, err)
	defer store.Close() //nolint:errcheck // test
	pod := newPod(newJob("f1"), "f1-a", corev1.PodSucceeded, ptr.To[int32](0), now)
	out := &lockedBuffer{}
	sink := &flakySink{next: NewJSONSink(out), failAt: 2}
	s := &Shipper{Sink: sink, Store: store, Clock: clocktesting.NewFakeClock(now), Log: logr.Discard()}
	log := "2026-11-27T12:00:01Z one\n2026-11-27T12:00:02Z two\n2026-11-27T12:00:03Z three\n"
	failuresBefore := testutil.ToFloat64(metrics.LogShipFailures)

	err = s.CatchUp(ctx, pod, "worker", Tags{JobID: "f1"}, strings.NewReader(log))
	require.ErrorContains(t, err, "sink unavailable", "the sink's error reaches the caller")
	require.ErrorContains(t, err, "f1-a/worker")
	assert.Equal(t, failuresBefore+1, testutil.ToFloat64(metrics.LogShipFailures))
	until, _, err := store.Shipped(ctx, string(pod.UID), "worker")
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 11, 27, 12, 0, 1, 0, time.UTC), until.UTC(), "the checkpoint stops before the refused line")

	require.NoError(t, s.CatchUp(ctx, pod, "worker", Tags{JobID: "f1"}, strings.NewReader(log)), "the retry succeeds")
	lines := out.lines(t)
	msgs := make([]string, 0, len(lines))
	for _, l := range lines {
		msgs = append(msgs, l.Message)
	}
	assert.Equal(t, []string{"one", "two", "three"}, msgs, "every line once: the refused one on the retry")
}
