package testjobs

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flowforge/flowforge/contract"
)

// Image is the worker image of the Jobs this package builds: one the
// embedded policy admits.
const Image = "ghcr.io/flowforge/claude-worker:1.4.0"

// JobWrapper wraps a Job under construction.
type JobWrapper struct{ batchv1.Job }

// MakeJob returns an unlabelled Job with one "worker" container running
// Image: what any client could create.
func MakeJob(name, namespace string) *JobWrapper {
	return &JobWrapper{batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: Image}}},
		}},
	}}
}

// MakeAgentJob returns a FlowForge Job for job id: named as the renderer
// names it, labelled app=flowforge with the job-id and user-id labels (user
// "u-1" until UserID says otherwise).
func MakeAgentJob(id, namespace string) *JobWrapper {
	return MakeJob(contract.JobName(id), namespace).
		Label(contract.LabelApp, contract.AppName).
		Label(contract.LabelJobID, id).
		Label(contract.LabelUserID, "u-1")
}

// Obj returns the Job.
func (w *JobWrapper) Obj() *batchv1.Job { return &w.Job }

// Name sets the name.
func (w *JobWrapper) Name(name string) *JobWrapper {
	w.Job.Name = name
	return w
}

// Label sets a label on the Job.
func (w *JobWrapper) Label(key, value string) *JobWrapper {
	if w.Job.Labels == nil {
		w.Job.Labels = map[string]string{}
	}
	w.Job.Labels[key] = value
	return w
}

// Labels replaces the Job's labels.
func (w *JobWrapper) Labels(labels map[string]string) *JobWrapper {
	w.Job.Labels = labels
	return w
}

// JobID sets the job-id label.
func (w *JobWrapper) JobID(id string) *JobWrapper { return w.Label(contract.LabelJobID, id) }

// UserID sets the user-id label.
func (w *JobWrapper) UserID(user string) *JobWrapper { return w.Label(contract.LabelUserID, user) }

// Annotation sets an annotation on the Job.
func (w *JobWrapper) Annotation(key, value string) *JobWrapper {
	if w.Annotations == nil {
		w.Annotations = map[string]string{}
	}
	w.Annotations[key] = value
	return w
}

// PodAnnotations sets annotations on the pod template.
func (w *JobWrapper) PodAnnotations(annotations map[string]string) *JobWrapper {
	for k, v := range annotations {
		if w.Spec.Template.Annotations == nil {
			w.Spec.Template.Annotations = map[string]string{}
		}
		w.Spec.Template.Annotations[k] = v
	}
	return w
}

// UID sets the UID.
func (w *JobWrapper) UID(uid string) *JobWrapper {
	w.Job.UID = types.UID(uid)
	return w
}

// ResourceVersion sets the resource version.
func (w *JobWrapper) ResourceVersion(rv string) *JobWrapper {
	w.Job.ResourceVersion = rv
	return w
}

// Created sets the creation time.
func (w *JobWrapper) Created(t time.Time) *JobWrapper {
	w.CreationTimestamp = metav1.NewTime(t)
	return w
}

// Finalizers sets the Job's finalizers.
func (w *JobWrapper) Finalizers(finalizers ...string) *JobWrapper {
	w.Job.Finalizers = finalizers
	return w
}

// Image sets the image of the first container.
func (w *JobWrapper) Image(image string) *JobWrapper {
	w.Spec.Template.Spec.Containers[0].Image = image
	return w
}

// PodSpec edits the pod template's spec.
func (w *JobWrapper) PodSpec(edit func(*corev1.PodSpec)) *JobWrapper {
	edit(&w.Spec.Template.Spec)
	return w
}

// Deadline sets spec.activeDeadlineSeconds.
func (w *JobWrapper) Deadline(seconds int64) *JobWrapper {
	w.Spec.ActiveDeadlineSeconds = &seconds
	return w
}

// BackoffLimit sets spec.backoffLimit.
func (w *JobWrapper) BackoffLimit(n int32) *JobWrapper {
	w.Spec.BackoffLimit = &n
	return w
}

// Started sets status.startTime.
func (w *JobWrapper) Started(t time.Time) *JobWrapper {
	at := metav1.NewTime(t)
	w.Status.StartTime = &at
	return w
}

// Condition adds a true condition to the status.
func (w *JobWrapper) Condition(typ batchv1.JobConditionType, reason string, at time.Time) *JobWrapper {
	w.Status.Conditions = append(w.Status.Conditions, batchv1.JobCondition{
		Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: reason + " message",
		LastTransitionTime: metav1.NewTime(at),
	})
	return w
}

// Counts sets the status's active, ready, succeeded and failed pods.
func (w *JobWrapper) Counts(active, ready, succeeded, failed int32) *JobWrapper {
	w.Status.Active, w.Status.Ready, w.Status.Succeeded, w.Status.Failed = active, &ready, succeeded, failed
	return w
}

// Apply runs edits on the Job, for what the setters do not cover.
func (w *JobWrapper) Apply(edits ...func(*batchv1.Job)) *JobWrapper {
	for _, e := range edits {
		e(&w.Job)
	}
	return w
}
