package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/contract"
)

func TestProgressOnATerminal(t *testing.T) {
	now := func() time.Time { return t0 }
	st := contract.Status{ID: "p1", Phase: contract.PhaseRunning, Attempts: 1, Active: 1}
	t.Run("the latest event on the line", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(Streams{Out: &b, IsTerminal: true}, now)
		p.setEvent("Scheduled: Successfully assigned flowforge-jobs/claude-job-p1-x to node-1")
		p.update(st)
		assert.Equal(t, "\r\033[K⠙ p1  Running    attempts 1  active 1  0s  Scheduled: Successfully assigned flowforge-jobs/claude-job-p1-x to node-1", b.String())
	})
	t.Run("cut to the terminal's width", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(Streams{Out: &b, IsTerminal: true, Width: 40}, now)
		p.setEvent("Pulling: Pulling image ghcr.io/flowforge/claude-worker:1.4.0")
		p.update(st)
		line := strings.TrimPrefix(b.String(), "\r\033[K")
		assert.Equal(t, 39, len([]rune(line)), "one column is left for the cursor: %q", line)
		assert.True(t, strings.HasSuffix(line, "…"), line)
	})
	t.Run("tick redraws only once something was shown", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(Streams{Out: &b, IsTerminal: true}, now)
		p.tick()
		assert.Empty(t, b.String())
		p.update(st)
		p.tick()
		assert.Equal(t, 2, strings.Count(b.String(), "\r\033[K"))
		assert.Contains(t, b.String(), "⠹ p1", "the spinner turned")
	})
	t.Run("tick does nothing off a terminal", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(Streams{Out: &b}, now)
		p.update(st)
		before := b.String()
		p.tick()
		assert.Equal(t, before, b.String())
	})
	t.Run("log lines scroll above the status line", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(Streams{Out: &b, IsTerminal: true}, now)
		p.update(st)
		w := p.logWriter()
		_, err := w.Write([]byte("cloning acme/wid"))
		require.NoError(t, err)
		_, err = w.Write([]byte("gets\nrunning tests\npartial"))
		require.NoError(t, err)
		p.done()
		status := "⠙ p1  Running    attempts 1  active 1  0s"
		assert.Equal(t, "\r\033[K"+status+
			"\r\033[K"+"cloning acme/widgets\nrunning tests\n"+"\r\033[K"+status+
			"\r\033[K"+"partial\n"+"\r\033[K"+status+
			"\r\033[K", b.String())
	})
	t.Run("log lines between the plain lines off a terminal", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(Streams{Out: &b}, now)
		p.update(st)
		_, err := p.logWriter().Write([]byte("one\ntwo"))
		require.NoError(t, err)
		p.done()
		assert.Equal(t, "12:00:00  p1  Running    attempts 1  active 1  0s\none\ntwo\n", b.String())
	})
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"too long", 5, "too …"},
		{"⠙ ünïcode", 4, "⠙ ü…"},
		{"any", 0, "any"},
	} {
		assert.Equal(t, tt.want, truncate(tt.s, tt.n), tt.s)
	}
}

func jobEvent(name, objName, reason, message string, at time.Time) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: testNS},
		InvolvedObject: corev1.ObjectReference{Kind: "Job", Name: objName, Namespace: testNS},
		Reason:         reason, Message: message, LastTimestamp: metav1.NewTime(at),
	}
}

func TestLatestEvent(t *testing.T) {
	job := clusterJob(t, testRequest("ev"))
	p := pod(job, "claude-job-ev-a", t0)
	p.Labels[batchv1.JobNameLabel] = job.Name
	old := pod(job, "claude-job-ev-0", t0.Add(-time.Hour))
	old.Labels[batchv1.JobNameLabel] = job.Name
	h := newHarness(t, job, p, old,
		jobEvent("e1", job.Name, "SuccessfulCreate", "Created pod: claude-job-ev-a", t0.Add(-2*time.Minute)),
		jobEvent("e2", "claude-job-ev-a", "Pulling", "Pulling image\n  \"worker:1.4.0\"", t0.Add(-time.Minute)),
		jobEvent("e3", "claude-job-ev-0", "BackOff", "from an older pod, newer", t0),
		jobEvent("e4", "claude-job-other", "Started", "another job's", t0.Add(time.Hour)),
	)
	got, ok := latestEvent(t.Context(), h.cs, testNS, job.Name)
	require.True(t, ok)
	assert.Equal(t, `Pulling: Pulling image "worker:1.4.0"`, got, "the newest of the Job's and its newest pod's, on one line")

	none := newHarness(t, job)
	_, ok = latestEvent(t.Context(), none.cs, testNS, job.Name)
	assert.False(t, ok)
}

func TestEventTime(t *testing.T) {
	created := metav1.NewTime(t0.Add(-time.Hour))
	e := &corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: created}}
	assert.Equal(t, created.Time, eventTime(e))
	e.EventTime = metav1.NewMicroTime(t0.Add(-30 * time.Minute))
	assert.Equal(t, t0.Add(-30*time.Minute), eventTime(e))
	e.LastTimestamp = metav1.NewTime(t0.Add(-20 * time.Minute))
	assert.Equal(t, t0.Add(-20*time.Minute), eventTime(e))
	e.Series = &corev1.EventSeries{LastObservedTime: metav1.NewMicroTime(t0)}
	assert.Equal(t, t0, eventTime(e))
}

// TestWatchShowsTheLatestEvent: on a terminal, the refresher reads the
// Job's events and redraws the line with the latest one while the job
// runs.
func TestWatchShowsTheLatestEvent(t *testing.T) {
	job := clusterJob(t, testRequest("w"))
	h := newHarness(t, job, jobEvent("e1", job.Name, "SuccessfulCreate", "Created pod: claude-job-w-abcde", t0))
	h.terminal = true
	h.refresh = 5 * time.Millisecond
	listed := make(chan struct{}, 10)
	h.cs.PrependReactor("list", "events", func(k8stesting.Action) (bool, kruntime.Object, error) {
		select {
		case listed <- struct{}{}:
		default:
		}
		return false, nil, nil
	})
	h.cs.PrependWatchReactor("jobs", func(k8stesting.Action) (bool, watch.Interface, error) {
		w := watch.NewFake()
		go func() {
			j := job.DeepCopy()
			running(j)
			j.ResourceVersion = "2"
			w.Modify(j)
			// The second read of the events comes after a redraw with the
			// first one's result.
			<-listed
			<-listed
			d := job.DeepCopy()
			succeeded(d)
			d.ResourceVersion = "3"
			w.Modify(d)
		}()
		return true, w, nil
	})
	res := h.run("watch", "w")
	require.Equal(t, ExitOK, res.code, res.err)
	assert.Contains(t, res.out, "w  Running    attempts 1  active 1  0s  SuccessfulCreate: Created pod: claude-job-w-abcde")
	assert.True(t, strings.HasSuffix(res.out, "\r\033[Kjob w Succeeded\n"), res.out)
	assert.Equal(t, 1, strings.Count(res.out, "\n"), "one line redrawn in place, then the outcome: %q", res.out)
}

func finishedPod(job *batchv1.Job) *corev1.Pod {
	p := pod(job, job.Name+"-a", t0.Add(-9*time.Minute))
	p.Status.Phase = corev1.PodSucceeded
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
	return p
}

func TestWatchWithLogs(t *testing.T) {
	job := clusterJob(t, testRequest("w"), succeeded)
	t.Run("plain", func(t *testing.T) {
		h := newHarness(t, job, finishedPod(job))
		res := h.run("watch", "w", "--logs")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "12:00:00  w  Succeeded  attempts 1  active 0  0s\nfake logs\njob w Succeeded\n", res.out)
	})
	t.Run("on a terminal", func(t *testing.T) {
		h := newHarness(t, job, finishedPod(job))
		h.terminal = true
		res := h.run("watch", "w", "--logs")
		require.Equal(t, ExitOK, res.code, res.err)
		status := "⠙ w  Succeeded  attempts 1  active 0  0s"
		assert.Equal(t, "\r\033[K"+status+"\r\033[Kfake logs\n\r\033[K"+status+"\r\033[Kjob w Succeeded\n", res.out)
	})
}

func TestStructuredOutput(t *testing.T) {
	decoders := map[string]func([]byte, any) error{"json": json.Unmarshal, "yaml": func(b []byte, v any) error { return yaml.Unmarshal(b, v) }}
	for format, decode := range decoders {
		t.Run("submit -o "+format, func(t *testing.T) {
			h := newHarness(t)
			h.hardenOnCreate("rev-7")
			res := h.run(submitArgs("s1", "-o", format)...)
			require.Equal(t, ExitOK, res.code, res.err)
			var st contract.Status
			require.NoError(t, decode([]byte(res.out), &st), res.out)
			assert.Equal(t, "s1", st.ID)
			assert.Equal(t, "rev-7", st.PolicyRevision)
			assert.Equal(t, "job s1 created: Job flowforge-jobs/claude-job-s1, policy revision rev-7\n", res.err, "what happened goes to stderr")
		})
		t.Run("submit --wait -o "+format, func(t *testing.T) {
			h := newHarness(t)
			h.hardenOnCreate("rev-7")
			h.scriptWatch("s2", running, succeeded)
			res := h.run(submitArgs("s2", "--wait", "-o", format)...)
			require.Equal(t, ExitOK, res.code, res.err)
			var st contract.Status
			require.NoError(t, decode([]byte(res.out), &st), res.out)
			assert.Equal(t, contract.PhaseSucceeded, st.Phase)
			assert.Contains(t, res.err, "12:00:00  s2  Running", "the progress goes to stderr")
		})
		t.Run("watch -o "+format, func(t *testing.T) {
			h := newHarness(t, clusterJob(t, testRequest("w"), failed))
			res := h.run("watch", "w", "-o", format)
			assert.Equal(t, ExitFailed, res.code, "the exit code is still the outcome")
			var st contract.Status
			require.NoError(t, decode([]byte(res.out), &st), res.out)
			assert.Equal(t, contract.PhaseFailed, st.Phase)
		})
		t.Run("cancel -o "+format, func(t *testing.T) {
			h := newHarness(t, clusterJob(t, testRequest("c1"), running))
			res := h.run("cancel", "c1", "-o", format)
			require.Equal(t, ExitOK, res.code, res.err)
			var st contract.Status
			require.NoError(t, decode([]byte(res.out), &st), res.out)
			assert.Equal(t, contract.PhaseCancelling, st.Phase)
			assert.Equal(t, testUser, st.CancelRequestedBy)
		})
		t.Run("cancel a finished job -o "+format, func(t *testing.T) {
			h := newHarness(t, clusterJob(t, testRequest("c2"), succeeded))
			res := h.run("cancel", "c2", "-o", format)
			require.Equal(t, ExitOK, res.code, res.err)
			var st contract.Status
			require.NoError(t, decode([]byte(res.out), &st), res.out)
			assert.Equal(t, contract.PhaseSucceeded, st.Phase)
		})
		t.Run("logs -o "+format, func(t *testing.T) {
			job := clusterJob(t, testRequest("lg"), succeeded)
			h := newHarness(t, job, finishedPod(job))
			res := h.run("logs", "lg", "-o", format)
			require.Equal(t, ExitOK, res.code, res.err)
			var doc jobLogs
			require.NoError(t, decode([]byte(res.out), &doc), res.out)
			assert.Equal(t, jobLogs{ID: "lg", Source: "cluster", Logs: "fake logs"}, doc)
		})
		t.Run("archived logs -o "+format, func(t *testing.T) {
			srv := newHistoryServer(t)
			seedHistory(t, srv)
			srv.addLogs(t, "uid-gone-1", 3, "claude-job-gone-1-c", "worker", "from the archive\n")
			res := newHarness(t).withHistory(srv).run("logs", "gone-1", "-o", format)
			require.Equal(t, ExitOK, res.code, res.err)
			var doc jobLogs
			require.NoError(t, decode([]byte(res.out), &doc), res.out)
			assert.Equal(t, "history", doc.Source)
			assert.Contains(t, doc.Logs, "from the archive\n")
		})
	}
}

func TestLimitedBuffer(t *testing.T) {
	var b limitedBuffer
	_, err := b.Write(make([]byte, maxStructuredLogs))
	require.NoError(t, err)
	_, err = b.Write([]byte("x"))
	require.EqualError(t, err, "the logs exceed 64 MiB: drop -o to stream them as text")
}

var _ = contract.AnnotationPolicyRevision
