package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/flowforge/flowforge/podlog"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/internal/metrics"
)

// EventLister lists the Kubernetes events about an object, selected by
// EventObjectUIDField.
type EventLister interface {
	List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error
}

// eventForgetter is an EventLister that can drop a Job's events once
// nothing will copy them again (JobEventBook).
type eventForgetter interface {
	Forget(uid types.UID)
}

// ReasonExported and ReasonDeleted are the reasons of the events the
// controller emits after a Job's export (JobEventSelector leaves them
// out).
const (
	ReasonExported = "Exported"
	ReasonDeleted  = "Deleted"
)

// EventObjectUIDField selects events by the UID of the object they are
// about: a field selector the API server supports, and the one
// JobEventBook.List takes.
const EventObjectUIDField = "involvedObject.uid"

// PodJobUIDField indexes cached pods by the UID of the Job that owns them
// (their batch.kubernetes.io/controller-uid label), so that listing a
// Job's pods is a lookup rather than a scan of every pod in its namespace
// (5,000 per reconcile with 5,000 finished Jobs waiting for their TTL).
const PodJobUIDField = "flowforge.io/job-uid"

// podJobUID is the PodJobUIDField index function.
func podJobUID(o client.Object) []string {
	if uid := o.GetLabels()[batchv1.ControllerUidLabel]; uid != "" {
		return []string{uid}
	}
	return nil
}

// IndexPods indexes cached pods by PodJobUIDField.
func IndexPods(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &corev1.Pod{}, PodJobUIDField, podJobUID); err != nil {
		return fmt.Errorf("index pods by %s: %w", PodJobUIDField, err)
	}
	return nil
}

// export stores a finished Job's final status, attempts, events and logs,
// then removes the export finalizers so that TTL cleanup can proceed.
func (r *Reconciler) export(ctx context.Context, job *batchv1.Job, pods []corev1.Pod) (res reconcile.Result, err error) {
	log := logr.FromContextOrDiscard(ctx)
	settings := r.Settings()
	done := finishedAt(job)
	if done.IsZero() {
		done = r.Clock.Now().UTC()
	}
	exportedBefore := r.exportedBefore(ctx, job, pods, settings)
	if !exportedBefore && !podsSettled(job, pods) && r.Clock.Since(done) < settings.ExportGrace {
		// The Job controller is still stopping a pod, or the cache has not
		// caught up with the pods the Job counted.
		return reconcile.Result{RequeueAfter: 500 * time.Millisecond}, nil
	}
	defer func() {
		if apierrors.IsConflict(err) {
			// A stale copy of the Job or a pod: try again with a fresh one.
			res, err = reconcile.Result{Requeue: true}, nil
		}
		if err != nil {
			metrics.ExportFailures.Inc()
			log.Error(err, "Export failed; the Job is kept and the export retried")
		}
	}()
	if exportedBefore {
		// Its pods were labelled out of the cache (finishExport) before the
		// Job's own patch: finish that.
		return r.finishExportedBefore(ctx, job, pods, settings)
	}
	if r.Exported.Has(job.UID) || r.memo.marked("exported/"+string(job.UID)) {
		// A reconcile after the export (the finalizer patches trigger one):
		// nothing is left to store, only finalizers perhaps to release and
		// the Job to delete when its TTL is up.
		r.settled(job, pods)
		if err := r.finishExport(ctx, job, pods, settings); err != nil {
			return reconcile.Result{}, err
		}
		return r.expire(ctx, job, settings)
	}
	if r.Shipper != nil {
		// Stop following: the archive read below ships whatever the
		// followers had not, after their checkpoints.
		for i := range pods {
			r.Shipper.StopNow(pods[i].UID)
		}
	}
	status := contract.StatusOf(job)
	if first, err := r.Store.Mark(ctx, string(job.UID), "finished"); err != nil {
		return reconcile.Result{}, err
	} else if first {
		r.finishedEvent(job, status)
	}
	for i := range pods {
		if err := r.archive(ctx, job, &pods[i], i+1, settings); err != nil {
			return reconcile.Result{}, err
		}
	}
	if err := r.step("archived"); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.exportEvents(ctx, job, pods); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.recordUsage(ctx, job, pods); err != nil {
		return reconcile.Result{}, err
	}
	rec := record(job, status)
	if rec.Finished == nil {
		rec.Finished = &done
	}
	if err := r.upsertJob(ctx, rec); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.step("recorded"); err != nil {
		return reconcile.Result{}, err
	}
	// The job-id stays taken once the Job is gone (see Claims).
	if err := r.Claims.Record(ctx, job); err != nil {
		return reconcile.Result{}, err
	}
	first, err := r.Store.MarkExported(ctx, string(job.UID), r.Clock.Now())
	if err != nil {
		return reconcile.Result{}, err
	}
	r.memo.mark("exported/" + string(job.UID))
	r.Usage.Forget(pods)
	r.settled(job, pods)
	if first {
		r.observeFinished(job, rec, done)
		r.Recorder.Eventf(job, nil, corev1.EventTypeNormal, ReasonExported, "Export", "status, events and logs of %d attempt(s) saved to the execution history", len(pods))
		log.Info("Exported Job", "status", rec.Status, "attempts", len(pods))
	}
	if err := r.finishExport(ctx, job, pods, settings); err != nil {
		return reconcile.Result{}, err
	}
	return r.expire(ctx, job, settings)
}

// settled adds an exported Job to r.Exported once it has finished and
// every pod has ended, so that from its next change on the cache holds
// stubs of it and its pods. A Job exported without some pod (ExportGrace
// ran out, or it was deleted before it finished) stays whole, and its
// later reconciles still record what changes.
func (r *Reconciler) settled(job *batchv1.Job, pods []corev1.Pod) {
	if r.Exported != nil && finished(job) && podsSettled(job, pods) {
		r.Exported.Add(job.UID)
		// Nothing copies its events again (JobEventBook).
		if f, ok := r.JobEvents.(eventForgetter); ok {
			f.Forget(job.UID)
		}
	}
}

// expire deletes an exported Job, with its pods, once its TTL (the
// annotation the webhook writes) has passed since it finished, and
// otherwise asks to be called again then. FlowForge, not the built-in TTL
// controller, deletes these Jobs so that no deletion, and so no container
// garbage collection on the node, starts before the export is complete.
// Jobs without the annotation are left alone: a Job admitted before
// FlowForge owned deletion (spec.ttlSecondsAfterFinished) is the built-in
// controller's, and a Job with no TTL is kept.
func (r *Reconciler) expire(ctx context.Context, job *batchv1.Job, settings Settings) (reconcile.Result, error) {
	if job.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	annotation := settings.TTLAnnotation
	if annotation == "" {
		annotation = contract.AnnotationTTLSecondsAfterFinished
	}
	ttl, by, ok := contract.TTLAfterFinished(job, annotation)
	done := finishedAt(job)
	if !ok || by != contract.DeletedByFlowForge || done.IsZero() {
		return reconcile.Result{}, nil
	}
	due := done.Add(ttl)
	if wait := due.Sub(r.Clock.Now()); wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	// Foreground, as the built-in TTL controller does: the Job goes once
	// its pods are gone, so no pod outlives it.
	err := r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationForeground), client.Preconditions{UID: &job.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone already, or the name is another Job's now.
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("delete job %s: %w", job.Name, err)
	}
	first, err := r.Store.Mark(ctx, string(job.UID), "deleted")
	if err != nil {
		return reconcile.Result{}, err
	}
	if first {
		late := r.Clock.Since(due)
		metrics.TTLDeletions.Inc()
		metrics.TTLDeletionDelay.Observe(late.Seconds())
		r.Recorder.Eventf(job, nil, corev1.EventTypeNormal, ReasonDeleted, "Delete", "deleting the Job and its pods: exported, and finished %s ago (TTL %s)", r.Clock.Since(done).Round(time.Second), ttl)
		logr.FromContextOrDiscard(ctx).Info("Deleted finished Job", "ttl", ttl.String(), "late", late.String())
	}
	return reconcile.Result{}, nil
}

// podsSettled reports whether every pod has ended and the cache holds at
// least as many ended pods as the Job counted.
func podsSettled(job *batchv1.Job, pods []corev1.Pod) bool {
	ended := int32(0)
	for i := range pods {
		// A pod deleted before it was scheduled never runs: no kubelet will
		// ever end it, so it is as ended as it gets.
		unscheduledGone := pods[i].DeletionTimestamp != nil && pods[i].Spec.NodeName == ""
		if !podlog.Ended(&pods[i]) && !unscheduledGone {
			return false
		}
		ended++
	}
	return ended >= job.Status.Succeeded+job.Status.Failed
}

func (r *Reconciler) step(name string) error {
	if r.hook == nil {
		return nil
	}
	return r.hook(name)
}

func (r *Reconciler) finishedEvent(job *batchv1.Job, st contract.Status) {
	eventType, reason := corev1.EventTypeWarning, string(st.Phase)
	if st.Phase == contract.PhaseSucceeded {
		eventType = corev1.EventTypeNormal
	}
	msg := st.Message
	if msg == "" {
		msg = st.Reason
	}
	r.Recorder.Eventf(job, nil, eventType, reason, "Finish", "job %s: %s", strings.ToLower(reason), msg)
}

// observeFinished records the metrics of a Job's end; the caller makes
// sure it runs once per Job.
func (r *Reconciler) observeFinished(job *batchv1.Job, rec history.Job, done time.Time) {
	if rec.Started != nil {
		metrics.JobDuration.WithLabelValues(rec.Status).Observe(done.Sub(*rec.Started).Seconds())
	}
	metrics.ExportLag.Observe(r.Clock.Since(done).Seconds())
	switch rec.Status {
	case history.StatusCancelled:
		metrics.Cancellations.Inc()
	case history.StatusTimedOut:
		kind := "deadline"
		if job.Annotations[contract.AnnotationTerminationReason] == contract.TerminationPendingTimeout {
			kind = "pending"
		}
		metrics.Timeouts.WithLabelValues(kind).Inc()
	}
}

// archive stores the logs of every container of one attempt that ran, and
// ships whatever the live follower had not shipped. A log that cannot be
// read from a pod the node has removed (see logsRemoved) is reported as
// lost rather than retried for ever.
func (r *Reconciler) archive(ctx context.Context, job *batchv1.Job, pod *corev1.Pod, attempt int, settings Settings) error {
	limit := settings.LogArchiveLimit
	tags := Tags{JobID: job.Labels[contract.LabelJobID], UserID: job.Labels[contract.LabelUserID], Attempt: attempt}
	for _, c := range podlog.ContainerNames(pod) {
		if !containerRan(pod, c) {
			continue
		}
		has, err := r.Store.HasLogArchive(ctx, string(pod.UID), c)
		if err != nil {
			return err
		}
		if has {
			continue
		}
		raw, err := r.readLog(ctx, pod, c, limit)
		if err != nil && r.logsRemoved(pod, settings) {
			if err := r.logsLost(ctx, job, pod, c, err); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if r.Shipper != nil {
			if err := r.Shipper.CatchUp(ctx, pod, c, tags, bytes.NewReader(raw)); err != nil {
				return fmt.Errorf("ship logs of %s/%s: %w", pod.Name, c, err)
			}
		}
		gz, size, truncated, err := history.Compress(stripTimestamps(raw), limit)
		if err != nil {
			return err
		}
		if err := r.Store.PutLogArchive(ctx, history.LogArchive{
			PodUID: string(pod.UID), JobUID: string(job.UID), Attempt: attempt, Pod: pod.Name, Container: c,
			Gzip: gz, Size: size, Truncated: truncated,
		}); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) readLog(ctx context.Context, pod *corev1.Pod, container string, limit int64) ([]byte, error) {
	stream, err := r.Logs.Stream(ctx, pod.Namespace, pod.Name, &corev1.PodLogOptions{Container: container, Timestamps: true, LimitBytes: ptr.To(limit*2 + 1)})
	if err != nil {
		return nil, fmt.Errorf("read logs of %s/%s: %w", pod.Name, container, err)
	}
	raw, err := io.ReadAll(stream)
	_ = stream.Close()
	if err != nil {
		return nil, fmt.Errorf("read logs of %s/%s: %w", pod.Name, container, err)
	}
	return raw, nil
}

// logsRemoved reports whether a pod's logs are past saving: its deletion
// was requested and it has ended, so the kubelet's container garbage
// collection removes its containers within about a minute (finalizers do
// not stop it), and the export has tried for longer than ExportGrace past
// the pod's deletionTimestamp (which for a pod is the end of its grace
// period). Only a Job deleted by someone else before its export, while
// the controller was down or behind, gets here.
func (r *Reconciler) logsRemoved(pod *corev1.Pod, settings Settings) bool {
	return pod.DeletionTimestamp != nil && podlog.Ended(pod) && r.Clock.Since(pod.DeletionTimestamp.Time) >= settings.ExportGrace
}

// logsLost reports, once, a container log the node removed before the
// export could read it; the export goes on without it.
func (r *Reconciler) logsLost(ctx context.Context, job *batchv1.Job, pod *corev1.Pod, container string, cause error) error {
	first, err := r.Store.Mark(ctx, string(pod.UID), "logs-lost/"+container)
	if err != nil || !first {
		return err
	}
	metrics.ExportLogsLost.Inc()
	r.Recorder.Eventf(job, pod, corev1.EventTypeWarning, "LogsLost", "Export",
		"the log of container %s of pod %s was removed by its node before the export (the pod was deleted while the export was behind): %v", container, pod.Name, cause)
	logr.FromContextOrDiscard(ctx).Info("Log lost before the export", "pod", pod.Name, "container", container, "error", cause.Error())
	return nil
}

// containerRan reports whether a container started, so it may have output.
func containerRan(pod *corev1.Pod, name string) bool {
	for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if cs.Name == name {
			return cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil
		}
	}
	return false
}

// stripTimestamps turns a timestamped log back into the container's text.
func stripTimestamps(raw []byte) io.Reader {
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if _, msg, ok := podlog.SplitTimestamp(strings.TrimRight(string(line), "\n")); ok {
			out.WriteString(msg)
			out.WriteByte('\n')
			continue
		}
		out.Write(line)
	}
	return &out
}

// exportEvents copies the Kubernetes events about the Job (from the cache),
// and about its pods that did not succeed (from the API server; a succeeded
// attempt's events — scheduled, pulled, started — say nothing its attempt
// record does not). The pod lists run in parallel: each is a scan of the
// namespace's events in etcd, as the API server does not cache events.
func (r *Reconciler) exportEvents(ctx context.Context, job *batchv1.Job, pods []corev1.Pod) error {
	type source struct {
		uid    types.UID
		lister EventLister
	}
	sources := []source{{job.UID, r.JobEvents}}
	for _, p := range pods {
		if p.Status.Phase != corev1.PodSucceeded {
			sources = append(sources, source{p.UID, r.PodEvents})
		}
	}
	lists := make([]corev1.EventList, len(sources))
	g, gctx := errgroup.WithContext(ctx)
	for i, src := range sources {
		g.Go(func() error {
			if err := src.lister.List(gctx, &lists[i], client.InNamespace(job.Namespace), client.MatchingFields{EventObjectUIDField: string(src.uid)}); err != nil {
				return fmt.Errorf("list events of %s: %w", job.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var out []history.Event
	for _, list := range lists {
		for _, e := range list.Items {
			t := e.LastTimestamp.Time
			if t.IsZero() {
				t = e.EventTime.Time
			}
			if t.IsZero() {
				t = e.CreationTimestamp.Time
			}
			out = append(out, history.Event{
				Time: t.UTC(), Type: e.Type, Reason: e.Reason, Message: e.Message,
				Object: strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name,
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return r.Store.SetEvents(ctx, string(job.UID), out)
}

// releaseFinalizers lets the pods and then the Job go.
func (r *Reconciler) releaseFinalizers(ctx context.Context, job *batchv1.Job, pods []corev1.Pod, settings Settings) error {
	for i := range pods {
		if err := r.release(ctx, &pods[i], settings.PodFinalizer); err != nil {
			return fmt.Errorf("release pod %s: %w", pods[i].Name, err)
		}
	}
	if err := r.release(ctx, job, settings.JobFinalizer); err != nil {
		return fmt.Errorf("release job %s: %w", job.Name, err)
	}
	return nil
}

// release removes an export finalizer once per object. The reconciles that
// the removal itself triggers often still see it in the cache; nothing
// adds it again to the same object (it is set when the object is created),
// so they need not send the patch again.
func (r *Reconciler) release(ctx context.Context, obj client.Object, finalizer string) error {
	key := "released/" + string(obj.GetUID())
	if r.memo.marked(key) {
		return nil
	}
	if err := RemoveFinalizer(ctx, r.Client, obj, finalizer); err != nil {
		return err
	}
	r.memo.mark(key)
	return nil
}

// RemoveFinalizer removes one finalizer with a strategic merge patch that
// deletes it from the list by value: no resourceVersion and no index, so
// neither another controller's change (the Job controller's status updates,
// its removal of its own pod finalizer) nor a stale cached copy makes it
// conflict, and no other finalizer is touched.
func RemoveFinalizer(ctx context.Context, c client.Writer, obj client.Object, finalizer string) error {
	if !slices.Contains(obj.GetFinalizers(), finalizer) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"$deleteFromPrimitiveList/finalizers": []string{finalizer}}})
	if err != nil {
		return fmt.Errorf("build finalizer patch: %w", err)
	}
	return client.IgnoreNotFound(c.Patch(ctx, obj, client.RawPatch(types.StrategicMergePatchType, patch)))
}
