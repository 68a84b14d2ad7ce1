package controller

import (
	"time"

	"github.com/flowforge/flowforge/podlog"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/flowforge/flowforge/history"
)

// attemptOf describes one pod of a Job as an attempt record.
func attemptOf(job *batchv1.Job, pod *corev1.Pod, number int) history.Attempt {
	a := history.Attempt{
		PodUID: string(pod.UID),
		JobUID: string(job.UID),
		Number: number,
		Pod:    pod.Name,
		Node:   pod.Spec.NodeName,
		Phase:  string(pod.Status.Phase),
	}
	if pod.Status.StartTime != nil {
		t := pod.Status.StartTime.UTC()
		a.Started = &t
	}
	if term := mainTermination(pod); term != nil {
		code := term.ExitCode
		a.ExitCode = &code
		a.Reason = term.Reason
		if !term.FinishedAt.IsZero() {
			t := term.FinishedAt.UTC()
			a.Finished = &t
		}
	}
	if pod.Status.Reason != "" {
		a.Reason = pod.Status.Reason
	}
	if podlog.Ended(pod) && a.Finished == nil {
		t := lastTransition(pod)
		a.Finished = &t
	}
	if pod.Status.Phase == corev1.PodFailed {
		counted := countedByPolicy(job, pod)
		a.Counted = &counted
		if a.Reason == "" {
			a.Reason = "Failed"
		}
	}
	return a
}

// mainTermination returns the termination state of the first regular
// container that has one, preferring a non-zero exit.
func mainTermination(pod *corev1.Pod) *corev1.ContainerStateTerminated {
	var first *corev1.ContainerStateTerminated
	for i := range pod.Status.ContainerStatuses {
		t := pod.Status.ContainerStatuses[i].State.Terminated
		if t == nil {
			continue
		}
		if t.ExitCode != 0 {
			return t
		}
		if first == nil {
			first = t
		}
	}
	return first
}

func lastTransition(pod *corev1.Pod) time.Time {
	var last time.Time
	for _, c := range pod.Status.Conditions {
		if c.LastTransitionTime.After(last) {
			last = c.LastTransitionTime.Time
		}
	}
	return last.UTC()
}

// countedByPolicy applies the Job's podFailurePolicy to a failed pod, as
// the Job controller does: the first matching rule decides; Ignore does not
// count towards backoffLimit, every other action (or no match) does.
func countedByPolicy(job *batchv1.Job, pod *corev1.Pod) bool {
	if job.Spec.PodFailurePolicy == nil {
		return true
	}
	for _, rule := range job.Spec.PodFailurePolicy.Rules {
		if ruleMatches(rule, pod) {
			return rule.Action != batchv1.PodFailurePolicyActionIgnore
		}
	}
	return true
}

func ruleMatches(rule batchv1.PodFailurePolicyRule, pod *corev1.Pod) bool {
	if req := rule.OnExitCodes; req != nil {
		for _, cs := range pod.Status.ContainerStatuses {
			if req.ContainerName != nil && *req.ContainerName != cs.Name {
				continue
			}
			t := cs.State.Terminated
			if t == nil || t.ExitCode == 0 {
				continue
			}
			in := false
			for _, v := range req.Values {
				if v == t.ExitCode {
					in = true
				}
			}
			if (req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) == in {
				return true
			}
		}
		return false
	}
	for _, pattern := range rule.OnPodConditions {
		for _, c := range pod.Status.Conditions {
			status := pattern.Status
			if status == "" {
				status = corev1.ConditionTrue
			}
			if c.Type == pattern.Type && c.Status == status {
				return true
			}
		}
	}
	return false
}

// failureReason classifies a failed attempt for the retries metric, with
// a bounded set of values.
func failureReason(pod *corev1.Pod) string {
	if pod.Status.Reason != "" {
		return pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return "Disruption"
		}
	}
	if t := mainTermination(pod); t != nil && t.Reason != "" {
		return t.Reason
	}
	return "Unknown"
}
