package localcluster

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestContainersRemovable(t *testing.T) {
	deleting := ptr.To(metav1.Now())
	tests := []struct {
		name     string
		phase    corev1.PodPhase
		deletion *metav1.Time
		want     bool
	}{
		{"succeeded, deleted", corev1.PodSucceeded, deleting, true},
		{"failed, deleted", corev1.PodFailed, deleting, true},
		{"running, deleted: still terminating", corev1.PodRunning, deleting, false},
		{"pending, deleted", corev1.PodPending, deleting, false},
		{"succeeded, not deleted", corev1.PodSucceeded, nil, false},
		{"failed, not deleted", corev1.PodFailed, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: tc.deletion, Finalizers: []string{"keeps/the-object"}}, Status: corev1.PodStatus{Phase: tc.phase}}
			assert.Equal(t, tc.want, containersRemovable(pod))
		})
	}
}

type agentEnv struct {
	a     *logAgent
	dyn   dynamic.Interface
	clock *clocktesting.FakeClock
}

func newAgentEnv(t *testing.T, objs ...runtime.Object) *agentEnv {
	t.Helper()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{logsGVR: "LogsList"}, objs...)
	ctx, cancel := context.WithCancel(context.Background())
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	a := &logAgent{
		dir: t.TempDir(), ns: func(ns string) dynamic.ResourceInterface { return dyn.Resource(logsGVR).Namespace(ns) },
		clock: clk, gcPeriod: 5 * time.Second, ctx: ctx, pods: map[types.UID]*scriptedPod{},
	}
	t.Cleanup(func() { cancel(); a.wg.Wait() })
	return &agentEnv{a: a, dyn: dyn, clock: clk}
}

func scripted(phase corev1.PodPhase, deleting bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p1", Namespace: "ns", UID: "uid-1", Annotations: map[string]string{AnnotationLogs: "a\nb", AnnotationLogInterval: "0s"}},
		Status:     corev1.PodStatus{Phase: phase},
	}
	if deleting {
		p.DeletionTimestamp = ptr.To(metav1.Now())
		p.Finalizers = []string{"flowforge.io/log-export"}
	}
	return p
}

// logsObject reports whether the pod's Logs object exists, and its file.
func (e *agentEnv) logsObject(t *testing.T) (bool, string) {
	t.Helper()
	obj, err := e.dyn.Resource(logsGVR).Namespace("ns").Get(context.Background(), "p1", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, ""
	}
	require.NoError(t, err)
	logs, _, _ := unstructured.NestedSlice(obj.Object, "spec", "logs")
	require.Len(t, logs, 1)
	return true, logs[0].(map[string]any)["logsFile"].(string)
}

func (e *agentEnv) waitRemoved(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		exists, _ := e.logsObject(t)
		_, err := os.Stat(path)
		return !exists && os.IsNotExist(err), nil
	}), "the logs are removed")
}

func (e *agentEnv) registered(t *testing.T, uid types.UID) string {
	t.Helper()
	e.a.mu.Lock()
	sp := e.a.pods[uid]
	e.a.mu.Unlock()
	require.NotNil(t, sp)
	<-sp.registered
	exists, path := e.logsObject(t)
	require.True(t, exists)
	return path
}

func TestLogAgentKeepsTheLogsOfATerminatedPodNobodyDeletes(t *testing.T) {
	e := newAgentEnv(t)
	e.a.observe(scripted(corev1.PodRunning, false))
	path := e.registered(t, "uid-1")
	e.a.observe(scripted(corev1.PodSucceeded, false))
	e.clock.Step(time.Hour)
	assert.False(t, e.clock.HasWaiters(), "no removal pending")
	exists, _ := e.logsObject(t)
	assert.True(t, exists, "pods/log still serves the logs")
	assert.FileExists(t, path)
	assert.Equal(t, filepath.Dir(path), e.a.dir)

	// Deleting a running pod does not remove anything until it has stopped.
	e.a.observe(scripted(corev1.PodRunning, true))
	assert.False(t, e.clock.HasWaiters())
}

func TestLogAgentRemovesTheLogsOfADeletedTerminatedPodAfterThePeriod(t *testing.T) {
	e := newAgentEnv(t)
	e.a.observe(scripted(corev1.PodRunning, false))
	path := e.registered(t, "uid-1")
	e.a.observe(scripted(corev1.PodRunning, true))
	e.a.observe(scripted(corev1.PodFailed, true))
	e.a.observe(scripted(corev1.PodFailed, true)) // a later update does not restart the period
	e.clock.Step(5*time.Second - time.Millisecond)
	exists, _ := e.logsObject(t)
	assert.True(t, exists, "not before the period")
	assert.FileExists(t, path)
	e.clock.Step(time.Millisecond)
	e.waitRemoved(t, path)
}

func TestLogAgentRemovesTheLogsOfAPodGoneFromTheAPI(t *testing.T) {
	e := newAgentEnv(t)
	pod := scripted(corev1.PodSucceeded, false)
	e.a.observe(pod)
	path := e.registered(t, "uid-1")
	e.a.forget(cache.DeletedFinalStateUnknown{Key: "ns/p1", Obj: pod})
	e.waitRemoved(t, path)
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	assert.Empty(t, e.a.pods, "forgotten")
}

func TestLogAgentReplacesTheLogsObjectOfAFormerPod(t *testing.T) {
	former := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
		"metadata": map[string]any{"name": "p1", "namespace": "ns", "resourceVersion": "7"},
		"spec":     map[string]any{"logs": []any{map[string]any{"logsFile": "/gone.log", "follow": true}}},
	}}
	e := newAgentEnv(t, former)
	e.a.observe(scripted(corev1.PodRunning, false))
	path := e.registered(t, "uid-1")
	assert.NotEqual(t, "/gone.log", path, "points at the new pod's file")
}

// exitProbe fakes pods/log and the pod patch for the exit mark: pods/log
// serves nothing until served is closed, then the file as written.
type exitProbe struct {
	mu     sync.Mutex
	reads  int
	served chan struct{}
	marks  []time.Time
	marked chan struct{}
}

func (e *agentEnv) probeExit(t *testing.T) *exitProbe {
	t.Helper()
	p := &exitProbe{served: make(chan struct{}), marked: make(chan struct{}, 10)}
	e.a.readLog = func(_ context.Context, namespace, pod, container string) ([]byte, error) {
		assert.Equal(t, "ns/p1/main", namespace+"/"+pod+"/"+container)
		p.mu.Lock()
		p.reads++
		p.mu.Unlock()
		select {
		case <-p.served:
		default:
			return nil, nil // kwok does not know the Logs object yet: empty
		}
		exists, path := e.logsObject(t)
		require.True(t, exists)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		// pods/log with timestamps: "<time> <message>" per CRI line.
		var out strings.Builder
		for _, l := range strings.SplitAfter(string(data), "\n") {
			if ts, rest, ok := strings.Cut(l, " stdout F "); ok {
				out.WriteString(ts + " " + rest)
			}
		}
		return []byte(out.String()), nil
	}
	e.a.markExit = func(_ context.Context, namespace, pod string, at time.Time) error {
		assert.Equal(t, "ns/p1", namespace+"/"+pod)
		p.mu.Lock()
		p.marks = append(p.marks, at)
		p.mu.Unlock()
		p.marked <- struct{}{}
		return nil
	}
	return p
}

func (p *exitProbe) state() (reads int, marks []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads, slices.Clone(p.marks)
}

func running(annotations map[string]string) *corev1.Pod {
	pod := scripted(corev1.PodRunning, false)
	maps.Copy(pod.Annotations, annotations)
	pod.Spec.Containers = []corev1.Container{{Name: "main"}, {Name: "other"}}
	return pod
}

// TestLogAgentEndsAPodOnlyOnceItsOutputIsServed: the agent marks a pod's
// exit at its run time after it started, but not before pods/log serves
// every line it wrote (kwok's view of the Logs objects lags after an API
// server restart); if that is later, the pod exits then.
func TestLogAgentEndsAPodOnlyOnceItsOutputIsServed(t *testing.T) {
	e := newAgentEnv(t)
	p := e.probeExit(t)
	start := e.clock.Now()
	e.a.observe(running(map[string]string{AnnotationDuration: "2s"}))
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		reads, _ := p.state()
		return reads >= 3, nil
	}), "pods/log is read until it serves the output")
	_, marks := p.state()
	assert.Empty(t, marks, "not marked while pods/log serves an empty log")

	close(p.served)
	<-p.marked
	_, marks = p.state()
	assert.Equal(t, []time.Time{start.Add(2 * time.Second)}, marks, "exits at its run time after it started")

	// Served later than its run time: it exits then.
	e2 := newAgentEnv(t)
	p2 := e2.probeExit(t)
	e2.a.observe(running(nil))
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		reads, _ := p2.state()
		return reads >= 1, nil
	}))
	e2.clock.Step(5 * time.Second)
	close(p2.served)
	<-p2.marked
	_, marks = p2.state()
	assert.Equal(t, []time.Time{start.Add(5 * time.Second)}, marks, "exits once its output is served")
}

// TestLogAgentWritesTheRestOfTheOutputBeforeTheRunTimeIsUp: lines slower
// than the run time are written at once shortly before it is up (exitLead),
// and the pod then exits on time.
func TestLogAgentWritesTheRestOfTheOutputBeforeTheRunTimeIsUp(t *testing.T) {
	e := newAgentEnv(t)
	p := e.probeExit(t)
	close(p.served)
	start := e.clock.Now()
	e.a.observe(running(map[string]string{AnnotationLogInterval: "1h", AnnotationDuration: "3s"}))
	path := e.registered(t, "uid-1")
	select {
	case <-p.marked:
		t.Fatal("marked before its output is written")
	case <-time.After(100 * time.Millisecond):
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Empty(t, data, "the first line is an hour away")

	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return e.clock.HasWaiters(), nil
	}))
	e.clock.Step(3*time.Second - exitLead - time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Empty(t, data, "not before")
	e.clock.Step(time.Millisecond)
	<-p.marked
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(data), " stdout F "), "every line, at once")
	_, marks := p.state()
	assert.Equal(t, []time.Time{start.Add(3 * time.Second)}, marks)
}

// TestLogAgentDoesNotMarkAPodThatRunsForever: no stage ends it, so nothing
// waits for the mark.
func TestLogAgentDoesNotMarkAPodThatRunsForever(t *testing.T) {
	e := newAgentEnv(t)
	p := e.probeExit(t)
	close(p.served)
	e.a.observe(running(map[string]string{AnnotationRun: "forever"}))
	path := e.registered(t, "uid-1")
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		data, err := os.ReadFile(path)
		return strings.Count(string(data), "\n") == 2, err
	}), "its lines are written")
	select {
	case <-p.marked:
		t.Fatal("marked")
	case <-time.After(200 * time.Millisecond):
	}
	reads, _ := p.state()
	assert.Zero(t, reads)
}
