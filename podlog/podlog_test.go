package podlog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func TestSplitTimestamp(t *testing.T) {
	for _, tc := range []struct {
		name, line, text string
		ts               time.Time
		ok               bool
	}{
		{name: "line", line: "2026-11-27T10:00:00.123456789Z hello world\n", text: "hello world\n", ts: time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC), ok: true},
		{name: "scanned line", line: "2026-11-27T10:00:00Z hello", text: "hello", ts: t0, ok: true},
		{name: "empty line", line: "2026-11-27T10:00:00Z\n", text: "\n", ts: t0, ok: true},
		{name: "empty scanned line", line: "2026-11-27T10:00:00Z", text: "", ts: t0, ok: true},
		{name: "no timestamp is kept whole", line: "not a time\n", text: "not a time\n"},
		{name: "empty", line: "", text: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, text, ok := SplitTimestamp(tc.line)
			require.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.text, text)
			assert.True(t, tc.ts.Equal(ts), "timestamp %s, want %s", ts, tc.ts)
		})
	}
}

func pod(name string, created time.Time, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func TestSortOrdersAttemptsByCreationThenName(t *testing.T) {
	pods := []*corev1.Pod{pod("c", t0.Add(time.Minute), ""), pod("b", t0, ""), pod("a", t0, "")}
	Sort(pods)
	assert.Equal(t, []string{"a", "b", "c"}, []string{pods[0].Name, pods[1].Name, pods[2].Name})

	items := []corev1.Pod{*pod("c", t0.Add(time.Minute), ""), *pod("b", t0, ""), *pod("a", t0, "")}
	SortItems(items)
	assert.Equal(t, []string{"a", "b", "c"}, []string{items[0].Name, items[1].Name, items[2].Name})
}

func TestEnded(t *testing.T) {
	for phase, want := range map[corev1.PodPhase]bool{
		corev1.PodPending: false, corev1.PodRunning: false, corev1.PodUnknown: false,
		corev1.PodSucceeded: true, corev1.PodFailed: true,
	} {
		assert.Equal(t, want, Ended(pod("p", t0, phase)), phase)
	}
}

func TestContainerStarted(t *testing.T) {
	p := pod("p", t0, corev1.PodPending)
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "sidecar", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{
		{Name: "worker", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
		{Name: "done", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}},
	}
	assert.True(t, ContainerStarted(p, "sidecar"), "an init container or sidecar that runs")
	assert.False(t, ContainerStarted(p, "worker"), "a waiting container has no logs")
	assert.True(t, ContainerStarted(p, "done"))
	assert.False(t, ContainerStarted(p, "unknown"), "no status, pod not running")
	p.Status.Phase = corev1.PodRunning
	assert.True(t, ContainerStarted(p, "unknown"), "no status yet, but the pod runs")
}

func TestContainerNamesInitFirst(t *testing.T) {
	p := pod("p", t0, "")
	p.Spec.InitContainers = []corev1.Container{{Name: "init"}, {Name: "sidecar"}}
	p.Spec.Containers = []corev1.Container{{Name: "worker"}}
	assert.Equal(t, []string{"init", "sidecar", "worker"}, ContainerNames(p))
	assert.Empty(t, ContainerNames(pod("empty", t0, "")))
}

func TestStateAndHeader(t *testing.T) {
	p := pod("p", t0, corev1.PodPending)
	assert.Equal(t, "Pending", State(p))
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "worker", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}
	assert.Equal(t, "Pending, ImagePullBackOff", State(p))
	assert.Equal(t, "==> attempt 2 (pod job-x-abc) <==", AttemptHeader(2, "job-x-abc"))
}
