package controller

import (
	"sync"
	"unique"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/podlog"
)

// The cache transforms below keep, of each watched Job and Pod, exactly
// what the controller reads (the reconciler, the export, log shipping,
// TTL deletion, the job-id claims and the state collector), so that the
// cache costs what the work needs rather than what the API server stores:
// the pod template of a Job and the spec of a Pod (containers, env,
// volumes, security contexts) are most of either, and nothing reads them.
// transform_test.go checks every field read survives, and that reconciles
// from slim objects equal those from full ones. A new field access in the
// controller must be added here (and to that test); one on the short path
// of exported Jobs (finalizer release, TTL deletion, the state collector)
// also to StubJob or StubPod.

// annotationLastApplied is kubectl's copy of the whole applied manifest:
// never read, and as large as the object.
const annotationLastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// podLabelsUnread are the labels of a Job's pods that nothing in the
// controller reads: the Job controller's pre-1.27 copies of
// batch.kubernetes.io/controller-uid and batch.kubernetes.io/job-name
// (which are read: the pod index and the orphan lookup), and the job-id and
// user-id the pod template carries (the controller reads the Job's).
var podLabelsUnread = map[string]bool{
	"controller-uid":     true,
	"job-name":           true,
	contract.LabelJobID:  true,
	contract.LabelUserID: true,
}

// slimLabels copies labels without those drop names, with the keys (and
// the selector's value, contract.AppName) interned: every cached Job and
// pod carries the same few keys, which the decoder allocates anew for
// each.
func slimLabels(in map[string]string, drop map[string]bool) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		if drop[k] {
			continue
		}
		if v == contract.AppName {
			v = unique.Make(v).Value()
		}
		out[unique.Make(k).Value()] = v
	}
	return out
}

// slimMeta keeps the identity, labels (the cache's and the pod list's
// selectors; a pod's without podLabelsUnread), annotations (the FlowForge
// contract: job-id, template, cancellation, termination, TTL …),
// finalizers, owner references (the Pod watch maps a pod to its Job by
// them) and timestamps; it drops managedFields. keepAnnotations is true
// for Jobs: pods' annotations are not read, nor are their unread labels.
func slimMeta(m *metav1.ObjectMeta, keepAnnotations bool) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name:                       m.Name,
		Namespace:                  m.Namespace,
		UID:                        m.UID,
		ResourceVersion:            m.ResourceVersion,
		Generation:                 m.Generation,
		CreationTimestamp:          m.CreationTimestamp,
		DeletionTimestamp:          m.DeletionTimestamp,
		DeletionGracePeriodSeconds: m.DeletionGracePeriodSeconds,
		Finalizers:                 m.Finalizers,
		OwnerReferences:            m.OwnerReferences,
	}
	if keepAnnotations {
		out.Labels = slimLabels(m.Labels, nil)
	} else {
		out.Labels = slimLabels(m.Labels, podLabelsUnread)
	}
	if keepAnnotations && len(m.Annotations) > 0 {
		out.Annotations = make(map[string]string, len(m.Annotations))
		for k, v := range m.Annotations {
			if k != annotationLastApplied {
				out.Annotations[k] = v
			}
		}
	}
	return out
}

// SlimJob is the cache transform for Jobs: metadata (without
// managedFields and kubectl's last-applied copy), the whole status, and
// the three spec fields read — activeDeadlineSeconds (cancellation and
// timeouts lower it), podFailurePolicy (whether a failed attempt counts)
// and ttlSecondsAfterFinished (whose deletion it is). The pod template is
// dropped. Objects of other types pass unchanged.
func SlimJob(in any) (any, error) {
	j, ok := in.(*batchv1.Job)
	if !ok {
		return in, nil
	}
	return &batchv1.Job{
		TypeMeta:   j.TypeMeta,
		ObjectMeta: slimMeta(&j.ObjectMeta, true),
		Spec: batchv1.JobSpec{
			ActiveDeadlineSeconds:   j.Spec.ActiveDeadlineSeconds,
			PodFailurePolicy:        j.Spec.PodFailurePolicy,
			TTLSecondsAfterFinished: j.Spec.TTLSecondsAfterFinished,
		},
		Status: j.Status,
	}, nil
}

// SlimPod is the cache transform for Pods: metadata without annotations
// (none is read) and managedFields; of the spec, the node and the
// container names (log following and archiving); of the status, the phase,
// reason, start time, conditions and each container's name and states
// (attempt records, pending reasons, failure policy, whether a container
// ran). Images, resources, IPs, volumes and the rest are dropped.
func SlimPod(in any) (any, error) {
	p, ok := in.(*corev1.Pod)
	if !ok {
		return in, nil
	}
	return &corev1.Pod{
		TypeMeta:   p.TypeMeta,
		ObjectMeta: slimMeta(&p.ObjectMeta, false),
		Spec: corev1.PodSpec{
			NodeName:       p.Spec.NodeName,
			InitContainers: containerNamesOnly(p.Spec.InitContainers),
			Containers:     containerNamesOnly(p.Spec.Containers),
		},
		Status: corev1.PodStatus{
			Phase:                 p.Status.Phase,
			Reason:                p.Status.Reason,
			StartTime:             p.Status.StartTime,
			Conditions:            slimConditions(p.Status.Conditions),
			InitContainerStatuses: slimStatuses(p.Status.InitContainerStatuses),
			ContainerStatuses:     slimStatuses(p.Status.ContainerStatuses),
		},
	}, nil
}

func containerNamesOnly(cs []corev1.Container) []corev1.Container {
	if cs == nil {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i := range cs {
		out[i].Name = cs[i].Name
	}
	return out
}

// slimConditions keeps each condition's type, status (failure policy,
// disruption), time (an attempt's end) and, for PodScheduled (the pending
// reason quotes it), message.
func slimConditions(cs []corev1.PodCondition) []corev1.PodCondition {
	if cs == nil {
		return nil
	}
	out := make([]corev1.PodCondition, len(cs))
	for i, c := range cs {
		out[i] = corev1.PodCondition{Type: c.Type, Status: c.Status, LastTransitionTime: c.LastTransitionTime}
		if c.Type == corev1.PodScheduled {
			out[i].Message = c.Message
		}
	}
	return out
}

func slimStatuses(ss []corev1.ContainerStatus) []corev1.ContainerStatus {
	if ss == nil {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(ss))
	for i, s := range ss {
		out[i] = corev1.ContainerStatus{
			Name:                 s.Name,
			State:                slimState(s.State),
			LastTerminationState: slimState(s.LastTerminationState),
		}
	}
	return out
}

// slimState keeps which state a container is in, the waiting reason and
// the termination's exit code, reason and times; it drops messages (a
// terminated container's message is its termination log, up to 4 KiB)
// and container IDs.
func slimState(s corev1.ContainerState) corev1.ContainerState {
	var out corev1.ContainerState
	if w := s.Waiting; w != nil {
		out.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason}
	}
	if r := s.Running; r != nil {
		out.Running = &corev1.ContainerStateRunning{StartedAt: r.StartedAt}
	}
	if t := s.Terminated; t != nil {
		out.Terminated = &corev1.ContainerStateTerminated{ExitCode: t.ExitCode, Signal: t.Signal, Reason: t.Reason, StartedAt: t.StartedAt, FinishedAt: t.FinishedAt}
	}
	return out
}

// ExportedJobs is the set of Jobs (by UID) this process has exported,
// finished, with every pod ended (podsSettled): all that is left to do
// for them is to release finalizers and, once their TTL is up, delete
// them. The cache transforms (JobTransform, PodTransform) cut such a Job
// and its ended pods down to a stub (StubJob, StubPod) at their next
// change (the finalizer releases are one), and the reconciler takes the
// short path for them, which reads nothing else. Entries go when the Job
// is deleted (Forget). The set lives in memory: after a restart, Jobs
// exported earlier are cached in full until they change again, and
// reconciled as before (see export). Safe for concurrent use; a nil set
// is empty.
type ExportedJobs struct {
	mu   sync.RWMutex
	uids map[types.UID]struct{}
}

// Add records that a Job has been exported, finished, its pods ended.
func (s *ExportedJobs) Add(uid types.UID) {
	if s == nil || uid == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.uids == nil {
		s.uids = map[types.UID]struct{}{}
	}
	s.uids[uid] = struct{}{}
}

// Has reports whether Add was called for uid (and Forget not since).
func (s *ExportedJobs) Has(uid types.UID) bool {
	if s == nil || uid == "" {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.uids[uid]
	return ok
}

// Len is the number of Jobs in the set.
func (s *ExportedJobs) Len() int {
	if s == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.uids)
}

// Forget removes a deleted Job (a *batchv1.Job, or the informer's
// tombstone of one): the handler of the Job informer's deletions.
func (s *ExportedJobs) Forget(obj any) {
	if s == nil {
		return
	}
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if o, ok := obj.(metav1.Object); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.uids, o.GetUID())
	}
}

// JobTransform is the cache transform for Jobs: StubJob for a finished
// Job in exported, SlimJob for every other.
func JobTransform(exported *ExportedJobs) toolscache.TransformFunc {
	return func(in any) (any, error) {
		if j, ok := in.(*batchv1.Job); ok && finished(j) && exported.Has(j.UID) {
			return StubJob(j), nil
		}
		return SlimJob(in)
	}
}

// PodTransform is the cache transform for Pods: StubPod for an ended pod
// (or one deleted before it was scheduled, which never runs) of a Job in
// exported, SlimPod for every other.
func PodTransform(exported *ExportedJobs) toolscache.TransformFunc {
	return func(in any) (any, error) {
		if p, ok := in.(*corev1.Pod); ok && podDone(p) && exported.Has(types.UID(p.Labels[batchv1.ControllerUidLabel])) {
			return StubPod(p), nil
		}
		return SlimPod(in)
	}
}

// podDone reports whether a pod will not change what its attempt record
// says: it ended, or was deleted before it was scheduled.
func podDone(p *corev1.Pod) bool {
	return podlog.Ended(p) || (p.DeletionTimestamp != nil && p.Spec.NodeName == "")
}

// StubJob is what the cache keeps of an exported Job (see ExportedJobs):
// what releasing its finalizer, deleting it at the end of its TTL and the
// state collector read — its metadata as SlimJob keeps it (labels,
// annotations, finalizers, deletion), spec.ttlSecondsAfterFinished, and of
// its status the pod counts, start and completion times and its terminal
// condition's type, status, reason and time (its phase and finish time).
// Condition messages, the other conditions, the failure policy and the
// deadline are dropped: nothing reads them once the Job is exported.
func StubJob(j *batchv1.Job) *batchv1.Job {
	out := &batchv1.Job{
		TypeMeta:   j.TypeMeta,
		ObjectMeta: slimMeta(&j.ObjectMeta, true),
		Spec:       batchv1.JobSpec{TTLSecondsAfterFinished: j.Spec.TTLSecondsAfterFinished},
		Status: batchv1.JobStatus{
			StartTime:      j.Status.StartTime,
			CompletionTime: j.Status.CompletionTime,
			Active:         j.Status.Active,
			Succeeded:      j.Status.Succeeded,
			Failed:         j.Status.Failed,
		},
	}
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			out.Status.Conditions = append(out.Status.Conditions, batchv1.JobCondition{Type: c.Type, Status: c.Status, Reason: c.Reason, LastTransitionTime: c.LastTransitionTime})
		}
	}
	return out
}

// StubPod is what the cache keeps of an ended pod of an exported Job (see
// ExportedJobs): its metadata as SlimPod keeps it (the owner reference
// maps it to its Job, the label indexes it, the finalizer is released),
// its node and its phase. Containers, conditions and container states
// are dropped: its attempt is recorded.
func StubPod(p *corev1.Pod) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   p.TypeMeta,
		ObjectMeta: slimMeta(&p.ObjectMeta, false),
		Spec:       corev1.PodSpec{NodeName: p.Spec.NodeName},
		Status:     corev1.PodStatus{Phase: p.Status.Phase, Reason: p.Status.Reason},
	}
}
