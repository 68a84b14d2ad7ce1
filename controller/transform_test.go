package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/podlog"
)

// fatJob adds what the API server stores and the controller never reads:
// a realistic pod template, managedFields and kubectl's last-applied copy.
func fatJob(j *batchv1.Job) *batchv1.Job {
	j = j.DeepCopy()
	j.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", APIVersion: "batch/v1", FieldsType: "FieldsV1", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{}}`)}}}
	if j.Annotations == nil {
		j.Annotations = map[string]string{}
	}
	j.Annotations[annotationLastApplied] = `{"apiVersion":"batch/v1","kind":"Job"}`
	j.Spec.BackoffLimit = ptr.To[int32](2)
	j.Spec.Template = corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{contract.LabelApp: contract.AppName}},
		Spec:       fatPodSpec(),
	}
	return j
}

func fatPodSpec() corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		InitContainers: []corev1.Container{{
			Name: "clone", Image: "ghcr.io/flowforge/git:1", Command: []string{"git", "clone"},
		}},
		Containers: []corev1.Container{{
			Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0",
			Env:       []corev1.EnvVar{{Name: "TASK", Value: "fix the flaky test"}, {Name: "API_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "claude-secret"}, Key: "api-key"}}}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}},
			SecurityContext: &corev1.SecurityContext{
				RunAsNonRoot: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
		}},
		Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
}

// fatPod adds the spec, annotations and status details the API server
// stores for a pod, keeping the test builder's node and container names.
func fatPod(p *corev1.Pod) *corev1.Pod {
	p = p.DeepCopy()
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet", APIVersion: "v1", FieldsType: "FieldsV1", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{}}`)}}}
	p.Annotations = map[string]string{"flowforge.io/policy-revision": "abc", annotationLastApplied: "{}"}
	// The labels the Job controller and the pod template add, read or not.
	p.Labels = maps.Clone(p.Labels)
	p.Labels[batchv1.JobNameLabel] = "claude-job-x"
	p.Labels["job-name"] = "claude-job-x"
	p.Labels["controller-uid"] = p.Labels[batchv1.ControllerUidLabel]
	p.Labels[contract.LabelJobID] = "x"
	p.Labels[contract.LabelUserID] = "alice"
	p.Labels["flowforge.io/exported"] = "Succeeded.1"
	spec := fatPodSpec()
	spec.NodeName = p.Spec.NodeName
	spec.InitContainers = nil
	for i := range p.Spec.Containers {
		if i < len(spec.Containers) {
			spec.Containers[i].Name = p.Spec.Containers[i].Name
		}
	}
	spec.Containers = spec.Containers[:len(p.Spec.Containers)]
	p.Spec = spec
	p.Status.PodIP, p.Status.HostIP, p.Status.QOSClass = "10.0.0.7", "192.168.0.2", corev1.PodQOSBurstable
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodCompleted", Message: "long text", LastTransitionTime: metav1.NewTime(now.Add(-9 * time.Second))})
	for i := range p.Status.ContainerStatuses {
		cs := &p.Status.ContainerStatuses[i]
		cs.Image, cs.ImageID, cs.ContainerID = "ghcr.io/flowforge/claude-worker:1.4.0", "sha256:0123", "containerd://abc"
		if t := cs.State.Terminated; t != nil {
			t.Message, t.ContainerID = "termination log", "containerd://abc"
		}
		if w := cs.State.Waiting; w != nil {
			w.Message = "Back-off pulling image"
		}
	}
	return p
}

// jobReads is everything the controller reads of a Job: the reconciler,
// export, TTL deletion, claims and the state collector.
type jobReads struct {
	Meta                        metav1.ObjectMeta
	Status                      contract.Status
	Record                      history.Job
	Finished                    bool
	FinishedAt                  time.Time
	TTL                         time.Duration
	TTLBy                       string
	TTLOK                       bool
	ActiveDeadline              *int64
	PodFailurePolicy            *batchv1.PodFailurePolicy
	StartTime, CompletionTime   *metav1.Time
	Succeeded, Failed, Active   int32
	Conditions                  []batchv1.JobCondition
	CancelAt, CancelBy, Reason  string
	TerminationReason, TermMsg  string
	JobID, UserID, App, Profile string
}

func readJob(j *batchv1.Job) jobReads {
	st := contract.StatusOf(j)
	ttl, by, ok := contract.TTLAfterFinished(j, contract.AnnotationTTLSecondsAfterFinished)
	meta := *j.ObjectMeta.DeepCopy()
	meta.ManagedFields = nil
	delete(meta.Annotations, annotationLastApplied)
	return jobReads{
		Meta: meta, Status: st, Record: record(j, st),
		Finished: finished(j), FinishedAt: finishedAt(j), TTL: ttl, TTLBy: by, TTLOK: ok,
		ActiveDeadline: j.Spec.ActiveDeadlineSeconds, PodFailurePolicy: j.Spec.PodFailurePolicy,
		StartTime: j.Status.StartTime, CompletionTime: j.Status.CompletionTime,
		Succeeded: j.Status.Succeeded, Failed: j.Status.Failed, Active: j.Status.Active, Conditions: j.Status.Conditions,
		CancelAt: j.Annotations[contract.AnnotationCancelRequestedAt], CancelBy: j.Annotations[contract.AnnotationCancelRequestedBy], Reason: j.Annotations[contract.AnnotationCancelReason],
		TerminationReason: j.Annotations[contract.AnnotationTerminationReason], TermMsg: j.Annotations[AnnotationTerminationMessage],
		JobID: j.Labels[contract.LabelJobID], UserID: j.Labels[contract.LabelUserID], App: j.Labels[contract.LabelApp], Profile: j.Annotations[contract.AnnotationProfile],
	}
}

// podReads is everything the controller reads of a Pod, through the
// functions that read it, for a given Job (the failure policy).
type podReads struct {
	Name, Namespace, Node     string
	UID                       types.UID
	ResourceVersion           string
	Labels                    map[string]string
	Finalizers                []string
	Owners                    []metav1.OwnerReference
	Created                   metav1.Time
	Deleted                   *metav1.Time
	Phase                     corev1.PodPhase
	Terminal                  bool
	Attempt                   history.Attempt
	FailureReason, Pending    string
	Containers                []string
	Ran                       map[string]bool
	MainTermination           *corev1.ContainerStateTerminated
	Counted                   bool
	LastTransition, StartTime time.Time
}

// podLabelsRead are the pod labels the controller reads: the selector's,
// the pod index's (controller-uid), the orphan lookup's (job-name) and
// the exported label.
func podLabelsRead(p *corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, k := range []string{contract.LabelApp, batchv1.ControllerUidLabel, batchv1.JobNameLabel, "flowforge.io/exported"} {
		if v, ok := p.Labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

func readPod(job *batchv1.Job, p *corev1.Pod) podReads {
	r := podReads{
		Name: p.Name, Namespace: p.Namespace, Node: p.Spec.NodeName, UID: p.UID, ResourceVersion: p.ResourceVersion,
		Labels: podLabelsRead(p), Finalizers: p.Finalizers, Owners: p.OwnerReferences, Created: p.CreationTimestamp, Deleted: p.DeletionTimestamp,
		Phase: p.Status.Phase, Terminal: podlog.Ended(p), Attempt: attemptOf(job, p, 1),
		FailureReason: failureReason(p), Pending: pendingReason(p), Containers: podlog.ContainerNames(p), Ran: map[string]bool{},
		Counted: countedByPolicy(job, p), LastTransition: lastTransition(p),
	}
	if t := mainTermination(p); t != nil {
		r.MainTermination = &corev1.ContainerStateTerminated{ExitCode: t.ExitCode, Reason: t.Reason, FinishedAt: t.FinishedAt}
	}
	if p.Status.StartTime != nil {
		r.StartTime = p.Status.StartTime.Time
	}
	for _, c := range r.Containers {
		r.Ran[c] = containerRan(p, c)
	}
	return r
}

func slimJob(t *testing.T, j *batchv1.Job) *batchv1.Job {
	t.Helper()
	out, err := SlimJob(j)
	require.NoError(t, err)
	return out.(*batchv1.Job)
}

func slimPod(t *testing.T, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := SlimPod(p)
	require.NoError(t, err)
	return out.(*corev1.Pod)
}

func TestSlimJobKeepsEveryFieldTheControllerReads(t *testing.T) {
	cases := map[string]*batchv1.Job{
		"running": newJob("r", func(j *batchv1.Job) { j.Status.Active, j.Status.Ready = 1, ptr.To[int32](1) }),
		"pending": newJob("p", func(j *batchv1.Job) { j.Status.StartTime = nil }),
		"succeeded": newJob("s", finishedJob(batchv1.JobComplete, "CompletionsReached"), func(j *batchv1.Job) {
			j.Annotations[contract.AnnotationTemplate] = "claude-code"
			j.Annotations[contract.AnnotationProfile] = "standard"
			j.Annotations[contract.AnnotationPolicyRevision] = "rev-1"
			j.Status.Succeeded = 1
		}),
		"failed": newJob("f", finishedJob(batchv1.JobFailed, "BackoffLimitExceeded"), func(j *batchv1.Job) { j.Status.Failed = 2 }),
		"cancelling": newJob("c", func(j *batchv1.Job) {
			j.Annotations[contract.AnnotationCancelRequestedBy] = "alice"
			j.Annotations[contract.AnnotationCancelReason] = "wrong branch"
			j.Annotations[contract.AnnotationCancelRequestedAt] = now.Format(time.RFC3339)
		}),
		"cancelled": newJob("cd", finishedJob(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded), func(j *batchv1.Job) {
			j.Annotations[contract.AnnotationCancelRequestedBy] = "alice"
			j.Annotations[contract.AnnotationCancelRequestedAt] = now.Format(time.RFC3339)
			j.Annotations[contract.AnnotationTerminationReason] = contract.TerminationCancelled
			j.Annotations[AnnotationTerminationMessage] = "cancelled by alice"
		}),
		"pending timeout": newJob("pt", finishedJob(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded), func(j *batchv1.Job) {
			j.Annotations[contract.AnnotationTerminationReason] = contract.TerminationPendingTimeout
		}),
		"ttl annotation, exported": newJob("t", withTTL("3600"), finishedAgo(time.Minute), func(j *batchv1.Job) { j.Finalizers = nil }),
		"built-in ttl":             newJob("bt", finishedAgo(time.Minute), func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](60) }),
		"deleted": newJob("d", func(j *batchv1.Job) {
			j.DeletionTimestamp = ptr.To(metav1.NewTime(now))
			j.UID = "uid-other"
			j.ResourceVersion = "42"
		}),
	}
	for name, job := range cases {
		t.Run(name, func(t *testing.T) {
			full := fatJob(job)
			slim := slimJob(t, full)
			assert.Equal(t, readJob(full), readJob(slim))
			assert.Empty(t, slim.ManagedFields)
			assert.NotContains(t, slim.Annotations, annotationLastApplied)
			assert.Empty(t, slim.Spec.Template.Spec.Containers, "the pod template is not cached")
			assert.Nil(t, slim.Spec.BackoffLimit)
			assert.Equal(t, full.Spec.TTLSecondsAfterFinished, slim.Spec.TTLSecondsAfterFinished)
			assert.Equal(t, full.Status, slim.Status, "the whole status is kept")
			assert.NotContains(t, full.Annotations, "", "the full object is not changed")
			assert.Contains(t, full.Annotations, annotationLastApplied, "the transform does not change its input")
		})
	}
	other := &corev1.ConfigMap{}
	out, err := SlimJob(other)
	require.NoError(t, err)
	assert.Same(t, other, out, "other types pass unchanged")
}

func TestSlimPodKeepsEveryFieldTheControllerReads(t *testing.T) {
	job := newJob("pods")
	disrupted := newPod(job, "disrupted", corev1.PodFailed, ptr.To[int32](137), now.Add(-40*time.Second))
	disrupted.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-20 * time.Second))}}
	evicted := newPod(job, "evicted", corev1.PodFailed, ptr.To[int32](1), now.Add(-40*time.Second))
	evicted.Status.Reason = "Evicted"
	unschedulable := newPod(job, "unsched", corev1.PodPending, nil, now.Add(-40*time.Second))
	unschedulable.Spec.NodeName = ""
	unschedulable.Status.ContainerStatuses = nil
	unschedulable.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available"}}
	restarted := newPod(job, "restarted", corev1.PodRunning, nil, now.Add(-40*time.Second))
	restarted.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
	withInit := newPod(job, "init", corev1.PodPending, nil, now.Add(-40*time.Second))
	withInit.Spec.InitContainers = []corev1.Container{{Name: "clone", Image: "git"}}
	withInit.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "clone", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "not found"}}}}
	deleted := newPod(job, "deleted", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
	deleted.DeletionTimestamp = ptr.To(metav1.NewTime(now))

	cases := map[string]*corev1.Pod{
		"running":       newPod(job, "running", corev1.PodRunning, nil, now.Add(-40*time.Second)),
		"succeeded":     newPod(job, "ok", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second)),
		"failed":        newPod(job, "failed", corev1.PodFailed, ptr.To[int32](2), now.Add(-40*time.Second)),
		"image pull":    newPod(job, "pull", corev1.PodPending, nil, now.Add(-40*time.Second)),
		"disrupted":     disrupted,
		"evicted":       evicted,
		"unschedulable": unschedulable,
		"restarted":     restarted,
		"init":          withInit,
		"deleted":       deleted,
	}
	for name, pod := range cases {
		t.Run(name, func(t *testing.T) {
			full := fatPod(pod)
			if name == "init" {
				full.Spec.InitContainers = pod.Spec.InitContainers
				full.Status.InitContainerStatuses = pod.Status.InitContainerStatuses
			}
			slim := slimPod(t, full)
			assert.Equal(t, readPod(job, full), readPod(job, slim))
			assert.Empty(t, slim.ManagedFields)
			assert.Empty(t, slim.Annotations)
			for _, c := range append(append([]corev1.Container{}, slim.Spec.InitContainers...), slim.Spec.Containers...) {
				assert.Equal(t, corev1.Container{Name: c.Name}, c, "only container names are kept")
			}
			assert.Empty(t, slim.Spec.Volumes)
			assert.Empty(t, slim.Status.PodIP)
			for _, cs := range slim.Status.ContainerStatuses {
				assert.Empty(t, cs.Image)
				if cs.State.Terminated != nil {
					assert.Empty(t, cs.State.Terminated.Message, "the termination log is not cached")
				}
			}
			assert.Equal(t, podLabelsRead(full), slim.Labels, "of the labels, those read")
			assert.NotEmpty(t, full.Annotations, "the transform does not change its input")
		})
	}
	other := &corev1.ConfigMap{}
	out, err := SlimPod(other)
	require.NoError(t, err)
	assert.Same(t, other, out)
}

// newSlimEnv is newEnv whose client serves every Job and Pod through the
// cache transforms, as the manager's cache does: writes reach the full
// objects, reads see the slim ones (and the stubs of exported Jobs and
// their pods, with the reconciler's ExportedJobs).
func newSlimEnv(t *testing.T, objs ...client.Object) *env {
	t.Helper()
	e, _ := newCacheEnv(t, objs...)
	return e
}

// stubReads counts the stubs newCacheEnv's client served.
type stubReads struct{ jobs, pods int }

func newCacheEnv(t *testing.T, objs ...client.Object) (*env, *stubReads) {
	t.Helper()
	e := newEnv(t, objs...)
	exported := &ExportedJobs{}
	e.r.Exported = exported
	jobT, podT := JobTransform(exported), PodTransform(exported)
	stubs := &stubReads{}
	slimJob := func(j *batchv1.Job) {
		s, _ := jobT(j)
		if len(s.(*batchv1.Job).Spec.Template.Spec.Containers) == 0 && s.(*batchv1.Job).Spec.PodFailurePolicy == nil && j.Spec.PodFailurePolicy != nil {
			stubs.jobs++
		}
		*j = *s.(*batchv1.Job)
	}
	slimPod := func(p *corev1.Pod) {
		s, _ := podT(p)
		if len(s.(*corev1.Pod).Spec.Containers) == 0 && len(p.Spec.Containers) > 0 {
			stubs.pods++
		}
		*p = *s.(*corev1.Pod)
	}
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	raw := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithIndex(&corev1.Pod{}, PodJobUIDField, podJobUID).WithStatusSubresource(&batchv1.Job{}, &corev1.Pod{}).Build()
	c := interceptor.NewClient(raw, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := c.Get(ctx, key, obj, opts...); err != nil {
				return err
			}
			switch o := obj.(type) {
			case *batchv1.Job:
				slimJob(o)
			case *corev1.Pod:
				slimPod(o)
			}
			return nil
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if err := c.List(ctx, list, opts...); err != nil {
				return err
			}
			switch l := list.(type) {
			case *batchv1.JobList:
				for i := range l.Items {
					slimJob(&l.Items[i])
				}
			case *corev1.PodList:
				for i := range l.Items {
					slimPod(&l.Items[i])
				}
			}
			return nil
		},
	})
	e.client, e.r.Client = raw, c
	return e, stubs
}

// outcome is everything a reconcile leaves behind: its results, the
// events it recorded, the history (records, attempts, events, log
// archives) and the objects in the API server.
type outcome struct {
	Results []string
	Events  []string
	Record  string
	Logs    []string
	Objects []string
}

func observe(t *testing.T, e *env, job *batchv1.Job, results []string) outcome {
	t.Helper()
	ctx := context.Background()
	o := outcome{Results: results, Events: e.events()}
	rec, err := e.store.JobByUID(ctx, string(job.UID))
	if err == nil {
		b, err := json.Marshal(rec)
		require.NoError(t, err)
		o.Record = string(b)
	}
	archives, err := e.store.LogArchives(ctx, string(job.UID))
	require.NoError(t, err)
	for _, a := range archives {
		text, err := a.Text()
		require.NoError(t, err)
		o.Logs = append(o.Logs, fmt.Sprintf("%s/%s: %q", a.Pod, a.Container, text))
	}
	var jl batchv1.JobList
	require.NoError(t, e.client.List(ctx, &jl))
	var pl corev1.PodList
	require.NoError(t, e.client.List(ctx, &pl))
	for _, obj := range append(toObjects(jl.Items), podObjects(pl.Items)...) {
		b, err := json.Marshal(obj)
		require.NoError(t, err)
		o.Objects = append(o.Objects, string(b))
	}
	return o
}

func toObjects(items []batchv1.Job) []any {
	out := make([]any, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

func podObjects(items []corev1.Pod) []any {
	out := make([]any, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// TestReconcileFromSlimObjectsEqualsFromFullObjects runs the reconciler
// test cases (the same objects and steps) once with the full objects and
// once with every Job and Pod served through the cache transforms, and
// requires the same results, events, history and API objects. The full
// run has no ExportedJobs (every reconcile takes the whole path); in the
// cached run, a Job exported with every pod ended is served as stubs
// from then on (its reconciles take the short path), which the cases
// that reconcile after such an export check.
func TestReconcileFromSlimObjectsEqualsFromFullObjects(t *testing.T) {
	type step func(e *env) string
	rec := func(name string) step {
		return func(e *env) string {
			res, err := e.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "agents", Name: name}})
			return fmt.Sprintf("%+v %v", res, err)
		}
	}
	wait := func(d time.Duration) step { return func(e *env) string { e.clock.Step(d); return "" } }
	logsOf := func(pod, container, text string) func(*env) {
		return func(e *env) { e.logs.logs[pod+"/"+container] = text }
	}
	type tc struct {
		job   *batchv1.Job
		pods  []*corev1.Pod
		setup func(*env)
		steps []step
		// stubs: reconciles after the export read stubs of the Job and
		// its pods.
		stubs bool
	}
	cases := map[string]func() tc{
		"running": func() tc {
			job := newJob("run1", func(j *batchv1.Job) { j.Status.Active, j.Status.Ready = 1, ptr.To[int32](1) })
			return tc{job: job, pods: []*corev1.Pod{newPod(job, "run1-a", corev1.PodRunning, nil, now.Add(-40*time.Second))}, steps: []step{rec(job.Name), rec(job.Name)}}
		},
		"retries": func() tc {
			job := newJob("retry1")
			return tc{job: job, pods: []*corev1.Pod{
				newPod(job, "retry1-a", corev1.PodFailed, ptr.To[int32](3), now.Add(-40*time.Second)),
				newPod(job, "retry1-b", corev1.PodRunning, nil, now.Add(-20*time.Second)),
			}, steps: []step{rec(job.Name), rec(job.Name)}}
		},
		"cancel": func() tc {
			job := newJob("cancel1", func(j *batchv1.Job) {
				j.Annotations[contract.AnnotationCancelRequestedBy] = "alice"
				j.Annotations[contract.AnnotationCancelReason] = "wrong branch"
				j.Annotations[contract.AnnotationCancelRequestedAt] = now.Format(time.RFC3339)
			})
			return tc{job: job, pods: []*corev1.Pod{newPod(job, "cancel1-a", corev1.PodRunning, nil, now.Add(-40*time.Second))}, steps: []step{rec(job.Name), rec(job.Name)}}
		},
		"cancel before start": func() tc {
			job := newJob("cancel2", func(j *batchv1.Job) {
				j.Status.StartTime = nil
				j.Annotations[contract.AnnotationCancelRequestedAt] = now.Format(time.RFC3339)
			})
			return tc{job: job, steps: []step{rec(job.Name)}}
		},
		"pending timeout": func() tc {
			job := newJob("pend1")
			return tc{job: job, pods: []*corev1.Pod{newPod(job, "pend1-a", corev1.PodPending, nil, now.Add(-100*time.Second))}, steps: []step{rec(job.Name), wait(201 * time.Second), rec(job.Name)}}
		},
		"export": func() tc {
			job := newJob("done1", finishedJob(batchv1.JobComplete, "CompletionsReached"), func(j *batchv1.Job) { j.Status.Succeeded = 1 })
			return tc{job: job, pods: []*corev1.Pod{newPod(job, "done1-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))},
				setup: logsOf("done1-a", "worker", "2026-11-27T11:59:30.000000001Z cloning\n2026-11-27T11:59:31.000000001Z done\n"),
				steps: []step{rec(job.Name), rec(job.Name)}, stubs: true}
		},
		"export of failed attempts under a failure policy": func() tc {
			job := newJob("evs", finishedJob(batchv1.JobFailed, "BackoffLimitExceeded"), func(j *batchv1.Job) { j.Status.Failed = 2 })
			disrupted := newPod(job, "evs-a", corev1.PodFailed, ptr.To[int32](137), now.Add(-40*time.Second))
			disrupted.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}
			return tc{job: job, pods: []*corev1.Pod{disrupted, newPod(job, "evs-b", corev1.PodFailed, ptr.To[int32](2), now.Add(-30*time.Second))},
				setup: logsOf("evs-b", "worker", "2026-11-27T11:59:40Z failing\n"),
				steps: []step{rec(job.Name), rec(job.Name)}, stubs: true}
		},
		"export waits for terminating pods": func() tc {
			job := newJob("wait1", finishedJob(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded))
			return tc{job: job, pods: []*corev1.Pod{newPod(job, "wait1-a", corev1.PodRunning, nil, now.Add(-40*time.Second))}, steps: []step{rec(job.Name), wait(3 * time.Minute), rec(job.Name)}}
		},
		"deleted before finishing": func() tc {
			job := newJob("gone1", func(j *batchv1.Job) { j.DeletionTimestamp = ptr.To(metav1.NewTime(now)) })
			return tc{job: job, steps: []step{rec(job.Name)}}
		},
		"not FlowForge's": func() tc {
			job := newJob("other", func(j *batchv1.Job) { j.Labels[contract.LabelApp] = "something" })
			return tc{job: job, steps: []step{rec(job.Name), rec("missing")}}
		},
		"unscheduled deleted pod": func() tc {
			job := newJob("unsched", finishedJob(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded), func(j *batchv1.Job) { j.Status.Failed = 1 })
			pod := newPod(job, "unsched-a", corev1.PodPending, nil, now.Add(-20*time.Second))
			pod.Spec.NodeName = ""
			pod.DeletionTimestamp = ptr.To(metav1.NewTime(now.Add(-5 * time.Second)))
			return tc{job: job, pods: []*corev1.Pod{pod}, steps: []step{rec(job.Name)}}
		},
		"ttl deletion": func() tc {
			job := newJob("ttl1", withTTL("60"), finishedAgo(10*time.Second), func(j *batchv1.Job) { j.Status.Succeeded = 1 })
			return tc{job: job, pods: []*corev1.Pod{newPod(job, "ttl1-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))},
				steps: []step{rec(job.Name), wait(time.Minute), rec(job.Name), rec(job.Name)}, stubs: true}
		},
		"built-in ttl is left alone": func() tc {
			job := newJob("ttl2", finishedAgo(10*time.Second), func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](0); j.Status.Succeeded = 1 })
			return tc{job: job, pods: []*corev1.Pod{newPod(job, "ttl2-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))}, steps: []step{rec(job.Name), rec(job.Name)}, stubs: true}
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			stubs := &stubReads{}
			run := func(slim bool) outcome {
				c := build()
				objs := []client.Object{fatJob(c.job)}
				for _, p := range c.pods {
					objs = append(objs, fatPod(p))
				}
				e := newEnv(t, objs...)
				if slim {
					e, stubs = newCacheEnv(t, objs...)
				}
				if c.setup != nil {
					c.setup(e)
				}
				var results []string
				for _, s := range c.steps {
					results = append(results, s(e))
				}
				return observe(t, e, c.job, results)
			}
			full, slim := run(false), run(true)
			assert.NotEmpty(t, full.Results)
			assert.Equal(t, full, slim)
			if build().stubs {
				assert.Positive(t, stubs.jobs, "reconciles after the export read a stub of the Job")
				assert.Equal(t, stubs.pods > 0, len(build().pods) > 0, "and stubs of its pods")
			} else {
				assert.Zero(t, stubs.jobs+stubs.pods, "no stub before the export, nor of a Job exported without every pod")
			}
		})
	}
}

func TestPodJobUIDIndexesPodsByTheirJob(t *testing.T) {
	job := newJob("idx")
	pod := newPod(job, "idx-a", corev1.PodRunning, nil, now)
	assert.Equal(t, []string{string(job.UID)}, podJobUID(pod))
	assert.Equal(t, []string{string(job.UID)}, podJobUID(slimPod(t, fatPod(pod))), "the slim pod keeps the label the index reads")
	assert.Nil(t, podJobUID(&corev1.Pod{}), "a pod without a Job is not indexed")
}

func TestProfilingHandlersAreOptIn(t *testing.T) {
	assert.Nil(t, profilingHandlers(false))
	h := profilingHandlers(true)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/profile", "/debug/pprof/trace"} {
		assert.Contains(t, h, path)
	}
}

// exportedJobReads is what the controller reads of an exported Job whose
// pods have all ended: the short path of its reconciles (finalizers, TTL
// deletion), the informer's deletion handler, and the state collector.
type exportedJobReads struct {
	Name, Namespace, ResourceVersion string
	UID                              types.UID
	Labels, Annotations              map[string]string
	Finalizers                       []string
	Created                          metav1.Time
	Deleted                          *metav1.Time
	Phase                            contract.Phase
	Finished, Settled                bool
	FinishedAt                       time.Time
	TTL                              time.Duration
	TTLBy                            string
	TTLOK                            bool
	Selected                         bool
}

func readExportedJob(j *batchv1.Job, pods []corev1.Pod) exportedJobReads {
	ttl, by, ok := contract.TTLAfterFinished(j, contract.AnnotationTTLSecondsAfterFinished)
	ann := map[string]string{}
	for k, v := range j.Annotations {
		if k != annotationLastApplied {
			ann[k] = v
		}
	}
	return exportedJobReads{
		Name: j.Name, Namespace: j.Namespace, ResourceVersion: j.ResourceVersion, UID: j.UID,
		Labels: j.Labels, Annotations: ann, Finalizers: j.Finalizers, Created: j.CreationTimestamp, Deleted: j.DeletionTimestamp,
		Phase: contract.StatusOf(j).Phase, Finished: finished(j), Settled: podsSettled(j, pods), FinishedAt: finishedAt(j),
		TTL: ttl, TTLBy: by, TTLOK: ok, Selected: Settings{}.selects(j),
	}
}

// exportedPodReads is what the controller reads of an ended pod of such a
// Job: the Pod watch's owner mapping, the pod index, the finalizer
// release and podsSettled.
type exportedPodReads struct {
	Name, Namespace, ResourceVersion, Node string
	UID                                    types.UID
	Labels                                 map[string]string
	Finalizers                             []string
	Owners                                 []metav1.OwnerReference
	Deleted                                *metav1.Time
	Phase                                  corev1.PodPhase
	Ended, Done                            bool
	IndexedUnder                           []string
}

func readExportedPod(p *corev1.Pod) exportedPodReads {
	return exportedPodReads{
		Name: p.Name, Namespace: p.Namespace, ResourceVersion: p.ResourceVersion, Node: p.Spec.NodeName, UID: p.UID,
		Labels: podLabelsRead(p), Finalizers: p.Finalizers, Owners: p.OwnerReferences, Deleted: p.DeletionTimestamp,
		Phase: p.Status.Phase, Ended: podlog.Ended(p), Done: podDone(p), IndexedUnder: podJobUID(p),
	}
}

func TestStubJobKeepsWhatTheControllerReadsOfAnExportedJob(t *testing.T) {
	exported := func(j *batchv1.Job) { j.Finalizers = nil; j.ResourceVersion = "7" }
	cases := map[string]*batchv1.Job{
		"succeeded": newJob("s", finishedJob(batchv1.JobComplete, "CompletionsReached"), exported, func(j *batchv1.Job) {
			j.Status.Succeeded = 1
			// The Job controller's other conditions come first.
			j.Status.Conditions = append([]batchv1.JobCondition{{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", Message: "Reached expected number of succeeded pods"}}, j.Status.Conditions...)
		}),
		"succeeded, no completion time": newJob("sn", finishedJob(batchv1.JobComplete, "CompletionsReached"), func(j *batchv1.Job) { j.Status.CompletionTime = nil; j.Status.Succeeded = 1 }),
		"failed":                        newJob("f", finishedJob(batchv1.JobFailed, "BackoffLimitExceeded"), exported, func(j *batchv1.Job) { j.Status.Failed = 3 }),
		"timed out":                     newJob("to", finishedJob(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded), exported, func(j *batchv1.Job) { j.Status.Failed = 1 }),
		"cancelled": newJob("cd", finishedJob(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded), exported, func(j *batchv1.Job) {
			j.Annotations[contract.AnnotationCancelRequestedBy] = "alice"
			j.Annotations[contract.AnnotationCancelRequestedAt] = now.Add(-time.Minute).Format(time.RFC3339)
			j.Annotations[contract.AnnotationTerminationReason] = contract.TerminationCancelled
		}),
		"cancel requested, finished first": newJob("cf", finishedJob(batchv1.JobFailed, "BackoffLimitExceeded"), exported, func(j *batchv1.Job) {
			j.Annotations[contract.AnnotationCancelRequestedAt] = now.Format(time.RFC3339)
		}),
		"pending timeout": newJob("pt", finishedJob(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded), exported, func(j *batchv1.Job) {
			j.Annotations[contract.AnnotationTerminationReason] = contract.TerminationPendingTimeout
		}),
		"ttl annotation":       newJob("t", withTTL("3600"), finishedAgo(time.Minute), exported),
		"built-in ttl":         newJob("bt", finishedAgo(time.Minute), exported, func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](60) }),
		"finalizer still held": newJob("fh", finishedJob(batchv1.JobComplete, "CompletionsReached"), func(j *batchv1.Job) { j.Status.Succeeded = 1 }),
		"being deleted":        newJob("d", withTTL("0"), finishedAgo(time.Minute), exported, func(j *batchv1.Job) { j.DeletionTimestamp = ptr.To(metav1.NewTime(now)) }),
	}
	for name, job := range cases {
		t.Run(name, func(t *testing.T) {
			full := fatJob(job)
			for i := range full.Status.Conditions {
				full.Status.Conditions[i].Message = "the Job controller's words"
				full.Status.Conditions[i].LastProbeTime = metav1.NewTime(now)
			}
			pods := []corev1.Pod{*newPod(job, job.Name+"-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))}
			stub := StubJob(full)
			assert.Equal(t, readExportedJob(full, pods), readExportedJob(stub, pods))
			assert.Nil(t, stub.Spec.PodFailurePolicy, "the failure policy is not kept")
			assert.Nil(t, stub.Spec.ActiveDeadlineSeconds)
			assert.Empty(t, stub.Spec.Template.Spec.Containers)
			assert.Empty(t, stub.ManagedFields)
			require.Len(t, stub.Status.Conditions, 1, "the terminal condition only")
			assert.Empty(t, stub.Status.Conditions[0].Message)
			assert.NotEmpty(t, full.Status.Conditions[len(full.Status.Conditions)-1].Message, "the transform does not change its input")
		})
	}
}

func TestStubPodKeepsWhatTheControllerReadsOfAnEndedPod(t *testing.T) {
	job := newJob("stubpods")
	released := func(p *corev1.Pod) *corev1.Pod { p.Finalizers = nil; return p }
	evicted := newPod(job, "evicted", corev1.PodFailed, ptr.To[int32](1), now.Add(-40*time.Second))
	evicted.Status.Reason = "Evicted"
	deleted := newPod(job, "deleted", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
	deleted.DeletionTimestamp = ptr.To(metav1.NewTime(now))
	unscheduled := newPod(job, "unsched", corev1.PodPending, nil, now.Add(-40*time.Second))
	unscheduled.Spec.NodeName = ""
	unscheduled.DeletionTimestamp = ptr.To(metav1.NewTime(now))
	cases := map[string]*corev1.Pod{
		"succeeded":                  newPod(job, "ok", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second)),
		"succeeded, released":        released(newPod(job, "okr", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))),
		"failed":                     newPod(job, "failed", corev1.PodFailed, ptr.To[int32](2), now.Add(-40*time.Second)),
		"evicted":                    evicted,
		"being deleted":              deleted,
		"deleted before it was sent": unscheduled,
	}
	for name, pod := range cases {
		t.Run(name, func(t *testing.T) {
			full := fatPod(pod)
			stub := StubPod(full)
			assert.Equal(t, readExportedPod(full), readExportedPod(stub))
			assert.Empty(t, stub.Spec.Containers)
			assert.Empty(t, stub.Status.Conditions)
			assert.Empty(t, stub.Status.ContainerStatuses)
			assert.Empty(t, stub.Annotations)
			assert.NotEmpty(t, full.Spec.Containers, "the transform does not change its input")
		})
	}
}

func TestTransformsStubOnlyExportedJobsAndTheirEndedPods(t *testing.T) {
	exported := &ExportedJobs{}
	done := newJob("done", finishedJob(batchv1.JobComplete, "CompletionsReached"), func(j *batchv1.Job) { j.Status.Succeeded = 1 })
	running := newJob("running", func(j *batchv1.Job) { j.Status.Active = 1 })
	other := newJob("other", finishedJob(batchv1.JobComplete, "CompletionsReached"))
	exported.Add(done.UID)
	exported.Add(running.UID) // not finished: never stubbed, whatever the set says
	exported.Add("")
	assert.Equal(t, 2, exported.Len(), "an empty UID is not added")

	jobT, podT := JobTransform(exported), PodTransform(exported)
	for _, tc := range []struct {
		job  *batchv1.Job
		stub bool
	}{{done, true}, {running, false}, {other, false}} {
		full := fatJob(tc.job)
		out, err := jobT(full)
		require.NoError(t, err)
		want := any(StubJob(full))
		if !tc.stub {
			want, err = SlimJob(full)
			require.NoError(t, err)
		}
		assert.Equal(t, want, out, tc.job.Name)
	}
	for _, tc := range []struct {
		pod  *corev1.Pod
		stub bool
	}{
		{newPod(done, "done-a", corev1.PodSucceeded, ptr.To[int32](0), now), true},
		{newPod(done, "done-b", corev1.PodRunning, nil, now), false},
		{newPod(other, "other-a", corev1.PodSucceeded, ptr.To[int32](0), now), false},
		{newPod(running, "running-a", corev1.PodFailed, ptr.To[int32](1), now), true},
	} {
		full := fatPod(tc.pod)
		out, err := podT(full)
		require.NoError(t, err)
		want := any(StubPod(full))
		if !tc.stub {
			want, err = SlimPod(full)
			require.NoError(t, err)
		}
		assert.Equal(t, want, out, tc.pod.Name)
	}
	cm := &corev1.ConfigMap{}
	for _, tr := range []toolscache.TransformFunc{jobT, podT} {
		out, err := tr(cm)
		require.NoError(t, err)
		assert.Same(t, cm, out, "other types pass unchanged")
	}

	exported.Forget(done)
	assert.False(t, exported.Has(done.UID), "a deleted Job leaves the set")
	exported.Forget(toolscache.DeletedFinalStateUnknown{Key: "agents/" + running.Name, Obj: running})
	assert.False(t, exported.Has(running.UID), "also when the informer only saw a tombstone")
	exported.Forget("not an object")
	assert.Zero(t, exported.Len())

	var none *ExportedJobs
	none.Add(done.UID)
	none.Forget(done)
	assert.False(t, none.Has(done.UID), "a nil set is empty")
	assert.Zero(t, none.Len())
}

func TestSlimLabelsShareTheirKeys(t *testing.T) {
	job := newJob("intern")
	// As the decoder does: every pod's keys and values in memory of its own.
	decoded := func(name string) *corev1.Pod {
		p := fatPod(newPod(job, name, corev1.PodRunning, nil, now))
		labels := map[string]string{}
		for k, v := range p.Labels {
			labels[strings.Clone(k)] = strings.Clone(v)
		}
		p.Labels = labels
		return p
	}
	a, b := slimPod(t, decoded("a")), slimPod(t, decoded("b"))
	keys := func(m map[string]string) map[string]*byte {
		out := map[string]*byte{}
		for k := range m {
			out[k] = unsafe.StringData(k)
		}
		return out
	}
	require.Len(t, a.Labels, 4)
	assert.Equal(t, keys(a.Labels), keys(b.Labels), "one copy of each key for every pod")
	assert.Same(t, unsafe.StringData(a.Labels[contract.LabelApp]), unsafe.StringData(b.Labels[contract.LabelApp]))
}
