package controller

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/flowforge/flowforge/podlog"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/internal/metrics"
)

// Settings come from policy data and flags.
type Settings struct {
	// PendingTimeout ends a Job whose pod stays Pending longer (0: never).
	PendingTimeout time.Duration
	// LogArchiveLimit caps each container's archived log, in bytes.
	LogArchiveLimit int64
	// JobFinalizer and PodFinalizer are the export finalizers.
	JobFinalizer, PodFinalizer string
	// ExportGrace is how long after a Job finished the export waits for
	// pods that are still terminating before exporting without them.
	ExportGrace time.Duration
	// TTLAnnotation names the annotation with a Job's TTL after finishing
	// (policy data annotations.ttlSecondsAfterFinished): the controller
	// deletes the Job once exported and that long after it finished.
	TTLAnnotation string
	// SelectorLabel and SelectorValue select FlowForge's Jobs (policy data
	// selector). Default: the Job contract's app=flowforge.
	SelectorLabel, SelectorValue string
	// ExportedLabel (policy data export.exportedLabel) marks a Job and its
	// pods exported with every pod ended: the cache leaves them out and
	// ExportedSweeper deletes them at their TTL. Empty: nothing is
	// labelled, and every Job stays cached until it is deleted.
	ExportedLabel string
}

// selects reports whether a Job carries the selector label.
func (s Settings) selects(job *batchv1.Job) bool {
	label, value := s.SelectorLabel, s.SelectorValue
	if label == "" {
		label, value = contract.LabelApp, contract.AppName
	}
	return job.Labels[label] == value
}

// Reconciler reconciles labelled Jobs. See the package documentation.
type Reconciler struct {
	Client client.Client
	// JobEvents lists the events about Jobs: in the controller, a
	// JobEventBook, which keeps what the export copies of Job events by
	// Job (and forgets them once the Job is exported for good), so an
	// export costs no API call.
	JobEvents EventLister
	// PodEvents lists the events about pods from the API server: only
	// attempts that did not succeed need theirs, and caching every pod
	// event in the cluster would cost more than these rare lists.
	PodEvents EventLister
	Store     history.Store
	Recorder  events.EventRecorder
	Clock     clock.Clock
	Logs      LogSource
	Shipper   *Shipper
	Settings  func() Settings
	// Claims, if set, records each exported Job's job-id (see Claims).
	Claims *Claims
	// Usage, if set, has sampled the pods' peak CPU and memory, which the
	// export writes into their attempts (see UsageSampler).
	Usage *UsageSampler
	// SweepInterval is ExportedSweeper's longest wait between two lists
	// of the labelled Jobs (zero: DefaultExportedSweepInterval); a Job due
	// for deletion sooner after its export is not labelled.
	SweepInterval time.Duration
	// APIReader, if set, reads from the API server what the cache leaves
	// out: the Job of a pod whose Job is exported and labelled (see
	// releaseOrphans).
	APIReader client.Reader
	// Exported, if set, collects the Jobs exported with every pod ended,
	// which the cache then holds as stubs (see ExportedJobs); reconciles
	// of those go straight to releasing finalizers and TTL deletion.
	Exported *ExportedJobs
	// hook, if set, is called between export steps (tests use it to stop
	// the controller mid-export).
	hook func(step string) error
	// memo skips store writes that would change nothing.
	memo writeMemo
}

// SetupWithManager registers the reconciler: Jobs, and the Pods they own.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("flowforge-job").
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: concurrency}).
		For(&batchv1.Job{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &batchv1.Job{}, handler.OnlyControllerOwner())).
		Complete(r)
}

// Reconcile brings the history, the Job's lifecycle and its export up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	var job batchv1.Job
	if err := r.Client.Get(ctx, req.NamespacedName, &job); err != nil {
		if apierrors.IsNotFound(err) {
			// Deleted, or exported and labelled out of the cache: a pod of
			// the latter that ended since is released (exported.go).
			return reconcile.Result{}, r.releaseOrphans(ctx, req, r.Settings())
		}
		return reconcile.Result{}, err
	}
	if !r.Settings().selects(&job) {
		return reconcile.Result{}, nil
	}
	pods, err := r.pods(ctx, &job)
	if err != nil {
		return reconcile.Result{}, err
	}
	if finished(&job) && r.Exported.Has(job.UID) {
		// Exported, and every pod had ended: the cache may hold stubs of
		// the Job and its pods (StubJob, StubPod), and nothing is left to
		// record, only finalizers to release and the TTL.
		return r.export(ctx, &job, pods)
	}
	status := contract.StatusOf(&job)
	log = log.WithValues("jobID", status.ID, "phase", status.Phase)
	if err := r.upsertJob(ctx, record(&job, status)); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.recordAttempts(ctx, &job, pods); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.lifecycleEvents(ctx, &job, pods); err != nil {
		return reconcile.Result{}, err
	}
	r.shipLogs(&job, pods)

	if finished(&job) {
		return r.export(ctx, &job, pods)
	}
	if job.DeletionTimestamp != nil {
		// Deleted before it finished: export what there is.
		return r.export(ctx, &job, pods)
	}
	if job.Annotations[contract.AnnotationCancelRequestedAt] != "" {
		log.Info("Cancelling Job", "by", job.Annotations[contract.AnnotationCancelRequestedBy])
		return r.terminate(ctx, &job, contract.TerminationCancelled,
			fmt.Sprintf("cancelled by %s: %s", job.Annotations[contract.AnnotationCancelRequestedBy], job.Annotations[contract.AnnotationCancelReason]))
	}
	return r.checkPending(ctx, &job, pods)
}

func (r *Reconciler) pods(ctx context.Context, job *batchv1.Job) ([]corev1.Pod, error) {
	var list corev1.PodList
	if err := r.Client.List(ctx, &list, client.InNamespace(job.Namespace), client.MatchingFields{PodJobUIDField: string(job.UID)}); err != nil {
		return nil, fmt.Errorf("list pods of %s: %w", job.Name, err)
	}
	podlog.SortItems(list.Items)
	return list.Items, nil
}

func finished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func finishedAt(job *batchv1.Job) time.Time {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.UTC()
		}
	}
	if job.Status.CompletionTime != nil {
		return job.Status.CompletionTime.UTC()
	}
	return time.Time{}
}

// record builds the history record of a Job.
func record(job *batchv1.Job, st contract.Status) history.Job {
	rec := history.Job{
		UID:            string(job.UID),
		ID:             st.ID,
		Namespace:      job.Namespace,
		Name:           job.Name,
		User:           st.UserID,
		Repository:     st.Repository,
		Branch:         st.Branch,
		Template:       job.Annotations[contract.AnnotationTemplate],
		Profile:        st.Profile,
		PolicyRevision: st.PolicyRevision,
		Status:         historyStatus(st.Phase),
		Reason:         st.Reason,
		Message:        st.Message,
		CancelledBy:    job.Annotations[contract.AnnotationCancelRequestedBy],
		Created:        job.CreationTimestamp.UTC(),
		Started:        st.Started,
		Finished:       st.Finished,
	}
	if rec.ID == "" {
		rec.ID = job.Name
	}
	if msg := job.Annotations[AnnotationTerminationMessage]; msg != "" && (rec.Status == history.StatusCancelled || rec.Status == history.StatusTimedOut) {
		rec.Message = msg
	}
	return rec
}

func historyStatus(p contract.Phase) string {
	switch p {
	case contract.PhaseSucceeded:
		return history.StatusSucceeded
	case contract.PhaseFailed:
		return history.StatusFailed
	case contract.PhaseTimedOut:
		return history.StatusTimedOut
	case contract.PhaseCancelled:
		return history.StatusCancelled
	case contract.PhaseRunning, contract.PhaseCancelling:
		return history.StatusRunning
	default:
		return history.StatusPending
	}
}

// upsertJob writes a record unless it is what was last written.
func (r *Reconciler) upsertJob(ctx context.Context, rec history.Job) error {
	same, sum := r.memo.unchanged("job/"+rec.UID, rec)
	if same {
		return nil
	}
	if err := r.Store.UpsertJob(ctx, rec); err != nil {
		return err
	}
	r.memo.remember("job/"+rec.UID, sum)
	return nil
}

// recordAttempts stores every pod as an attempt and, the first time a
// counted failure is seen while the Job goes on, reports the retry.
func (r *Reconciler) recordAttempts(ctx context.Context, job *batchv1.Job, pods []corev1.Pod) error {
	for i := range pods {
		pod := &pods[i]
		a := attemptOf(job, pod, i+1)
		if same, sum := r.memo.unchanged("attempt/"+a.PodUID, a); !same {
			if _, err := r.Store.UpsertAttempt(ctx, a); err != nil {
				return err
			}
			r.memo.remember("attempt/"+a.PodUID, sum)
		}
		if pod.Status.Phase != corev1.PodFailed || i == len(pods)-1 {
			continue
		}
		// A later attempt exists: this failure was retried.
		first, err := r.Store.Mark(ctx, string(pod.UID), "retried")
		if err != nil {
			return err
		}
		if !first {
			continue
		}
		reason := failureReason(pod)
		metrics.Retries.WithLabelValues(reason).Inc()
		msg := fmt.Sprintf("attempt %d (pod %s) failed: %s", a.Number, pod.Name, reason)
		if a.ExitCode != nil {
			msg += fmt.Sprintf(", exit code %d", *a.ExitCode)
		}
		if a.Counted != nil && !*a.Counted {
			msg += "; not counted towards the retry limit (podFailurePolicy)"
		}
		r.Recorder.Eventf(job, pod, corev1.EventTypeWarning, "Retried", "Retry", "%s; attempt %d started", msg, a.Number+1)
	}
	return nil
}

// lifecycleEvents reports the start of a Job and its queue wait, once.
func (r *Reconciler) lifecycleEvents(ctx context.Context, job *batchv1.Job, pods []corev1.Pod) error {
	for i := range pods {
		start := pods[i].Status.StartTime
		if start == nil || pods[i].Spec.NodeName == "" || pods[i].Status.Phase == corev1.PodPending {
			continue
		}
		first, err := r.Store.Mark(ctx, string(job.UID), "started")
		if err != nil || !first {
			return err
		}
		metrics.QueueWait.Observe(math.Max(0, start.Sub(job.CreationTimestamp.Time).Seconds()))
		r.Recorder.Eventf(job, &pods[i], corev1.EventTypeNormal, "Started", "Start", "attempt 1 started on node %s", pods[i].Spec.NodeName)
		return nil
	}
	return nil
}

// shipLogs follows running pods and stops following ended ones.
func (r *Reconciler) shipLogs(job *batchv1.Job, pods []corev1.Pod) {
	if r.Shipper == nil {
		return
	}
	for i := range pods {
		pod := &pods[i]
		tags := Tags{JobID: job.Labels[contract.LabelJobID], UserID: job.Labels[contract.LabelUserID], Attempt: i + 1}
		switch {
		case podlog.Ended(pod) || pod.DeletionTimestamp != nil:
			r.Shipper.StopAsync(pod.UID)
		case pod.Status.Phase == corev1.PodRunning:
			r.Shipper.Follow(pod, tags)
		}
	}
}

// terminate ends a running Job by lowering its deadline to the time it has
// already run: the Job controller then stops its pods gracefully and
// marks it Failed. The reason is recorded on the Job.
func (r *Reconciler) terminate(ctx context.Context, job *batchv1.Job, reason, message string) (reconcile.Result, error) {
	if job.Status.StartTime == nil {
		// The Job controller has not started it yet; it will shortly.
		return reconcile.Result{RequeueAfter: 500 * time.Millisecond}, nil
	}
	elapsed := int64(math.Ceil(r.Clock.Since(job.Status.StartTime.Time).Seconds()))
	if elapsed < 1 {
		elapsed = 1
	}
	patch := client.MergeFrom(job.DeepCopy())
	changed := false
	if job.Spec.ActiveDeadlineSeconds == nil || *job.Spec.ActiveDeadlineSeconds > elapsed {
		job.Spec.ActiveDeadlineSeconds = &elapsed
		changed = true
	}
	if job.Annotations[contract.AnnotationTerminationReason] != reason {
		if job.Annotations == nil {
			job.Annotations = map[string]string{}
		}
		job.Annotations[contract.AnnotationTerminationReason] = reason
		job.Annotations[AnnotationTerminationMessage] = message
		changed = true
	}
	if changed {
		if err := r.Client.Patch(ctx, job, patch); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return reconcile.Result{Requeue: true}, nil
			}
			return reconcile.Result{}, fmt.Errorf("terminate %s: %w", job.Name, err)
		}
	}
	first, err := r.Store.Mark(ctx, string(job.UID), "terminated")
	if err != nil {
		return reconcile.Result{}, err
	}
	if first {
		r.Recorder.Eventf(job, nil, corev1.EventTypeWarning, "Terminating", "Terminate", "stopping the Job: %s", message)
	}
	return reconcile.Result{RequeueAfter: time.Second}, nil
}

// checkPending ends a Job whose newest pod has been Pending too long, and
// otherwise asks to be called again when it would be.
func (r *Reconciler) checkPending(ctx context.Context, job *batchv1.Job, pods []corev1.Pod) (reconcile.Result, error) {
	limit := r.Settings().PendingTimeout
	if limit <= 0 || len(pods) == 0 {
		return reconcile.Result{}, nil
	}
	pod := &pods[len(pods)-1]
	if pod.Status.Phase != corev1.PodPending || pod.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	waited := r.Clock.Since(pod.CreationTimestamp.Time)
	if waited < limit {
		return reconcile.Result{RequeueAfter: limit - waited}, nil
	}
	return r.terminate(ctx, job, contract.TerminationPendingTimeout,
		fmt.Sprintf("pod %s stayed Pending for more than %s: %s", pod.Name, limit, pendingReason(pod)))
}

// pendingReason says why a pod is Pending.
func pendingReason(pod *corev1.Pod) string {
	for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return fmt.Sprintf("container %s is waiting: %s", cs.Name, w.Reason)
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("unschedulable: %s", c.Message)
		}
	}
	return "not started"
}

// AnnotationTerminationMessage says, next to contract.AnnotationTerminationReason,
// why the controller ended a Job.
const AnnotationTerminationMessage = "flowforge.io/termination-message"
