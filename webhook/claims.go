package webhook

import (
	"context"
	"fmt"
	"sort"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/policies"
)

// JobIDClaims returns the Jobs that hold a job-id in a namespace. Handlers
// call it with a cache-backed reader, so evaluation never waits on the
// network.
type JobIDClaims func(ctx context.Context, namespace, jobID string) ([]policies.ClaimHolder, error)

// JobIDIndex is the name of the cache index of Jobs by namespace and
// job-id (see IndexJobID).
const JobIDIndex = "flowforge.io/job-id"

// JobIDIndexKey is the JobIDIndex key of a job-id in a namespace.
func JobIDIndexKey(namespace, jobID string) string { return namespace + "/" + jobID }

// IndexJobID returns the index function of JobIDIndex for objects whose
// job-id is the value of label.
func IndexJobID(label string) client.IndexerFunc {
	return func(obj client.Object) []string {
		id := obj.GetLabels()[label]
		if id == "" {
			return nil
		}
		return []string{JobIDIndexKey(obj.GetNamespace(), id)}
	}
}

// JobMetadataList is an empty metadata-only list of batch/v1 Jobs, the
// form in which the webhook caches them.
func JobMetadataList() *metav1.PartialObjectMetadataList {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("JobList"))
	return list
}

// JobMetadata is an empty metadata-only batch/v1 Job.
func JobMetadata() *metav1.PartialObjectMetadata {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("Job"))
	return obj
}

// ClaimMetadata is an empty metadata-only ConfigMap: the form of the
// controller's records of the job-ids of Jobs that are gone.
func ClaimMetadata() *metav1.PartialObjectMetadata {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	return obj
}

// ClaimMetadataList is an empty metadata-only list of ConfigMaps.
func ClaimMetadataList() *metav1.PartialObjectMetadataList {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMapList"))
	return list
}

// IndexClaim is the JobIDIndex function of the records: the key of the
// namespace and job-id they record, not of where they live.
func IndexClaim(obj client.Object) []string {
	ns, id := obj.GetLabels()[policies.ClaimNamespaceLabel], obj.GetLabels()[policies.ClaimJobIDLabel]
	if ns == "" || id == "" {
		return nil
	}
	return []string{JobIDIndexKey(ns, id)}
}

// CachedJobIDClaims reads the holders of a job-id from r, a cache indexed
// with IndexJobID (Jobs' metadata) and IndexClaim (the records of Jobs
// that are gone, in claimNamespace): the Jobs that exist, sorted by name,
// then those only recorded. A Job that exists and is already recorded
// (exported, not yet deleted) is listed as existing: a retried create of
// it under its own name gets the API server's AlreadyExists.
func CachedJobIDClaims(r client.Reader, claimNamespace string) JobIDClaims {
	return func(ctx context.Context, namespace, jobID string) ([]policies.ClaimHolder, error) {
		key := client.MatchingFields{JobIDIndex: JobIDIndexKey(namespace, jobID)}
		list := JobMetadataList()
		if err := r.List(ctx, list, client.InNamespace(namespace), key); err != nil {
			return nil, fmt.Errorf("list Jobs: %w", err)
		}
		records := ClaimMetadataList()
		if err := r.List(ctx, records, client.InNamespace(claimNamespace), key); err != nil {
			return nil, fmt.Errorf("list job-id records: %w", err)
		}
		holders := make([]policies.ClaimHolder, 0, len(list.Items)+len(records.Items))
		exists := map[string]bool{}
		for _, item := range list.Items {
			exists[string(item.UID)] = true
			holders = append(holders, policies.ClaimHolder{Name: item.Name, UID: string(item.UID), Source: policies.ClaimSourceCluster})
		}
		var gone []policies.ClaimHolder
		for _, item := range records.Items {
			uid := item.Annotations[policies.ClaimJobUIDAnnotation]
			if !exists[uid] {
				gone = append(gone, policies.ClaimHolder{Name: item.Annotations[policies.ClaimJobNameAnnotation], UID: uid, Source: policies.ClaimSourceHistory})
			}
		}
		sort.Slice(holders, func(i, j int) bool { return holders[i].Name < holders[j].Name })
		sort.Slice(gone, func(i, j int) bool { return gone[i].Name < gone[j].Name })
		return append(holders, gone...), nil
	}
}
