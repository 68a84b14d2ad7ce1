package localcluster

import (
	"context"
	"os"
	"path/filepath"
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
