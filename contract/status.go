package contract

import (
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is where a FlowForge job is in its life.
type Phase string

// Phases. Succeeded, Failed, Cancelled and TimedOut are terminal.
const (
	// PhasePending: no pod of the Job is running yet.
	PhasePending Phase = "Pending"
	// PhaseRunning: a pod is running (ready).
	PhaseRunning Phase = "Running"
	// PhaseCancelling: a cancel was requested and the Job has not ended.
	PhaseCancelling Phase = "Cancelling"
	// PhaseSucceeded: the Job completed.
	PhaseSucceeded Phase = "Succeeded"
	// PhaseFailed: the Job failed (retries exhausted, a fatal exit code...).
	PhaseFailed Phase = "Failed"
	// PhaseCancelled: the Job ended because it was cancelled.
	PhaseCancelled Phase = "Cancelled"
	// PhaseTimedOut: the Job ran past its deadline, or its pods stayed
	// Pending too long.
	PhaseTimedOut Phase = "TimedOut"
)

// Terminal reports whether a job in this phase will not change any more.
func (p Phase) Terminal() bool {
	switch p {
	case PhaseSucceeded, PhaseFailed, PhaseCancelled, PhaseTimedOut:
		return true
	}
	return false
}

// Status is a FlowForge view of a Job.
type Status struct {
	ID         string `json:"id"`
	UserID     string `json:"userID"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
	Repository string `json:"repository,omitempty"`
	Branch     string `json:"branch,omitempty"`
	Profile    string `json:"profile,omitempty"`
	Template   string `json:"template,omitempty"`
	Phase      Phase  `json:"phase"`
	// Reason and Message explain the phase: the reason and message of the
	// Job's terminal condition, or of the cancel request.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`

	Created  *time.Time `json:"created,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`

	// Attempts counts the pods created so far: active, terminating,
	// succeeded and failed.
	Attempts  int32 `json:"attempts"`
	Active    int32 `json:"active"`
	Ready     int32 `json:"ready"`
	Succeeded int32 `json:"succeeded"`
	Failed    int32 `json:"failed"`

	CancelRequestedBy string     `json:"cancelRequestedBy,omitempty"`
	CancelRequestedAt *time.Time `json:"cancelRequestedAt,omitempty"`
	// PolicyRevision is the policy that hardened the Job (set by the webhook).
	PolicyRevision string `json:"policyRevision,omitempty"`
	// ResourceVersion of the Job this status was read from; WatchFrom can
	// resume from it.
	ResourceVersion string `json:"resourceVersion,omitempty"`

	// TTLSecondsAfterFinished is how long after it finished the Job is
	// deleted, and DeletedBy who deletes it (DeletedByFlowForge, after the
	// export, or DeletedByTTLController); both empty when the Job is kept.
	TTLSecondsAfterFinished *int64 `json:"ttlSecondsAfterFinished,omitempty"`
	DeletedBy               string `json:"deletedBy,omitempty"`
	// DeleteAfter is when a finished Job becomes due for deletion. The
	// FlowForge controller deletes it then, or as soon after as its export
	// is complete.
	DeleteAfter *time.Time `json:"deleteAfter,omitempty"`
}

// StatusOf derives a Status from a Job:
//
//   - Succeeded: the Complete condition is true.
//   - Failed condition true: TimedOut when the controller ended it for
//     PendingTimeout; Cancelled when it ended it as Cancelled, or when a
//     cancel was requested before the failure; TimedOut when the reason is
//     DeadlineExceeded; Failed otherwise.
//   - Not finished: Cancelling when a cancel was requested; Running when a
//     pod is active and ready (or, on API servers that do not report ready
//     pods, active and the Job started), or when an attempt has ended and
//     the Job goes on; Pending otherwise.
//
// A Job with a TTL also gets when it will be deleted (see TTLAfterFinished).
func StatusOf(job *batchv1.Job) Status {
	s := phaseOf(job)
	deletionOf(job, &s)
	return s
}

func phaseOf(job *batchv1.Job) Status {
	ann := job.Annotations
	s := Status{
		ID:                job.Labels[LabelJobID],
		UserID:            job.Labels[LabelUserID],
		Name:              job.Name,
		Namespace:         job.Namespace,
		Repository:        ann[AnnotationRepository],
		Branch:            ann[AnnotationBranch],
		Profile:           ann[AnnotationProfile],
		Template:          ann[AnnotationTemplate],
		Created:           timeOf(&job.CreationTimestamp),
		Started:           timeOf(job.Status.StartTime),
		Active:            job.Status.Active,
		Ready:             deref(job.Status.Ready),
		Succeeded:         job.Status.Succeeded,
		Failed:            job.Status.Failed,
		CancelRequestedBy: ann[AnnotationCancelRequestedBy],
		PolicyRevision:    ann[AnnotationPolicyRevision],
		ResourceVersion:   job.ResourceVersion,
	}
	// Pods that ended but that the Job controller has not yet counted in
	// succeeded or failed (it tracks them with finalizers) are attempts
	// too: without them a job flickers back to "Pending, 0 attempts"
	// between its pod's end and its terminal condition.
	uncounted := int32(0)
	if u := job.Status.UncountedTerminatedPods; u != nil {
		uncounted = int32(len(u.Succeeded) + len(u.Failed))
	}
	s.Attempts = s.Active + s.Succeeded + s.Failed + uncounted + deref(job.Status.Terminating)
	cancelRequested := false
	if raw, ok := ann[AnnotationCancelRequestedAt]; ok {
		cancelRequested = true
		if t, err := time.Parse(time.RFC3339, raw); err == nil {
			s.CancelRequestedAt = &t
		}
	}
	termination := ann[AnnotationTerminationReason]

	if c := condition(job, batchv1.JobComplete); c != nil {
		s.Phase, s.Reason, s.Message = PhaseSucceeded, c.Reason, c.Message
		s.Finished = timeOf(job.Status.CompletionTime)
		if s.Finished == nil {
			s.Finished = timeOf(&c.LastTransitionTime)
		}
		return s
	}
	if c := condition(job, batchv1.JobFailed); c != nil {
		s.Finished = timeOf(&c.LastTransitionTime)
		s.Reason, s.Message = c.Reason, c.Message
		switch {
		case termination == TerminationPendingTimeout:
			s.Phase, s.Reason = PhaseTimedOut, TerminationPendingTimeout
		case termination == TerminationCancelled:
			s.Phase = PhaseCancelled
			s.Reason, s.Message = TerminationCancelled, cancelMessage(ann, c.Message)
		case cancelRequested && (s.CancelRequestedAt == nil || s.Finished == nil || !s.CancelRequestedAt.After(*s.Finished)):
			s.Phase = PhaseCancelled
			s.Reason, s.Message = TerminationCancelled, cancelMessage(ann, c.Message)
		case c.Reason == batchv1.JobReasonDeadlineExceeded:
			s.Phase = PhaseTimedOut
		default:
			s.Phase = PhaseFailed
		}
		return s
	}
	switch {
	case cancelRequested:
		s.Phase, s.Reason, s.Message = PhaseCancelling, "CancelRequested", cancelMessage(ann, "")
	case s.Active > 0 && (s.Ready > 0 || job.Status.Ready == nil && s.Started != nil):
		s.Phase = PhaseRunning
	case s.Active == 0 && s.Succeeded+s.Failed+uncounted > 0:
		// Between attempts (a retry's back-off), or between the last pod's
		// end and the Job's terminal condition: still under way.
		s.Phase = PhaseRunning
	default:
		s.Phase = PhasePending
		if c := condition(job, batchv1.JobSuspended); c != nil {
			s.Reason, s.Message = c.Reason, c.Message
		}
	}
	return s
}

func cancelMessage(ann map[string]string, fallback string) string {
	by, reason := ann[AnnotationCancelRequestedBy], ann[AnnotationCancelReason]
	switch {
	case by == "" && reason == "":
		return fallback
	case reason == "":
		return "cancelled by " + by
	case by == "":
		return "cancelled: " + reason
	}
	return fmt.Sprintf("cancelled by %s: %s", by, reason)
}

func condition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if c := &job.Status.Conditions[i]; c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	v := t.Time
	return &v
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
