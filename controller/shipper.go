package controller

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/flowforge/flowforge/podlog"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/internal/metrics"
)

const (
	// drainDelay lets a follower read the last lines of a container that
	// has ended before it is stopped (a simulated kubelet, like some real
	// ones, never closes a follow stream on its own).
	drainDelay = time.Second
	// checkpointEvery bounds how many shipped lines a crash can repeat,
	// and how often each followed container writes to the store.
	checkpointEvery = time.Second
	retryStream     = time.Second
)

// LogSource streams container logs; the API server's pods/log in production.
type LogSource interface {
	Stream(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
}

// ClientsetLogs reads logs through the API server.
type ClientsetLogs struct{ Clientset kubernetes.Interface }

// Stream opens a log stream.
func (c ClientsetLogs) Stream(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return c.Clientset.CoreV1().Pods(namespace).GetLogs(pod, opts).Stream(ctx)
}

// Line is one shipped log line.
type Line struct {
	Time      time.Time `json:"ts"`
	JobID     string    `json:"job_id"`
	UserID    string    `json:"user_id"`
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	Container string    `json:"container"`
	Attempt   int       `json:"attempt"`
	Message   string    `json:"msg"`
}

// Sink receives shipped lines.
type Sink interface {
	Ship(Line) error
}

// JSONSink writes one JSON object per line, the format cluster log agents
// collect from a container's stdout.
type JSONSink struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSONSink writes to w.
func NewJSONSink(w io.Writer) *JSONSink { return &JSONSink{enc: json.NewEncoder(w)} }

// Ship writes a line.
func (s *JSONSink) Ship(l Line) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enc.Encode(l); err != nil {
		return fmt.Errorf("ship log line: %w", err)
	}
	return nil
}

// Tags identify the lines of one attempt.
type Tags struct {
	JobID, UserID string
	Attempt       int
}

// Shipper follows the logs of running pods and ships each line once (at
// least once across a crash: the store's checkpoint is at most
// checkpointEvery behind, and lines at or before it are skipped).
type Shipper struct {
	Logs  LogSource
	Sink  Sink
	Store history.Store
	Clock clock.WithDelayedExecution
	Log   logr.Logger

	mu        sync.Mutex
	ctx       context.Context
	followers map[types.UID]*follower
	// stopping holds followers being stopped, so that a second stop (the
	// export's) waits for the first (the reconciler's) to finish.
	stopping map[types.UID]*stopping
}

type follower struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs until ctx ends; it is a manager Runnable that needs the leader.
func (s *Shipper) Start(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	fs := s.followers
	s.followers = nil
	s.mu.Unlock()
	for _, f := range fs {
		f.cancel()
		<-f.done
	}
	return nil
}

// NeedLeaderElection makes the shipper run on the leader only.
func (s *Shipper) NeedLeaderElection() bool { return true }

// Follow starts following a running pod's containers, once.
func (s *Shipper) Follow(pod *corev1.Pod, tags Tags) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.ctx.Err() != nil {
		return
	}
	if _, ok := s.followers[pod.UID]; ok {
		return
	}
	if s.followers == nil {
		s.followers = map[types.UID]*follower{}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	f := &follower{cancel: cancel, done: make(chan struct{})}
	s.followers[pod.UID] = f
	containers := podlog.ContainerNames(pod)
	go func() {
		defer close(f.done)
		var wg sync.WaitGroup
		for _, c := range containers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.follow(ctx, pod, c, tags)
			}()
		}
		wg.Wait()
	}()
}

// Stop stops following a pod after a short drain and waits for it, also
// when another Stop of the same pod is already under way.
func (s *Shipper) Stop(podUID types.UID) {
	<-s.StopAsync(podUID)
}

// StopAsync starts stopping a pod's follower (a short drain, then cancel)
// and returns a channel closed once it has stopped; it is closed already if
// the pod was not followed.
func (s *Shipper) StopAsync(podUID types.UID) <-chan struct{} {
	return s.stop(podUID, false)
}

// StopNow stops a pod's follower without draining (the export then ships
// the rest from the complete log) and waits for it.
func (s *Shipper) StopNow(podUID types.UID) {
	<-s.stop(podUID, true)
}

func (s *Shipper) stop(podUID types.UID, now bool) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.stopping[podUID]; ok {
		if now {
			st.hurry()
		}
		return st.done
	}
	f, ok := s.followers[podUID]
	if !ok {
		closed := make(chan struct{})
		close(closed)
		return closed
	}
	delete(s.followers, podUID)
	if s.stopping == nil {
		s.stopping = map[types.UID]*stopping{}
	}
	st := &stopping{done: make(chan struct{}), skip: make(chan struct{})}
	s.stopping[podUID] = st
	if now {
		st.hurry()
	}
	go func() {
		select {
		case <-f.done:
		case <-st.skip:
		case <-s.Clock.After(drainDelay):
		}
		f.cancel()
		<-f.done
		s.mu.Lock()
		delete(s.stopping, podUID)
		s.mu.Unlock()
		close(st.done)
	}()
	return st.done
}

// stopping is a follower being stopped.
type stopping struct {
	done     chan struct{}
	skip     chan struct{}
	hurrying sync.Once
}

func (st *stopping) hurry() { st.hurrying.Do(func() { close(st.skip) }) }

// Following reports whether a pod is being followed.
func (s *Shipper) Following(podUID types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.followers[podUID]
	return ok
}

// follow ships one container's log until ctx ends, reconnecting from the
// checkpoint when the stream breaks.
func (s *Shipper) follow(ctx context.Context, pod *corev1.Pod, container string, tags Tags) {
	log := s.Log.WithValues("pod", pod.Name, "namespace", pod.Namespace, "container", container)
	for ctx.Err() == nil {
		until, shipped, err := s.Store.Shipped(ctx, string(pod.UID), container)
		if err != nil {
			log.Error(err, "Reading the log checkpoint")
		} else {
			opts := &corev1.PodLogOptions{Container: container, Follow: true, Timestamps: true}
			if !until.IsZero() {
				since := metav1.NewTime(until)
				opts.SinceTime = &since
			}
			stream, err := s.Logs.Stream(ctx, pod.Namespace, pod.Name, opts)
			if err == nil {
				_, _, err = s.ship(ctx, stream, pod, container, tags, until, shipped)
				_ = stream.Close()
			}
			if err != nil && ctx.Err() == nil {
				log.V(1).Info("Log stream interrupted; resuming", "error", err.Error())
			}
		}
		select {
		case <-ctx.Done():
		case <-s.Clock.After(retryStream):
		}
	}
}

// CatchUp ships the lines of a finished container that are after its
// checkpoint, from a complete timestamped log.
func (s *Shipper) CatchUp(ctx context.Context, pod *corev1.Pod, container string, tags Tags, timestamped io.Reader) error {
	until, shipped, err := s.Store.Shipped(ctx, string(pod.UID), container)
	if err != nil {
		return err
	}
	_, _, err = s.ship(ctx, timestamped, pod, container, tags, until, shipped)
	return err
}

// ship reads timestamped lines from r, ships those after `after`, and
// checkpoints at most checkpointEvery after a line was shipped (also while
// the stream is idle) and at the end.
func (s *Shipper) ship(ctx context.Context, r io.Reader, pod *corev1.Pod, container string, tags Tags, after time.Time, shipped int64) (time.Time, int64, error) {
	cp := &checkpointer{store: s.Store, clock: s.Clock, podUID: string(pod.UID), container: container, last: after, bytes: shipped}
	defer cp.stopTimer()
	scanner := bufio.NewScanner(r)
	// Start small: hundreds of pods may be followed at once, and most
	// lines are short; the buffer grows to 1 MiB for a long one.
	scanner.Buffer(make([]byte, 0, 4*1024), 1024*1024)
	for scanner.Scan() {
		ts, msg, ok := podlog.SplitTimestamp(scanner.Text())
		if !ok || !ts.After(cp.position()) {
			continue
		}
		if err := s.Sink.Ship(Line{Time: ts, JobID: tags.JobID, UserID: tags.UserID, Namespace: pod.Namespace, Pod: pod.Name, Container: container, Attempt: tags.Attempt, Message: msg}); err != nil {
			// The checkpoint stops before this line, so the caller's retry
			// (follow's reconnect, the export's requeue) ships it again:
			// at least once, never silently dropped.
			metrics.LogShipFailures.Inc()
			last, bytes, flushErr := cp.flush(ctx)
			return last, bytes, errors.Join(fmt.Errorf("ship log line of %s/%s: %w", pod.Name, container, err), flushErr)
		}
		metrics.LogLinesShipped.Inc()
		metrics.LogBytesShipped.Add(float64(len(msg) + 1))
		cp.advance(ctx, ts, int64(len(msg))+1)
	}
	last, bytes, err := cp.flush(ctx)
	if err != nil {
		return last, bytes, err
	}
	if err := scanner.Err(); err != nil && ctx.Err() == nil {
		return last, bytes, fmt.Errorf("read log stream: %w", err)
	}
	return last, bytes, nil
}

// checkpointer persists how far a container's log has been shipped, at
// most checkpointEvery behind.
type checkpointer struct {
	store     history.Store
	clock     clock.WithDelayedExecution
	podUID    string
	container string

	mu    sync.Mutex
	last  time.Time
	bytes int64
	dirty bool
	timer clock.Timer
}

func (c *checkpointer) position() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// advance records a shipped line and arms a flush.
func (c *checkpointer) advance(ctx context.Context, ts time.Time, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last, c.bytes, c.dirty = ts, c.bytes+n, true
	if c.timer == nil {
		c.timer = c.clock.AfterFunc(checkpointEvery, func() { _, _, _ = c.flush(ctx) })
	}
}

// flush writes the checkpoint if it moved.
func (c *checkpointer) flush(ctx context.Context) (time.Time, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timer = nil
	if !c.dirty {
		return c.last, c.bytes, nil
	}
	c.dirty = false
	return c.last, c.bytes, c.store.Checkpoint(context.WithoutCancel(ctx), c.podUID, c.container, c.last, c.bytes)
}

func (c *checkpointer) stopTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}
