package controller

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flowforge/flowforge/contract"
)

// Exported Jobs out of the cache
//
// Once a Job is exported, finished, with every pod ended (podsSettled),
// the controller labels it and its pods with Settings.ExportedLabel
// (policy data export.exportedLabel), in the same patches that release
// their export finalizers. The manager's cache selects FlowForge's Jobs
// and Pods *without* that label (CacheSelector), so the watch drops them
// and they cost the controller nothing while they wait for their TTL
// (an hour by default, up to a day). What is left to do for them —
// deleting them at the end of their TTL — is ExportedSweeper's, from a
// paged, metadata-only list of the labelled Jobs. The label's value,
// ExportedValue, carries what that needs and metadata does not: the
// phase and the time the Job finished.
//
// Only the controller may set, change or remove the label
// (policies/validate/exported), and no Job or Pod is created with it, so
// nobody can hide a Job from the controller before its export.

// DefaultExportedSweepInterval is how often ExportedSweeper lists the
// labelled Jobs when no deletion is due sooner. A Job whose TTL ends
// sooner than this after its export stays in the cache, and the
// reconciler deletes it on time (see labelExported).
const DefaultExportedSweepInterval = time.Minute

// CacheSelector selects what the manager caches of Jobs and Pods: the
// selector label, and not exportedLabel (if set).
func CacheSelector(s Settings) (labels.Selector, error) {
	label, value := s.SelectorLabel, s.SelectorValue
	if label == "" {
		label, value = contract.LabelApp, contract.AppName
	}
	sel, err := labels.Parse(label + "=" + value)
	if err != nil {
		return nil, fmt.Errorf("cache selector: %w", err)
	}
	if s.ExportedLabel == "" {
		return sel, nil
	}
	req, err := labels.NewRequirement(s.ExportedLabel, selection.DoesNotExist, nil)
	if err != nil {
		return nil, fmt.Errorf("cache selector: %w", err)
	}
	return sel.Add(*req), nil
}

// exportedSelector selects the labelled (exported) Jobs.
func exportedSelector(s Settings) (labels.Selector, error) {
	label, value := s.SelectorLabel, s.SelectorValue
	if label == "" {
		label, value = contract.LabelApp, contract.AppName
	}
	sel, err := labels.Parse(label + "=" + value)
	if err != nil {
		return nil, fmt.Errorf("exported selector: %w", err)
	}
	req, err := labels.NewRequirement(s.ExportedLabel, selection.Exists, nil)
	if err != nil {
		return nil, fmt.Errorf("exported selector: %w", err)
	}
	return sel.Add(*req), nil
}

// ExportedValue is the value of the exported label: the Job's phase and
// the Unix time it finished, "Succeeded.1764600000".
func ExportedValue(phase contract.Phase, finished time.Time) string {
	return string(phase) + "." + strconv.FormatInt(finished.Unix(), 10)
}

// ParseExportedValue reads an ExportedValue.
func ParseExportedValue(v string) (contract.Phase, time.Time, error) {
	phase, secs, ok := strings.Cut(v, ".")
	n, err := strconv.ParseInt(secs, 10, 64)
	if !ok || phase == "" || err != nil || n <= 0 {
		return "", time.Time{}, fmt.Errorf("exported label value %q is not <phase>.<unix seconds>", v)
	}
	return contract.Phase(phase), time.Unix(n, 0).UTC(), nil
}

// finishExport releases the export finalizers of an exported Job and its
// pods and, when the Job can leave the cache (labelExported), labels them
// in the same patches.
func (r *Reconciler) finishExport(ctx context.Context, job *batchv1.Job, pods []corev1.Pod, settings Settings) error {
	if !r.labelExported(job, pods, settings) {
		return r.releaseFinalizers(ctx, job, pods, settings)
	}
	value := ExportedValue(contract.StatusOf(job).Phase, finishedAt(job))
	for i := range pods {
		if err := r.markExported(ctx, &pods[i], settings.PodFinalizer, settings.ExportedLabel, value); err != nil {
			return fmt.Errorf("release pod %s: %w", pods[i].Name, err)
		}
	}
	// The Job last: while it is cached, a failure above is retried.
	if err := r.markExported(ctx, job, settings.JobFinalizer, settings.ExportedLabel, value); err != nil {
		return fmt.Errorf("release job %s: %w", job.Name, err)
	}
	return nil
}

// labelExported reports whether an exported Job and its pods are to be
// labelled out of the cache: the label is configured, the Job finished
// with every pod ended (so no pod is still to be recorded or released),
// it is not being deleted, and its TTL (if any) ends at least a sweep
// interval from now (a sooner deletion is the reconciler's, on time).
func (r *Reconciler) labelExported(job *batchv1.Job, pods []corev1.Pod, settings Settings) bool {
	if settings.ExportedLabel == "" || job.DeletionTimestamp != nil || !finished(job) || !podsSettled(job, pods) {
		return false
	}
	ttl, _, ok := contract.TTLAfterFinished(job, ttlAnnotation(settings))
	return !ok || finishedAt(job).Add(ttl).Sub(r.Clock.Now()) >= cmp.Or(r.SweepInterval, DefaultExportedSweepInterval)
}

func ttlAnnotation(s Settings) string {
	if s.TTLAnnotation == "" {
		return contract.AnnotationTTLSecondsAfterFinished
	}
	return s.TTLAnnotation
}

// markExported labels an object exported and removes its export
// finalizer, in one strategic merge patch (see RemoveFinalizer), once.
func (r *Reconciler) markExported(ctx context.Context, obj client.Object, finalizer, label, value string) error {
	key := "labelled/" + string(obj.GetUID())
	if r.memo.marked(key) || obj.GetLabels()[label] == value {
		return nil
	}
	meta := map[string]any{"labels": map[string]string{label: value}}
	if finalizer != "" {
		meta["$deleteFromPrimitiveList/finalizers"] = []string{finalizer}
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return fmt.Errorf("build exported patch: %w", err)
	}
	if err := client.IgnoreNotFound(r.Client.Patch(ctx, obj, client.RawPatch(types.StrategicMergePatchType, patch))); err != nil {
		return err
	}
	r.memo.mark(key)
	r.memo.mark("released/" + string(obj.GetUID()))
	return nil
}

// exportedBefore reports, for a finished Job whose cache holds fewer pods
// than it counted, whether the history already has it exported: its pods
// were then labelled out of the cache (finishExport) before the Job's own
// patch failed or the controller restarted, and the Job only needs its
// finalizer released and its label.
func (r *Reconciler) exportedBefore(ctx context.Context, job *batchv1.Job, pods []corev1.Pod, settings Settings) bool {
	if settings.ExportedLabel == "" || !finished(job) || int32(len(pods)) >= job.Status.Succeeded+job.Status.Failed { //nolint:gosec // pod counts fit
		return false
	}
	if r.memo.marked("exported/" + string(job.UID)) {
		return true
	}
	rec, err := r.Store.JobByUID(ctx, string(job.UID))
	if err != nil || rec == nil || rec.Exported == nil {
		return false
	}
	r.memo.mark("exported/" + string(job.UID))
	return true
}

// releaseOrphans handles the pods of a Job the cache no longer holds
// (the reconcile of a request for a Job that is not found): a pod of an
// exported, labelled Job that was not cached when the Job was labelled
// (its watch event came late) is labelled and released now that it has
// ended. Pods of a Job that is really gone, or not labelled, are left as
// they are.
func (r *Reconciler) releaseOrphans(ctx context.Context, req reconcile.Request, settings Settings) error {
	if settings.ExportedLabel == "" || r.APIReader == nil {
		return nil
	}
	var list corev1.PodList
	if err := r.Client.List(ctx, &list, client.InNamespace(req.Namespace), client.MatchingLabels{batchv1.JobNameLabel: req.Name}); err != nil {
		return fmt.Errorf("list pods of %s: %w", req.Name, err)
	}
	if len(list.Items) == 0 {
		return nil
	}
	var job metav1.PartialObjectMetadata
	job.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("Job"))
	if err := r.APIReader.Get(ctx, req.NamespacedName, &job); err != nil {
		return client.IgnoreNotFound(err)
	}
	value, ok := job.Labels[settings.ExportedLabel]
	if !ok {
		return nil
	}
	for i := range list.Items {
		pod := &list.Items[i]
		if metav1.IsControlledBy(pod, &job) && podDone(pod) {
			if err := r.markExported(ctx, pod, settings.PodFinalizer, settings.ExportedLabel, value); err != nil {
				return fmt.Errorf("release pod %s: %w", pod.Name, err)
			}
		}
	}
	return nil
}

// ExportedSweeper deletes the labelled (exported) Jobs at the end of their
// TTL, from a paged, metadata-only list of them: the cache does not hold
// them (see CacheSelector). It lists them every Reconciler.SweepInterval
// (default DefaultExportedSweepInterval), or sooner when
// the next deletion is due sooner, and keeps their count by phase for the
// state metrics.
type ExportedSweeper struct {
	// Reader lists the labelled Jobs from the API server (the manager's
	// API reader).
	Reader     client.Reader
	Reconciler *Reconciler
	Settings   func() Settings
	Clock      clock.Clock
	Log        logr.Logger
	// PageSize bounds each list (default 500).
	PageSize int64

	mu     sync.Mutex
	counts map[contract.Phase]float64
}

// NeedLeaderElection: only the leader deletes.
func (s *ExportedSweeper) NeedLeaderElection() bool { return true }

// Start sweeps until ctx ends.
func (s *ExportedSweeper) Start(ctx context.Context) error {
	interval := cmp.Or(s.Reconciler.SweepInterval, DefaultExportedSweepInterval)
	for {
		next, err := s.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			s.Log.Error(err, "Listing the exported Jobs failed; retrying")
		}
		if next <= 0 || next > interval {
			next = interval
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.Clock.After(next):
		}
	}
}

// Sweep lists the labelled Jobs once, deletes those whose TTL has ended
// and releases a Job finalizer left behind, and returns how long until
// the next deletion is due (0: none known).
func (s *ExportedSweeper) Sweep(ctx context.Context) (time.Duration, error) {
	settings := s.Settings()
	if settings.ExportedLabel == "" {
		return 0, nil
	}
	sel, err := exportedSelector(settings)
	if err != nil {
		return 0, err
	}
	pageSize := s.PageSize
	if pageSize <= 0 {
		pageSize = 500
	}
	counts := map[contract.Phase]float64{}
	var next time.Duration
	cont := ""
	for {
		var list metav1.PartialObjectMetadataList
		list.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("JobList"))
		if err := s.Reader.List(ctx, &list, client.MatchingLabelsSelector{Selector: sel}, client.Limit(pageSize), client.Continue(cont)); err != nil {
			return 0, fmt.Errorf("list exported Jobs: %w", err)
		}
		for i := range list.Items {
			wait, phase := s.sweepOne(ctx, &list.Items[i], settings)
			counts[phase]++
			if wait > 0 && (next == 0 || wait < next) {
				next = wait
			}
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	s.mu.Lock()
	s.counts = counts
	s.mu.Unlock()
	return next, nil
}

// sweepOne handles one labelled Job; it returns how long until its
// deletion is due (0: not known or not to be waited for) and its phase.
func (s *ExportedSweeper) sweepOne(ctx context.Context, m *metav1.PartialObjectMetadata, settings Settings) (time.Duration, contract.Phase) {
	phase, done, err := ParseExportedValue(m.Labels[settings.ExportedLabel])
	if err != nil {
		s.Log.Info("Exported Job with a malformed label; not deleted", "namespace", m.Namespace, "job", m.Name, "error", err.Error())
		return 0, phase
	}
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: batchv1.SchemeGroupVersion.String(), Kind: "Job"},
		ObjectMeta: m.ObjectMeta,
		Status:     batchv1.JobStatus{CompletionTime: &metav1.Time{Time: done}},
	}
	log := s.Log.WithValues("namespace", m.Namespace, "job", m.Name)
	ctx = logr.NewContext(ctx, log)
	// Not through release (its memo would keep an entry per labelled
	// Job), and on a copy: the patch answer would replace the status built
	// above from the label.
	if err := RemoveFinalizer(ctx, s.Reconciler.Client, job.DeepCopy(), settings.JobFinalizer); err != nil && !apierrors.IsNotFound(err) {
		log.Error(err, "Releasing the export finalizer of an exported Job failed")
	}
	res, err := s.Reconciler.expire(ctx, job, settings)
	if err != nil {
		log.Error(err, "Deleting an exported Job failed; retrying at the next sweep")
		return 0, phase
	}
	return res.RequeueAfter, phase
}

// Counts returns the labelled Jobs of the last sweep, by phase.
func (s *ExportedSweeper) Counts() map[contract.Phase]float64 {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[contract.Phase]float64, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// UIDs lists the labelled Jobs' UIDs (for retention: their records are
// of Jobs still in the cluster).
func (s *ExportedSweeper) UIDs(ctx context.Context) (map[types.UID]bool, error) {
	out := map[types.UID]bool{}
	settings := s.Settings()
	if settings.ExportedLabel == "" {
		return out, nil
	}
	sel, err := exportedSelector(settings)
	if err != nil {
		return nil, err
	}
	cont := ""
	for {
		var list metav1.PartialObjectMetadataList
		list.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("JobList"))
		if err := s.Reader.List(ctx, &list, client.MatchingLabelsSelector{Selector: sel}, client.Limit(500), client.Continue(cont)); err != nil {
			return nil, fmt.Errorf("list exported Jobs: %w", err)
		}
		for i := range list.Items {
			out[list.Items[i].UID] = true
		}
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}

// finishExportedBefore completes a finishExport that stopped after some
// pods were labelled (see exportedBefore): the pods still cached, then the
// Job, are released and labelled; a pod that has not ended yet keeps the
// Job cached until it has.
func (r *Reconciler) finishExportedBefore(ctx context.Context, job *batchv1.Job, pods []corev1.Pod, settings Settings) (reconcile.Result, error) {
	value := ExportedValue(contract.StatusOf(job).Phase, finishedAt(job))
	for i := range pods {
		if !podDone(&pods[i]) {
			return reconcile.Result{RequeueAfter: time.Second}, nil
		}
		if err := r.markExported(ctx, &pods[i], settings.PodFinalizer, settings.ExportedLabel, value); err != nil {
			return reconcile.Result{}, fmt.Errorf("release pod %s: %w", pods[i].Name, err)
		}
	}
	if err := r.markExported(ctx, job, settings.JobFinalizer, settings.ExportedLabel, value); err != nil {
		return reconcile.Result{}, fmt.Errorf("release job %s: %w", job.Name, err)
	}
	return r.expire(ctx, job, settings)
}

// Forget drops the reconciler's memo of a Job or Pod that left the cache
// (deleted, or labelled exported): the handler of the informers'
// deletions. Tombstones are unwrapped.
func (r *Reconciler) Forget(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	o, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	uid := string(o.GetUID())
	r.memo.forget("job/"+uid, "exported/"+uid, "attempt/"+uid, "released/"+uid, "labelled/"+uid)
}
