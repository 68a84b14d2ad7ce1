package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Execution is the history record of one agent Job. Its name is the Job's
// job id and its namespace the Job's; its uid and creationTimestamp are
// the Job's. It outlives the Job: the controller records it while the Job
// runs and exports it before the Job is deleted.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type Execution struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ExecutionSpec   `json:"spec"`
	Status ExecutionStatus `json:"status"`
}

// ExecutionSpec is what was run, and by whom.
type ExecutionSpec struct {
	// JobName is the name of the batch/v1 Job.
	JobName string `json:"jobName"`
	// User is the Job's user-id label: who ran it.
	User string `json:"user,omitempty"`
	// Repository and Branch are the git repository and branch the agent
	// worked on.
	Repository string `json:"repository,omitempty"`
	Branch     string `json:"branch,omitempty"`
	// Template and Profile are the Job template and resource profile.
	Template string `json:"template,omitempty"`
	Profile  string `json:"profile,omitempty"`
	// PolicyRevision is the policy revision that admitted the Job.
	PolicyRevision string `json:"policyRevision,omitempty"`
}

// ExecutionStatus is how the Job went.
type ExecutionStatus struct {
	// Phase is Pending, Running, Succeeded, Failed, TimedOut or Cancelled.
	Phase string `json:"phase"`
	// Reason and Message explain the phase.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// CancelledBy is who cancelled the Job.
	CancelledBy string `json:"cancelledBy,omitempty"`
	// StartTime, CompletionTime: when the Job started and finished.
	StartTime      *metav1.Time `json:"startTime,omitempty"`
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// ExportTime is when the controller exported the Job (its history is
	// then complete and the Job may be deleted).
	ExportTime *metav1.Time `json:"exportTime,omitempty"`
	// LogsPrunedTime is when retention removed the Job's log archives.
	LogsPrunedTime *metav1.Time `json:"logsPrunedTime,omitempty"`
	// Attempts are the Job's pods, in order.
	// +listType=atomic
	Attempts []ExecutionAttempt `json:"attempts,omitempty"`
	// Events are the Kubernetes events of the Job and its pods, as
	// exported (only in get, not in list).
	// +listType=atomic
	Events []ExecutionEvent `json:"events,omitempty"`
}

// ExecutionAttempt is one pod of a Job.
type ExecutionAttempt struct {
	// Number counts the attempts from 1.
	Number int32 `json:"number"`
	// Pod, PodUID and Node name the pod and where it ran.
	Pod    string `json:"pod"`
	PodUID string `json:"podUID,omitempty"`
	Node   string `json:"node,omitempty"`
	// Phase is the pod's phase.
	Phase string `json:"phase"`
	// StartTime and CompletionTime of the pod.
	StartTime      *metav1.Time `json:"startTime,omitempty"`
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// ExitCode and Reason of the agent container.
	ExitCode *int32 `json:"exitCode,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// CountedByPodFailurePolicy tells whether the Job's podFailurePolicy
	// counted this failed attempt towards backoffLimit.
	CountedByPodFailurePolicy *bool `json:"countedByPodFailurePolicy,omitempty"`
	// PeakCPUMillicores is the attempt's highest CPU use, in millicores,
	// of its containers together, sampled from metrics.k8s.io while it
	// ran; absent when not measured.
	PeakCPUMillicores int64 `json:"peakCPUMillicores,omitempty"`
	// PeakMemoryBytes is the attempt's highest memory working set, in
	// bytes, of its containers together; absent when not measured.
	PeakMemoryBytes int64 `json:"peakMemoryBytes,omitempty"`
}

// ExecutionEvent is a Kubernetes event about the Job or its pods.
type ExecutionEvent struct {
	Time    metav1.Time `json:"time"`
	Type    string      `json:"type"`
	Reason  string      `json:"reason"`
	Object  string      `json:"object"`
	Message string      `json:"message"`
}

// ExecutionList is a list of executions, newest first.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type ExecutionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Execution `json:"items"`
}

// ExecutionLogOptions are the query parameters of executions/log.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type ExecutionLogOptions struct {
	metav1.TypeMeta `json:",inline"`

	// Attempt selects one attempt (from 1); 0 means every attempt, each
	// headed by a line naming it when there are several.
	Attempt int32 `json:"attempt,omitempty"`
	// Container selects one container; "" means every container.
	Container string `json:"container,omitempty"`
}
