package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies"
)

// DefaultPruneInterval is how often Retention runs by default.
const DefaultPruneInterval = 10 * time.Minute

// Retention keeps the history store within its retention: in the
// background, on the leader, every Interval it removes records older than
// MaxAge and the log archives of the oldest records beyond MaxArchiveBytes
// (history.PruneRequest), then the job-id records (Claims) of the Jobs
// whose history is gone, and it sets the store's size metrics. It never
// removes the record of a Job still in the cluster (Jobs, the manager's
// cache of FlowForge's Jobs) or not yet exported (the store keeps those).
type Retention struct {
	Store history.Store
	// Jobs lists FlowForge's Jobs (the manager's cache).
	Jobs client.Reader
	// ExportedJobs, if set, lists the UIDs of the Jobs the cache leaves
	// out (exported and labelled, ExportedSweeper.UIDs): still in the
	// cluster too.
	ExportedJobs func(context.Context) (map[types.UID]bool, error)
	// ClaimReader lists the job-id records, uncached (the manager's API
	// reader: the controller does not cache ConfigMaps), and ClaimWriter
	// deletes them, in ClaimNamespace.
	ClaimReader    client.Reader
	ClaimWriter    client.Writer
	ClaimNamespace string
	Clock          clock.Clock
	Log            logr.Logger
	// MaxAge removes records created longer ago (0 keeps them).
	MaxAge time.Duration
	// MaxArchiveBytes caps the log archives' total size (0: no cap).
	MaxArchiveBytes int64
	// Interval between passes (default DefaultPruneInterval).
	Interval time.Duration
	// VolumePath, if set, is a path on the store's volume (the SQLite
	// file's directory), whose filesystem's size and free space are
	// exported for the volume alert.
	VolumePath string
}

// NeedLeaderElection runs retention on the leader only.
func (r *Retention) NeedLeaderElection() bool { return true }

// Start prunes at once, then every Interval, until ctx ends. A failed
// pass is logged and counted; the next one starts over.
func (r *Retention) Start(ctx context.Context) error {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultPruneInterval
	}
	for {
		if err := r.PruneOnce(ctx); err != nil && ctx.Err() == nil {
			metrics.HistoryPruneFailures.Inc()
			r.Log.Error(err, "History retention pass failed; retrying at the next pass", "interval", interval.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.Clock.After(interval):
		}
	}
}

// PruneOnce is one retention pass.
func (r *Retention) PruneOnce(ctx context.Context) error {
	now := r.Clock.Now()
	if r.MaxAge > 0 || r.MaxArchiveBytes > 0 {
		inCluster, err := r.jobsInCluster(ctx)
		if err != nil {
			return err
		}
		req := history.PruneRequest{
			MaxArchiveBytes: r.MaxArchiveBytes,
			Keep:            func(uid string) bool { return inCluster[types.UID(uid)] },
			Now:             now,
		}
		if r.MaxAge > 0 {
			req.Before = now.Add(-r.MaxAge)
		}
		res, err := r.Store.Prune(ctx, req)
		// What a failed prune removed before the error is removed: count it.
		metrics.HistoryPrunedRecords.Add(float64(res.Records))
		metrics.HistoryPrunedBytes.WithLabelValues("age").Add(float64(res.ArchiveBytes))
		metrics.HistoryPrunedBytes.WithLabelValues("size").Add(float64(res.CapArchiveBytes))
		if res.Records > 0 || res.CapArchives > 0 {
			r.Log.Info("Pruned the history", "records", res.Records, "archiveBytes", res.ArchiveBytes, "cappedArchives", res.CapArchives, "cappedArchiveBytes", res.CapArchiveBytes)
		}
		if err != nil {
			return fmt.Errorf("prune the history: %w", err)
		}
		if r.MaxAge > 0 {
			if err := r.pruneClaims(ctx, inCluster, req.Before); err != nil {
				return err
			}
		}
	}
	if err := r.observe(ctx); err != nil {
		return err
	}
	metrics.HistoryLastPrune.Set(float64(now.Unix()))
	return nil
}

// jobsInCluster returns the UIDs of FlowForge's Jobs that exist.
func (r *Retention) jobsInCluster(ctx context.Context) (map[types.UID]bool, error) {
	var list batchv1.JobList
	if err := r.Jobs.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list Jobs for retention: %w", err)
	}
	out := make(map[types.UID]bool, len(list.Items))
	if r.ExportedJobs != nil {
		exported, err := r.ExportedJobs(ctx)
		if err != nil {
			return nil, fmt.Errorf("list Jobs for retention: %w", err)
		}
		out = exported
	}
	for i := range list.Items {
		out[list.Items[i].UID] = true
	}
	return out, nil
}

// pruneClaims removes the job-id records (ConfigMaps) whose Job is gone
// from the cluster and whose history record is gone (pruned), once the
// ConfigMap is older than the retention (cutoff): a job-id stays taken as
// long as the history can show the Job that held it. The ConfigMap's age
// is checked too, so that a store replaced by an empty one does not
// release every recent job-id at once.
func (r *Retention) pruneClaims(ctx context.Context, inCluster map[types.UID]bool, cutoff time.Time) error {
	if r.ClaimReader == nil || r.ClaimWriter == nil {
		return nil
	}
	namespace := r.ClaimNamespace
	if namespace == "" {
		namespace = policies.DefaultClaimNamespace
	}
	pruned := 0
	cont := ""
	for {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMapList"))
		if err := r.ClaimReader.List(ctx, list, client.InNamespace(namespace), client.HasLabels{policies.ClaimJobIDLabel}, client.Limit(500), client.Continue(cont)); err != nil {
			return fmt.Errorf("list job-id records: %w", err)
		}
		for i := range list.Items {
			item := &list.Items[i]
			uid := item.Annotations[policies.ClaimJobUIDAnnotation]
			if uid == "" || inCluster[types.UID(uid)] || !item.CreationTimestamp.Time.Before(cutoff) {
				continue
			}
			_, err := r.Store.JobByUID(ctx, uid)
			if err == nil {
				continue // the history still shows the Job
			}
			if !errors.Is(err, history.ErrNotFound) {
				return fmt.Errorf("read the record of job-id record %s: %w", item.Name, err)
			}
			item.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
			uidPrecondition := item.UID
			if err := r.ClaimWriter.Delete(ctx, item, client.Preconditions{UID: &uidPrecondition}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return fmt.Errorf("delete job-id record %s: %w", item.Name, err)
			}
			metrics.HistoryPrunedClaims.Inc()
			pruned++
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	if pruned > 0 {
		r.Log.Info("Released the job-ids of pruned history records", "records", pruned)
	}
	return nil
}

// observe sets the store's size metrics.
func (r *Retention) observe(ctx context.Context) error {
	st, err := r.Store.Stats(ctx)
	if err != nil {
		return fmt.Errorf("read history store size: %w", err)
	}
	metrics.HistoryRecords.Set(float64(st.Records))
	metrics.HistoryArchiveBytes.Set(float64(st.ArchiveBytes))
	metrics.HistoryStoreBytes.Set(float64(st.StoreBytes))
	if r.VolumePath != "" {
		var fs unix.Statfs_t
		if err := unix.Statfs(r.VolumePath, &fs); err != nil {
			return fmt.Errorf("read the history volume's size: %w", err)
		}
		metrics.HistoryVolumeCapacity.Set(float64(fs.Blocks) * float64(fs.Bsize))
		metrics.HistoryVolumeAvailable.Set(float64(fs.Bavail) * float64(fs.Bsize))
	}
	return nil
}
