package contract_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/test/testjobs"
)

const testNS = "agents"

var (
	t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(2 * time.Minute)
)

func cond(typ batchv1.JobConditionType, reason string, at time.Time) batchv1.JobCondition {
	return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: reason + " message", LastTransitionTime: metav1.NewTime(at)}
}

type jobOpt func(*batchv1.Job)

func withAnnotations(kv ...string) jobOpt {
	return func(j *batchv1.Job) {
		for i := 0; i < len(kv); i += 2 {
			j.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func withConditions(cs ...batchv1.JobCondition) jobOpt {
	return func(j *batchv1.Job) { j.Status.Conditions = cs }
}

func withCounts(active, ready, succeeded, failed int32) jobOpt {
	return func(j *batchv1.Job) {
		j.Status.Active, j.Status.Ready, j.Status.Succeeded, j.Status.Failed = active, &ready, succeeded, failed
	}
}

func flowJob(id string, opts ...jobOpt) *batchv1.Job {
	w := testjobs.MakeAgentJob(id, testNS).ResourceVersion("7").Created(t0).
		Label(contract.LabelComponent, contract.ComponentWorker).
		Annotation(contract.AnnotationRepository, "acme/widgets").Annotation(contract.AnnotationBranch, "main").
		Annotation(contract.AnnotationProfile, "medium").Annotation(contract.AnnotationTemplate, "claude-code").
		Annotation(contract.AnnotationPolicyRevision, "2026-11-27-abc")
	for _, o := range opts {
		o(w.Obj())
	}
	return w.Obj()
}

func TestStatusOfPhases(t *testing.T) {
	cancelled := withAnnotations(contract.AnnotationCancelRequestedBy, "alice", contract.AnnotationCancelReason, "wrong branch",
		contract.AnnotationCancelRequestedAt, t1.Format(time.RFC3339))
	for _, tc := range []struct {
		name    string
		job     *batchv1.Job
		phase   contract.Phase
		reason  string
		message string
	}{
		{name: "new", job: flowJob("a"), phase: contract.PhasePending},
		{name: "pod pending", job: flowJob("a", withCounts(1, 0, 0, 0)), phase: contract.PhasePending},
		{name: "between attempts", job: flowJob("a", withCounts(0, 0, 0, 1)), phase: contract.PhaseRunning},
		{name: "last pod done, condition not yet set", job: flowJob("a", withCounts(0, 0, 1, 0)), phase: contract.PhaseRunning},
		{name: "last pod done, not yet counted", job: flowJob("a", func(j *batchv1.Job) {
			j.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Succeeded: []types.UID{"p1"}}
		}), phase: contract.PhaseRunning},
		{name: "suspended", job: flowJob("a", withConditions(cond(batchv1.JobSuspended, "JobSuspended", t1))), phase: contract.PhasePending, reason: "JobSuspended"},
		{name: "pod ready", job: flowJob("a", withCounts(1, 1, 0, 0)), phase: contract.PhaseRunning},
		{name: "started on a server without ready counts", job: flowJob("a", func(j *batchv1.Job) {
			j.Status.Active, j.Status.StartTime = 1, ptr.To(metav1.NewTime(t1))
		}), phase: contract.PhaseRunning},
		{name: "retrying after a failure", job: flowJob("a", withCounts(1, 1, 0, 1)), phase: contract.PhaseRunning},
		{name: "complete", job: flowJob("a", withCounts(0, 0, 1, 0), withConditions(cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached", t1), cond(batchv1.JobComplete, "CompletionsReached", t2))),
			phase: contract.PhaseSucceeded, reason: "CompletionsReached"},
		{name: "backoff limit", job: flowJob("a", withCounts(0, 0, 0, 3), withConditions(cond(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, t2))),
			phase: contract.PhaseFailed, reason: "BackoffLimitExceeded"},
		{name: "pod failure policy", job: flowJob("a", withConditions(cond(batchv1.JobFailed, batchv1.JobReasonPodFailurePolicy, t2))), phase: contract.PhaseFailed, reason: "PodFailurePolicy"},
		{name: "deadline", job: flowJob("a", withConditions(cond(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded, t2))), phase: contract.PhaseTimedOut, reason: "DeadlineExceeded"},
		{name: "pending timeout", job: flowJob("a", withAnnotations(contract.AnnotationTerminationReason, contract.TerminationPendingTimeout),
			withConditions(cond(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded, t2))), phase: contract.PhaseTimedOut, reason: "PendingTimeout"},
		{name: "cancel requested", job: flowJob("a", withCounts(1, 1, 0, 0), cancelled), phase: contract.PhaseCancelling, reason: "CancelRequested", message: "cancelled by alice: wrong branch"},
		{name: "cancelled by the controller", job: flowJob("a", cancelled, withAnnotations(contract.AnnotationTerminationReason, contract.TerminationCancelled),
			withConditions(cond(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded, t2))), phase: contract.PhaseCancelled, reason: "Cancelled", message: "cancelled by alice: wrong branch"},
		{name: "failed after the cancel request", job: flowJob("a", cancelled, withConditions(cond(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, t2))),
			phase: contract.PhaseCancelled, reason: "Cancelled"},
		{name: "failed before the cancel request", job: flowJob("a", cancelled, withConditions(cond(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded, t0))),
			phase: contract.PhaseTimedOut, reason: "DeadlineExceeded"},
		{name: "cancelled by the controller without a request", job: flowJob("a", withAnnotations(contract.AnnotationTerminationReason, contract.TerminationCancelled),
			withConditions(cond(batchv1.JobFailed, "Terminated", t2))), phase: contract.PhaseCancelled, reason: "Cancelled", message: "Terminated message"},
		{name: "completed although a cancel was requested", job: flowJob("a", cancelled, withConditions(cond(batchv1.JobComplete, "CompletionsReached", t2))), phase: contract.PhaseSucceeded, reason: "CompletionsReached"},
		{name: "a condition that is not true", job: flowJob("a", withConditions(batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionFalse})), phase: contract.PhasePending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := contract.StatusOf(tc.job)
			assert.Equal(t, tc.phase, s.Phase)
			assert.Equal(t, tc.reason, s.Reason)
			if tc.message != "" {
				assert.Equal(t, tc.message, s.Message)
			}
			assert.Equal(t, tc.phase.Terminal(), s.Finished != nil, "Finished is set exactly for terminal phases")
		})
	}
}

func TestStatusOfCountsUncountedPods(t *testing.T) {
	j := flowJob("a", withCounts(0, 0, 1, 1), func(j *batchv1.Job) {
		j.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Succeeded: []types.UID{"p3"}, Failed: []types.UID{"p4", "p5"}}
	})
	s := contract.StatusOf(j)
	assert.Equal(t, int32(5), s.Attempts, "counted and uncounted ended pods")
	assert.Equal(t, contract.PhaseRunning, s.Phase)
}

func TestStatusOfFields(t *testing.T) {
	job := flowJob("abc", withCounts(1, 1, 1, 2), func(j *batchv1.Job) {
		j.Status.Terminating = ptr.To[int32](1)
		j.Status.StartTime = ptr.To(metav1.NewTime(t1))
		j.Annotations[contract.AnnotationCancelRequestedBy] = "alice"
		j.Annotations[contract.AnnotationCancelRequestedAt] = t2.Format(time.RFC3339)
	})
	assert.Equal(t, contract.Status{
		ID: "abc", UserID: "u-1", Name: "claude-job-abc", Namespace: testNS,
		Repository: "acme/widgets", Branch: "main", Profile: "medium", Template: "claude-code",
		Phase: contract.PhaseCancelling, Reason: "CancelRequested", Message: "cancelled by alice",
		Created: &t0, Started: &t1,
		Attempts: 5, Active: 1, Ready: 1, Succeeded: 1, Failed: 2,
		CancelRequestedBy: "alice", CancelRequestedAt: &t2,
		PolicyRevision: "2026-11-27-abc", ResourceVersion: "7",
	}, contract.StatusOf(job))

	done := flowJob("abc", withConditions(cond(batchv1.JobComplete, "CompletionsReached", t2)), func(j *batchv1.Job) {
		j.Status.CompletionTime = ptr.To(metav1.NewTime(t1))
	})
	assert.Equal(t, &t1, contract.StatusOf(done).Finished, "the completion time when the Job has one")
}

func TestPhaseTerminal(t *testing.T) {
	for p, want := range map[contract.Phase]bool{
		contract.PhasePending: false, contract.PhaseRunning: false, contract.PhaseCancelling: false,
		contract.PhaseSucceeded: true, contract.PhaseFailed: true, contract.PhaseCancelled: true, contract.PhaseTimedOut: true,
	} {
		assert.Equal(t, want, p.Terminal(), p)
	}
}
