package history

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	historyv1alpha1 "github.com/flowforge/flowforge/history/apis/v1alpha1"
)

// Execution converts a Job record to its history.flowforge.io/v1alpha1
// object: named by the job id, in the Job's namespace, with the Job's UID
// and creation time.
func Execution(j Job) historyv1alpha1.Execution {
	e := historyv1alpha1.Execution{
		TypeMeta: metav1.TypeMeta{APIVersion: historyv1alpha1.SchemeGroupVersion.String(), Kind: historyv1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{
			Name:              j.ID,
			Namespace:         j.Namespace,
			UID:               types.UID(j.UID),
			CreationTimestamp: metav1.NewTime(j.Created),
		},
		Spec: historyv1alpha1.ExecutionSpec{
			JobName:        j.Name,
			User:           j.User,
			Repository:     j.Repository,
			Branch:         j.Branch,
			Template:       j.Template,
			Profile:        j.Profile,
			PolicyRevision: j.PolicyRevision,
		},
		Status: historyv1alpha1.ExecutionStatus{
			Phase:          j.Status,
			Reason:         j.Reason,
			Message:        j.Message,
			CancelledBy:    j.CancelledBy,
			StartTime:      metaTime(j.Started),
			CompletionTime: metaTime(j.Finished),
			ExportTime:     metaTime(j.Exported),
			LogsPrunedTime: metaTime(j.LogsPruned),
		},
	}
	for _, a := range j.Attempts {
		e.Status.Attempts = append(e.Status.Attempts, historyv1alpha1.ExecutionAttempt{
			Number:                    int32(a.Number), //nolint:gosec // attempt numbers are small
			Pod:                       a.Pod,
			PodUID:                    a.PodUID,
			Node:                      a.Node,
			Phase:                     a.Phase,
			StartTime:                 metaTime(a.Started),
			CompletionTime:            metaTime(a.Finished),
			ExitCode:                  a.ExitCode,
			Reason:                    a.Reason,
			CountedByPodFailurePolicy: a.Counted,
			PeakCPUMillicores:         a.PeakCPUMillicores,
			PeakMemoryBytes:           a.PeakMemoryBytes,
		})
	}
	for _, ev := range j.Events {
		e.Status.Events = append(e.Status.Events, historyv1alpha1.ExecutionEvent{
			Time: metav1.NewTime(ev.Time), Type: ev.Type, Reason: ev.Reason, Object: ev.Object, Message: ev.Message,
		})
	}
	return e
}

// JobFromExecution converts an execution back to a Job record (what the
// CLI prints).
func JobFromExecution(e *historyv1alpha1.Execution) Job {
	j := Job{
		UID:            string(e.UID),
		ID:             e.Name,
		Namespace:      e.Namespace,
		Name:           e.Spec.JobName,
		User:           e.Spec.User,
		Repository:     e.Spec.Repository,
		Branch:         e.Spec.Branch,
		Template:       e.Spec.Template,
		Profile:        e.Spec.Profile,
		PolicyRevision: e.Spec.PolicyRevision,
		Status:         e.Status.Phase,
		Reason:         e.Status.Reason,
		Message:        e.Status.Message,
		CancelledBy:    e.Status.CancelledBy,
		Created:        e.CreationTimestamp.Time,
		Started:        goTime(e.Status.StartTime),
		Finished:       goTime(e.Status.CompletionTime),
		Exported:       goTime(e.Status.ExportTime),
		LogsPruned:     goTime(e.Status.LogsPrunedTime),
	}
	for _, a := range e.Status.Attempts {
		j.Attempts = append(j.Attempts, Attempt{
			PodUID:   a.PodUID,
			JobUID:   string(e.UID),
			Number:   int(a.Number),
			Pod:      a.Pod,
			Node:     a.Node,
			Phase:    a.Phase,
			Started:  goTime(a.StartTime),
			Finished: goTime(a.CompletionTime),
			ExitCode: a.ExitCode,
			Reason:   a.Reason,
			Counted:  a.CountedByPodFailurePolicy,

			PeakCPUMillicores: a.PeakCPUMillicores,
			PeakMemoryBytes:   a.PeakMemoryBytes,
		})
	}
	for _, ev := range e.Status.Events {
		j.Events = append(j.Events, Event{Time: ev.Time.Time, Type: ev.Type, Reason: ev.Reason, Object: ev.Object, Message: ev.Message})
	}
	return j
}

func metaTime(t *time.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	mt := metav1.NewTime(*t)
	return &mt
}

func goTime(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}
