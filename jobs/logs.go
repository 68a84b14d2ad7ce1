package jobs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/flowforge/flowforge/podlog"

	"github.com/flowforge/flowforge/contract"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// LogOptions configure Logs.
type LogOptions struct {
	// Follow streams the output while the job runs.
	Follow bool
	// Container names the container; default the pod's first (the worker).
	Container string
	// AllAttempts shows every attempt (pod) of the Job in order, not only
	// the latest; each is preceded by a header line when there is more
	// than one.
	AllAttempts bool
	// Since shows only lines written at or after this time.
	Since *time.Time
	// Timestamps prefixes each line with its RFC 3339 time.
	Timestamps bool
}

// Logs writes the output of a job's pods to w.
//
// Without Follow it writes what the latest attempt (or, with AllAttempts,
// every attempt, oldest first) has written so far. With Follow it waits for
// the pod to start, streams its output, and resumes a stream that breaks
// from the last line seen (lines are requested with timestamps, which are
// stripped unless asked for, and lines already written are not repeated).
// Since a kubelet may keep a follow stream open after the container ended
// (kwok always does), Logs also watches the pod, and once the pod has
// terminated it reads for Options.LogDrain more and then stops. With
// AllAttempts it goes on with the next attempt until the Job has finished;
// since more attempts may come, every attempt then gets a header.
func (c *Client) Logs(ctx context.Context, id string, opts LogOptions, w io.Writer) error {
	job, err := c.Get(ctx, id)
	if err != nil {
		return err
	}
	l := &logStreamer{
		c: c, id: id, job: job, opts: opts, w: w,
		selector: batchv1.ControllerUidLabel + "=" + string(job.UID),
	}
	if opts.Follow {
		return l.follow(ctx)
	}
	return l.once(ctx)
}

type logStreamer struct {
	c        *Client
	id       string
	job      *batchv1.Job
	opts     LogOptions
	w        io.Writer
	selector string
}

func (l *logStreamer) container(pod *corev1.Pod) string {
	if l.opts.Container != "" || len(pod.Spec.Containers) == 0 {
		return l.opts.Container
	}
	return pod.Spec.Containers[0].Name
}

func (l *logStreamer) header(attempt int, pod string) error {
	_, err := fmt.Fprintln(l.w, podlog.AttemptHeader(attempt, pod))
	return err
}

// once writes the logs so far.
func (l *logStreamer) once(ctx context.Context) error {
	var list *corev1.PodList
	if err := l.c.call(ctx, fmt.Sprintf("list pods of job %s", l.job.Name), func(ctx context.Context) error {
		var err error
		list, err = l.c.cs.CoreV1().Pods(l.c.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: l.selector})
		return err
	}); err != nil {
		return err
	}
	pods := make([]*corev1.Pod, 0, len(list.Items))
	for i := range list.Items {
		pods = append(pods, &list.Items[i])
	}
	podlog.Sort(pods)
	if len(pods) == 0 {
		return fmt.Errorf("logs of job %s: it has no pods yet (%s)", l.id, contract.StatusOf(l.job).Phase)
	}
	first := 0
	if !l.opts.AllAttempts {
		first = len(pods) - 1
	}
	headers := len(pods)-first > 1
	for i := first; i < len(pods); i++ {
		pod := pods[i]
		if headers {
			if err := l.header(i+1, pod.Name); err != nil {
				return err
			}
		}
		container := l.container(pod)
		if !podlog.ContainerStarted(pod, container) {
			if headers {
				if _, err := fmt.Fprintf(l.w, "(no output: the container did not start: %s)\n", podlog.State(pod)); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("logs of job %s: pod %s has not started yet (%s)", l.id, pod.Name, podlog.State(pod))
		}
		opts := &corev1.PodLogOptions{Container: container, Timestamps: l.opts.Timestamps}
		if l.opts.Since != nil {
			opts.SinceTime = &metav1.Time{Time: *l.opts.Since}
		}
		rc, err := l.c.openStream(ctx, pod.Name, opts)
		if err != nil {
			return err
		}
		_, err = io.Copy(l.w, rc)
		_ = rc.Close()
		if err != nil {
			return fmt.Errorf("logs of pod %s: %w", pod.Name, err)
		}
	}
	return nil
}

// openStream opens a log stream with the retry policy of a call, but with
// no per-attempt timeout, since the stream outlives the call.
func (c *Client) openStream(ctx context.Context, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	backoff := c.opts.Backoff
	what := fmt.Sprintf("logs of pod %s in namespace %s", pod, c.opts.Namespace)
	for attempt := 1; ; attempt++ {
		rc, err := c.openLogs(ctx, c.opts.Namespace, pod, opts)
		switch {
		case err == nil:
			return rc, nil
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		case !IsTransient(err):
			return nil, fmt.Errorf("%s: %w", what, err)
		case attempt >= max(backoff.Steps, 1):
			return nil, fmt.Errorf("%s: gave up after %d attempts against %s: %w", what, attempt, c.server(), err)
		}
		if serr := c.sleep(ctx, backoff.Step()); serr != nil {
			return nil, fmt.Errorf("%s: %w (last error: %w)", what, serr, err)
		}
	}
}

// Updates the follower receives from its watches.
type (
	podUpdate struct {
		pod     *corev1.Pod
		deleted bool
	}
	// jobEnded: the job watch ended, at a terminal phase (err nil) or not.
	jobEnded struct{ err error }
)

// podStream is the stream of the pod being followed.
type podStream struct {
	pod       string
	container string
	cancel    context.CancelFunc
	done      chan error
	running   bool // a goroutine is reading
	stopping  bool // the drain is over, or ctx ended: the stream was cut on purpose
	failures  int

	// Written by the reading goroutine, read by the loop once it is done.
	lastTS time.Time // timestamp of the last line written
	atLast int       // lines written with that timestamp
	skip   int       // lines at lastTS to skip after a resume
}

// follower is the state machine of Logs with Follow. One goroutine (run)
// owns every field; the pod and Job watches send it updates, and the
// stream being read reports on its done channel.
type follower struct {
	*logStreamer
	ctx     context.Context // the follow's context: ends the watches and streams
	updates chan any

	pods     map[string]*corev1.Pod
	deleted  map[string]bool
	finished map[string]bool
	// ended: the Job reached a terminal phase, or is gone; settled fires
	// once the last pod updates have had time to arrive after that.
	ended   bool
	settled <-chan time.Time
	// drain fires when the current pod has ended and its last lines have
	// had time to be read; reopen when a broken stream is due to resume.
	drain, reopen <-chan time.Time
	cur           *podStream
	// progressed: openNext marked an attempt that never started as shown,
	// so the loop looks for the next one before it waits.
	progressed bool
}

// follow runs a follower until the logs are complete, ctx ends or an
// error that retries cannot mend.
func (l *logStreamer) follow(ctx context.Context) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := &follower{
		logStreamer: l, ctx: fctx, updates: make(chan any),
		pods: map[string]*corev1.Pod{}, deleted: map[string]bool{}, finished: map[string]bool{},
	}
	go l.watchPods(fctx, f.send)
	go func() {
		_, err := l.c.Watch(fctx, l.id, func(contract.Status) error { return nil })
		f.send(jobEnded{err: err})
	}()
	// Nothing writes to w once Logs has returned.
	defer f.stopStream()
	return f.run(ctx)
}

func (f *follower) send(u any) bool {
	select {
	case f.updates <- u:
		return true
	case <-f.ctx.Done():
		return false
	}
}

func (f *follower) run(ctx context.Context) error {
	clk := f.c.opts.Clock
	for {
		if f.cur == nil {
			done, err := f.openNext()
			if err != nil || done {
				return err
			}
			if f.cur == nil && f.progressed {
				f.progressed = false
				continue
			}
		}
		if f.cur != nil && f.drain == nil && f.podDone(f.cur.pod) {
			f.drain = clk.After(f.c.opts.LogDrain)
			if !f.cur.running {
				// One more read picks up what was written at the end.
				f.reopen = nil
				f.start()
			}
		}
		var done chan error
		if f.cur != nil && f.cur.running {
			done = f.cur.done
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("logs of job %s: %w", f.id, ctx.Err())
		case u := <-f.updates:
			if err := f.update(u); err != nil {
				return err
			}
		case <-f.settled:
			f.settled = nil
		case <-f.drain:
			if f.cur.running {
				f.cur.stopping = true
				f.cur.cancel()
			} else {
				f.finish()
			}
		case <-f.reopen:
			f.reopen = nil
			f.start()
		case err := <-done:
			if err := f.streamEnded(err); err != nil {
				return err
			}
		}
	}
}

// openNext starts the stream of the next attempt to show. done is true
// when there is nothing more to show.
func (f *follower) openNext() (done bool, err error) {
	pod, attempt := f.next()
	switch {
	case pod == nil && (f.ended && f.settled == nil || !f.opts.AllAttempts && len(f.finished) > 0):
		return true, nil
	case pod == nil:
	case podlog.ContainerStarted(pod, f.container(pod)):
		if f.opts.AllAttempts {
			if err := f.header(attempt, pod.Name); err != nil {
				return false, err
			}
		}
		f.cur = &podStream{pod: pod.Name, container: f.container(pod)}
		f.start()
	case podlog.Ended(pod) || f.deleted[pod.Name]:
		if f.opts.AllAttempts {
			if err := f.header(attempt, pod.Name); err != nil {
				return false, err
			}
			if _, err := fmt.Fprintf(f.w, "(no output: the container did not start: %s)\n", podlog.State(pod)); err != nil {
				return false, err
			}
		}
		f.finished[pod.Name] = true
		f.progressed = true
	}
	return false, nil
}

// next is the first attempt not yet shown (with AllAttempts), or the last
// attempt (without).
func (f *follower) next() (*corev1.Pod, int) {
	all := make([]*corev1.Pod, 0, len(f.pods))
	for _, p := range f.pods {
		all = append(all, p)
	}
	podlog.Sort(all)
	if !f.opts.AllAttempts {
		if len(f.finished) > 0 || len(all) == 0 {
			return nil, 0
		}
		return all[len(all)-1], len(all)
	}
	for i, p := range all {
		if !f.finished[p.Name] {
			return p, i + 1
		}
	}
	return nil, 0
}

// podDone reports whether a pod will write nothing more: gone, deleted or
// ended.
func (f *follower) podDone(name string) bool {
	p := f.pods[name]
	return p == nil || podlog.Ended(p) || f.deleted[name]
}

func (f *follower) start() {
	sctx, scancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	f.cur.cancel, f.cur.done, f.cur.running = scancel, done, true
	ps := f.cur
	go func() { done <- f.readStream(sctx, ps) }()
}

func (f *follower) finish() {
	f.finished[f.cur.pod] = true
	f.cur, f.drain, f.reopen = nil, nil, nil
}

// stopStream cuts the stream being read, if any, and waits for its reader.
func (f *follower) stopStream() {
	if f.cur != nil && f.cur.running {
		f.cur.stopping = true
		f.cur.cancel()
		<-f.cur.done
	}
}

// update applies a message from the watches.
func (f *follower) update(u any) error {
	switch u := u.(type) {
	case podUpdate:
		f.pods[u.pod.Name] = u.pod
		if u.deleted {
			f.deleted[u.pod.Name] = true
		}
	case jobEnded:
		if u.err != nil && !errors.Is(u.err, ErrDeleted) && !errors.Is(u.err, ErrNotFound) {
			return fmt.Errorf("logs of job %s: %w", f.id, u.err)
		}
		f.ended = true
		f.settled = f.c.opts.Clock.After(f.c.opts.LogDrain)
	case error:
		return fmt.Errorf("logs of job %s: %w", f.id, u)
	}
	return nil
}

// streamEnded decides what follows the end of the current stream: the
// next attempt, a resume after a back-off, or an error.
func (f *follower) streamEnded(err error) error {
	cur := f.cur
	cur.running = false
	cur.cancel()
	podDone := f.podDone(cur.pod)
	var werr *writeError
	switch {
	case errors.As(err, &werr):
		return werr
	case cur.stopping:
		f.finish()
	case err == nil && podDone:
		f.finish() // a kubelet that closes the stream when the container ends
	case err == nil:
		// The stream closed early; resume from the last line.
		cur.failures = 0
		f.reopen = f.c.opts.Clock.After(f.c.opts.ReconnectBackoff.Duration)
	case apierrors.IsNotFound(err) && podDone:
		f.finish()
	case IsTransient(err) || apierrors.IsBadRequest(err):
		// BadRequest: the container is not running yet or any more for the
		// kubelet, which lags behind the pod status.
		cur.failures++
		if cur.failures >= max(f.c.opts.ReconnectBackoff.Steps, 1) {
			return fmt.Errorf("logs of pod %s: gave up after %d attempts: %w", cur.pod, cur.failures, err)
		}
		f.reopen = f.c.opts.Clock.After(f.c.reconnectDelay(cur.failures))
	default:
		return fmt.Errorf("logs of pod %s: %w", cur.pod, err)
	}
	return nil
}

func (c *Client) reconnectDelay(n int) time.Duration {
	b := c.opts.ReconnectBackoff
	d := b.Step()
	for i := 1; i < n; i++ {
		d = b.Step()
	}
	return d
}

// readStream opens the pod's follow stream (from the last line written,
// if any) and writes its lines until it ends.
func (l *logStreamer) readStream(ctx context.Context, ps *podStream) error {
	opts := &corev1.PodLogOptions{Container: ps.container, Follow: true, Timestamps: true}
	switch {
	case !ps.lastTS.IsZero():
		opts.SinceTime = &metav1.Time{Time: ps.lastTS}
		ps.skip = ps.atLast
	case l.opts.Since != nil:
		opts.SinceTime = &metav1.Time{Time: *l.opts.Since}
	}
	rc, err := l.c.openLogs(ctx, l.c.opts.Namespace, ps.pod, opts)
	if err != nil {
		return err
	}
	defer rc.Close() //nolint:errcheck // read-only stream
	r := bufio.NewReader(rc)
	for {
		line, err := r.ReadString('\n')
		if err == nil || errors.Is(err, io.EOF) && line != "" {
			if werr := l.emit(ps, line); werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err // a partial line is dropped: the resumed stream sends it again
		}
	}
}

// emit writes one line unless a resumed stream repeats it.
func (l *logStreamer) emit(ps *podStream, line string) error {
	text := line
	if ts, rest, ok := podlog.SplitTimestamp(line); ok {
		switch {
		case ts.Before(ps.lastTS):
			return nil
		case ts.Equal(ps.lastTS):
			if ps.skip > 0 {
				ps.skip--
				return nil
			}
			ps.atLast++
		default:
			ps.lastTS, ps.atLast, ps.skip = ts, 1, 0
		}
		if !l.opts.Timestamps {
			text = rest
		}
	}
	if _, err := io.WriteString(l.w, text); err != nil {
		return &writeError{err}
	}
	return nil
}

// writeError is a failure to write to the caller's writer: never retried.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write logs: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// watchPods sends the pods of the Job, and their changes, until ctx ends.
func (l *logStreamer) watchPods(ctx context.Context, send func(any) bool) {
	podsAPI := l.c.cs.CoreV1().Pods(l.c.opts.Namespace)
	src := source[*corev1.Pod]{
		what: "pods of job " + l.job.Name,
		list: func(ctx context.Context) ([]*corev1.Pod, string, error) {
			list, err := podsAPI.List(ctx, metav1.ListOptions{LabelSelector: l.selector})
			if err != nil {
				return nil, "", err
			}
			items := make([]*corev1.Pod, 0, len(list.Items))
			for i := range list.Items {
				items = append(items, &list.Items[i])
			}
			return items, list.ResourceVersion, nil
		},
		watch: func(ctx context.Context, rv string) (watch.Interface, error) {
			return podsAPI.Watch(ctx, metav1.ListOptions{LabelSelector: l.selector, ResourceVersion: rv, AllowWatchBookmarks: true})
		},
	}
	known := map[string]*corev1.Pod{}
	err := observeObjects(ctx, l.c, src, "",
		func(items []*corev1.Pod) (bool, error) {
			present := map[string]bool{}
			for _, p := range items {
				present[p.Name] = true
				known[p.Name] = p
				if !send(podUpdate{pod: p}) {
					return true, nil
				}
			}
			for name, p := range known {
				if !present[name] {
					delete(known, name)
					if !send(podUpdate{pod: p, deleted: true}) {
						return true, nil
					}
				}
			}
			return false, nil
		},
		func(typ watch.EventType, p *corev1.Pod) (bool, error) {
			if typ == watch.Deleted {
				delete(known, p.Name)
			} else {
				known[p.Name] = p
			}
			return !send(podUpdate{pod: p, deleted: typ == watch.Deleted}), nil
		})
	if err != nil && ctx.Err() == nil {
		send(err)
	}
}
