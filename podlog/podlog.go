package podlog

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Compare orders a Job's pods as attempts: by creation, then by name, so
// attempt 1 is the first pod the Job controller created.
func Compare(a, b *corev1.Pod) int {
	return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
}

// Sort orders pods as attempts (see Compare), in place.
func Sort(pods []*corev1.Pod) {
	slices.SortStableFunc(pods, Compare)
}

// SortItems orders the items of a pod list as attempts (see Compare), in
// place.
func SortItems(pods []corev1.Pod) {
	slices.SortStableFunc(pods, func(a, b corev1.Pod) int { return Compare(&a, &b) })
}

// Ended reports whether a pod's containers will write nothing more: it
// succeeded or failed.
func Ended(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// ContainerStarted reports whether a container has run, so that it has logs
// to read. Without a status for it, a running pod counts as started.
func ContainerStarted(pod *corev1.Pod, container string) bool {
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range statuses {
			if cs.Name == container {
				return cs.State.Running != nil || cs.State.Terminated != nil
			}
		}
	}
	return pod.Status.Phase == corev1.PodRunning
}

// ContainerNames returns the names of a pod's init containers (sidecars
// among them) and then its app containers, in spec order: the containers
// whose logs belong to an attempt.
func ContainerNames(pod *corev1.Pod) []string {
	out := make([]string, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for _, c := range pod.Spec.InitContainers {
		out = append(out, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		out = append(out, c.Name)
	}
	return out
}

// State describes a pod for a person: its phase, and the reason a container
// is waiting if one is ("Pending, ImagePullBackOff").
func State(pod *corev1.Pod) string {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
			return fmt.Sprintf("%s, %s", pod.Status.Phase, cs.State.Waiting.Reason)
		}
	}
	return string(pod.Status.Phase)
}

// AttemptHeader is the line that introduces one attempt's logs when several
// attempts are shown or archived together.
func AttemptHeader(attempt int, pod string) string {
	return fmt.Sprintf("==> attempt %d (pod %s) <==", attempt, pod)
}

// SplitTimestamp splits "<RFC3339Nano> <text>", the format of pods/log with
// timestamps=true. A line without a valid timestamp comes back whole with
// ok false, so that a caller may keep it; a line that is only a timestamp
// has empty text.
func SplitTimestamp(line string) (ts time.Time, text string, ok bool) {
	stamp, rest, found := strings.Cut(line, " ")
	if !found {
		trimmed := strings.TrimRight(line, "\r\n")
		stamp, rest = trimmed, line[len(trimmed):]
	}
	ts, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil {
		return time.Time{}, line, false
	}
	return ts, rest, true
}
