package localcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// Pod annotations that script a simulated container's output.
const (
	// AnnotationLogs holds the lines every container of the pod prints,
	// separated by newlines.
	AnnotationLogs = "sim.flowforge.io/logs"
	// AnnotationLogInterval is the pause before each line (a Go duration,
	// default 100ms), so that a client can follow the log while the pod runs.
	AnnotationLogInterval = "sim.flowforge.io/log-interval"
	// AnnotationDuration is the run time before the pod ends (default 1s).
	AnnotationDuration = "sim.flowforge.io/duration"
	// AnnotationExitCode makes the pod fail with this exit code.
	AnnotationExitCode = "sim.flowforge.io/exit-code"
	// AnnotationRun set to "forever" keeps the pod running until deleted.
	AnnotationRun = "sim.flowforge.io/run"
	// AnnotationImagePull set to "fail" keeps the pod in ImagePullBackOff.
	AnnotationImagePull = "sim.flowforge.io/image-pull"
	// AnnotationTerminationDelay is how long the pod takes to exit after SIGTERM.
	AnnotationTerminationDelay = "sim.flowforge.io/termination-delay"
	// AnnotationExitAt is set by the log agent, not by tests: the time
	// (RFC 3339) at which the containers of a pod that scripts its output
	// exit. It is AnnotationDuration after the pod started running, or
	// later if its output took longer to be written and served: kwok's
	// complete and fail stages (kwok/stages.yaml) wait for it, so that no
	// such pod is reported terminated before pods/log serves its whole
	// output, as with a real kubelet.
	AnnotationExitAt = "sim.flowforge.io/exit-at"
)

const (
	// criTimeFormat is how the kubelet (and kwok) print a log line's time:
	// RFC 3339 with nanoseconds, fixed width.
	criTimeFormat      = "2006-01-02T15:04:05.000000000Z07:00"
	defaultLogInterval = 100 * time.Millisecond
	// defaultDuration is the run time of a pod without AnnotationDuration
	// (kwok/stages.yaml, pod-complete and pod-fail).
	defaultDuration = time.Second
	// exitLead is how long before its run time is up a pod's remaining
	// lines are written at once (at most half the run time), which leaves
	// the agent time to mark the pod's exit before it is due.
	exitLead = 500 * time.Millisecond
)

// logAgent plays the containers' stdout: for each pod that scripts its output
// with AnnotationLogs it writes a CRI-format log file while the pod runs and
// points kwok's kubelet server at it with a per-pod Logs object, so the API
// server's pods/log endpoint serves the lines, follow included.
//
// It also plays the kubelet's container garbage collection, by the rule of
// kubelet v1.37 (kuberuntime_gc.go evictContainers, with
// pod_workers.go ShouldPodContentBeRemoved): a pod's containers, and so
// their logs, are removed once the pod is terminated and its deletion was
// requested, whatever finalizers still hold the Pod object. Here that
// happens gcPeriod after both became true (the kubelet's collection runs
// every minute). A terminated pod that nobody deletes keeps its logs.
// The Logs object has no owner reference: with one, the garbage collector
// would delete it the moment a foreground deletion reaches the pod, earlier
// than any kubelet removes logs.
type logAgent struct {
	dir string
	ns  func(string) dynamic.ResourceInterface
	// readLog reads a container's log through pods/log, timestamped; and
	// markExit sets AnnotationExitAt on a pod. Without them, pods are not
	// marked (nothing waits for them).
	readLog  func(ctx context.Context, namespace, pod, container string) ([]byte, error)
	markExit func(ctx context.Context, namespace, pod string, at time.Time) error
	clock    clock.WithDelayedExecution
	gcPeriod time.Duration

	ctx  context.Context
	mu   sync.Mutex
	pods map[types.UID]*scriptedPod
	wg   sync.WaitGroup
}

type scriptedPod struct {
	namespace, name string
	path            string
	lines           []string
	interval        time.Duration
	// duration is the run time; exits is false for a pod that runs until
	// deleted (AnnotationRun), which no stage waits to end.
	duration time.Duration
	exits    bool
	// container is the one whose pods/log is read to see the output
	// served (the Logs object maps every container to the file).
	container string
	started   bool
	flush     chan struct{}
	flushed   bool
	// out is what pods/log with timestamps serves of the lines written so
	// far; first is closed once the first line is written.
	mu    sync.Mutex
	out   strings.Builder
	first chan struct{}
	// registered is closed once the Logs object has been created (or
	// creating it was given up).
	registered chan struct{}
	// gc is the pending container removal; removed is set once it ran.
	gc      clock.Timer
	removed bool
}

// containersRemovable is the kubelet's rule for removing a pod's
// containers: its deletion was requested and it is terminated.
func containersRemovable(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp != nil && (pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed)
}

func (c *Cluster) startLogAgent(cs kubernetes.Interface) error {
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("local cluster: log agent client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &logAgent{
		dir: filepath.Join(c.Dir, "pod-logs"),
		ns:  func(ns string) dynamic.ResourceInterface { return dyn.Resource(logsGVR).Namespace(ns) },
		readLog: func(ctx context.Context, namespace, pod, container string) ([]byte, error) {
			return cs.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container, Timestamps: true}).DoRaw(ctx)
		},
		markExit: func(ctx context.Context, namespace, pod string, at time.Time) error {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, AnnotationExitAt, at.UTC().Format(time.RFC3339Nano))
			_, err := cs.CoreV1().Pods(namespace).Patch(ctx, pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			return err
		},
		clock:    clock.RealClock{},
		gcPeriod: c.opts.ContainerGCPeriod,
		ctx:      ctx,
		pods:     map[types.UID]*scriptedPod{},
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	informer := factory.Core().V1().Pods().Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.observe(obj) },
		UpdateFunc: func(_, obj any) { a.observe(obj) },
		DeleteFunc: func(obj any) { a.forget(obj) },
	}); err != nil {
		cancel()
		return fmt.Errorf("local cluster: log agent handler: %w", err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	c.agentStop, c.agentDone = cancel, done
	go func() {
		<-ctx.Done()
		factory.Shutdown()
		a.wg.Wait()
		close(done)
	}()
	return nil
}

func (a *logAgent) observe(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	script, ok := pod.Annotations[AnnotationLogs]
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sp := a.pods[pod.UID]
	if sp == nil {
		interval := defaultLogInterval
		if d, err := time.ParseDuration(pod.Annotations[AnnotationLogInterval]); err == nil && d >= 0 {
			interval = d
		}
		duration := defaultDuration
		if d, err := time.ParseDuration(pod.Annotations[AnnotationDuration]); err == nil {
			duration = d
		}
		sp = &scriptedPod{
			namespace:  pod.Namespace,
			name:       pod.Name,
			path:       filepath.Join(a.dir, fmt.Sprintf("%s_%s_%s.log", pod.Namespace, pod.Name, pod.UID)),
			lines:      strings.Split(strings.TrimRight(script, "\n"), "\n"),
			interval:   interval,
			duration:   duration,
			exits:      pod.Annotations[AnnotationRun] != "forever",
			flush:      make(chan struct{}),
			first:      make(chan struct{}),
			registered: make(chan struct{}),
		}
		if len(pod.Spec.Containers) > 0 {
			sp.container = pod.Spec.Containers[0].Name
		}
		a.pods[pod.UID] = sp
		if err := os.WriteFile(sp.path, nil, 0o644); err != nil {
			close(sp.registered)
			return
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer close(sp.registered)
			a.register(pod, sp.path)
		}()
	}
	if containersRemovable(pod) && sp.gc == nil {
		sp.gc = a.clock.AfterFunc(a.gcPeriod, func() { a.removeContainers(sp) })
	}
	switch pod.Status.Phase {
	case corev1.PodRunning:
		if !sp.started {
			sp.started = true
			exitAt := a.clock.Now().Add(sp.duration)
			var deadline <-chan time.Time
			if sp.exits {
				// The output is complete a little before the run time is
				// up, so that the exit mark reaches kwok in time.
				deadline = a.clock.After(sp.duration - min(exitLead, sp.duration/2))
			}
			written := make(chan bool, 1)
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				written <- sp.write(a.ctx, deadline)
			}()
			if sp.exits {
				a.wg.Add(1)
				go func() {
					defer a.wg.Done()
					a.exit(sp, exitAt, written)
				}()
			}
		}
	case corev1.PodSucceeded, corev1.PodFailed:
		if !sp.flushed {
			sp.flushed = true
			close(sp.flush)
		}
		if !sp.started {
			sp.started = true
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				sp.write(a.ctx, nil)
			}()
		}
	}
}

// exit lets a running pod's containers exit once their whole output is
// written and served. kwok learns of the pod's Logs object through its
// own watch, which may lag far behind the API server (seconds after an
// API server restart), and until then serves an empty log; so once the
// first line is written, exit reads pods/log until it serves the lines
// written so far (from then on kwok serves the file as it grows). Once
// every line is written (written), it sets AnnotationExitAt to exitAt, or
// to now if that has passed. It retries through an API server restart for
// up to registerPatience, then marks the pod anyway, so that no pod runs
// for ever because the agent gave up.
func (a *logAgent) exit(sp *scriptedPod, exitAt time.Time, written <-chan bool) {
	if a.readLog == nil || a.markExit == nil {
		return
	}
	select {
	case <-sp.registered:
	case <-a.ctx.Done():
		return
	}
	done := false
	select {
	case <-sp.first:
	case <-written:
		done = true
	case <-a.ctx.Done():
		return
	}
	select {
	case <-sp.first:
		a.waitServed(sp)
	default:
		// Not a line written: the file could not be opened. The pod
		// exits all the same.
	}
	if !done {
		select {
		case <-written:
		case <-a.ctx.Done():
			return
		}
	}
	_ = retry(a.ctx, time.Now().Add(registerPatience), func() error {
		at := exitAt
		if now := a.clock.Now(); now.After(at) {
			at = now
		}
		err := a.markExit(a.ctx, sp.namespace, sp.name, at)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// waitServed reads the pod's log through pods/log until it serves the
// lines written so far, for up to registerPatience.
func (a *logAgent) waitServed(sp *scriptedPod) {
	if sp.container == "" {
		return
	}
	_ = retry(a.ctx, time.Now().Add(registerPatience), func() error {
		got, err := a.readLog(a.ctx, sp.namespace, sp.name, sp.container)
		if err != nil {
			return err
		}
		sp.mu.Lock()
		out := sp.out.String()
		sp.mu.Unlock()
		if len(got) == 0 || !strings.HasPrefix(out, string(got)) {
			return fmt.Errorf("pods/log serves %d bytes, not the %d written", len(got), len(out))
		}
		return nil
	})
}

// forget handles a pod that is gone from the API server: its containers
// go at once (pods/log has no pod to serve anyway).
func (a *logAgent) forget(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.mu.Lock()
	sp := a.pods[pod.UID]
	delete(a.pods, pod.UID)
	if sp != nil && sp.gc != nil {
		sp.gc.Stop()
	}
	a.mu.Unlock()
	if sp != nil {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.removeContainers(sp)
		}()
	}
}

// removeContainers removes a pod's logs, as the kubelet's container garbage
// collection does: the Logs object (so pods/log serves nothing) and the
// file. It runs once per pod.
func (a *logAgent) removeContainers(sp *scriptedPod) {
	a.mu.Lock()
	if sp.removed {
		a.mu.Unlock()
		return
	}
	sp.removed = true
	a.mu.Unlock()
	select {
	case <-sp.registered:
	case <-a.ctx.Done():
		return
	}
	for attempt := 0; attempt < 20; attempt++ {
		err := a.ns(sp.namespace).Delete(a.ctx, sp.name, metav1.DeleteOptions{})
		if err == nil || apierrors.IsNotFound(err) || a.ctx.Err() != nil {
			break
		}
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	_ = os.Remove(sp.path)
}

// register creates the kwok Logs object that maps the pod's containers to
// the log file (replacing one a former pod of the same name left). It has
// no owner: removeContainers deletes it by the kubelet's rule.
func (a *logAgent) register(pod *corev1.Pod, path string) {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1",
		"kind":       "Logs",
		"metadata": map[string]any{
			"name":        pod.Name,
			"namespace":   pod.Namespace,
			"annotations": map[string]any{"sim.flowforge.io/pod-uid": string(pod.UID)},
		},
		"spec": map[string]any{"logs": []any{map[string]any{"logsFile": path, "follow": true}}},
	}}
	// Retry through an API server restart (the fault run restarts it for
	// up to a minute): a pod whose Logs object is never created would
	// serve empty logs, as if its container had printed nothing, which no
	// real kubelet does.
	_ = retry(a.ctx, time.Now().Add(registerPatience), func() error {
		_, err := a.ns(pod.Namespace).Create(a.ctx, obj, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = a.replace(obj)
		}
		return err
	})
}

// retry calls try until it succeeds, ctx ends or the deadline passes,
// backing off from 50ms to 1s between calls; it returns the last error.
func retry(ctx context.Context, deadline time.Time, try func() error) error {
	delay := 50 * time.Millisecond
	for {
		err := try()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// registerPatience bounds how long the agent keeps trying to create a pod's
// Logs object while the API server is unavailable.
const registerPatience = 3 * time.Minute

// replace points an existing Logs object of the same name at this pod.
func (a *logAgent) replace(obj *unstructured.Unstructured) error {
	cur, err := a.ns(obj.GetNamespace()).Get(a.ctx, obj.GetName(), metav1.GetOptions{})
	if err != nil {
		return err
	}
	next := obj.DeepCopy()
	next.SetResourceVersion(cur.GetResourceVersion())
	_, err = a.ns(obj.GetNamespace()).Update(a.ctx, next, metav1.UpdateOptions{})
	return err
}

// write appends the scripted lines one interval apart, or the rest at once
// when the pod has ended or its run time is up (deadline; a container's
// output is complete when it exits). It reports whether every line was
// written.
func (sp *scriptedPod) write(ctx context.Context, deadline <-chan time.Time) bool {
	f, err := os.OpenFile(sp.path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	defer f.Close() //nolint:errcheck // each line is written with its own call
	hurry := sp.flush
	now := make(chan struct{})
	close(now)
	for _, line := range sp.lines {
		select {
		case <-ctx.Done():
			return false
		case <-hurry:
		case <-deadline:
			// The rest at once.
			hurry, deadline = now, nil
		case <-time.After(sp.interval):
		}
		// The kubelet's fixed-width format, in which pods/log serves
		// timestamps back.
		ts := time.Now().UTC().Format(criTimeFormat)
		if _, err := fmt.Fprintf(f, "%s stdout F %s\n", ts, line); err != nil {
			return false
		}
		sp.mu.Lock()
		if sp.out.Len() == 0 {
			close(sp.first)
		}
		fmt.Fprintf(&sp.out, "%s %s\n", ts, line)
		sp.mu.Unlock()
	}
	return true
}
