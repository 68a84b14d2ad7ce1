package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/policies"
)

// Claims records that an exported Job's job-id stays taken after the Job
// is gone: a ConfigMap without data in FlowForge's own namespace, labelled
// with the Job's namespace and job-id (policies.ClaimNamespaceLabel,
// ClaimJobIDLabel). The webhook caches their metadata and refuses a new
// Job with a recorded job-id (validate/identity). Tenants of a managed
// namespace have no rights in FlowForge's namespace, so they cannot erase
// a record; the history store remains the full record.
type Claims struct {
	Client    client.Client
	Namespace string
}

// ClaimName is the name of the record of a job-id in a namespace: a hash,
// since a job-id may hold characters a name may not.
func ClaimName(namespace, jobID string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + jobID))
	return "job-id-" + hex.EncodeToString(sum[:16])
}

// Record writes the record of job's job-id, once.
func (c *Claims) Record(ctx context.Context, job *batchv1.Job) error {
	id := job.Labels[contract.LabelJobID]
	if c == nil || id == "" {
		return nil
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace: c.Namespace,
		Name:      ClaimName(job.Namespace, id),
		Labels:    map[string]string{policies.ClaimNamespaceLabel: job.Namespace, policies.ClaimJobIDLabel: id},
		Annotations: map[string]string{
			policies.ClaimJobNameAnnotation: job.Name,
			policies.ClaimJobUIDAnnotation:  string(job.UID),
		},
	}}
	if err := c.Client.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("record that job-id %q of %s/%s is taken: %w", id, job.Namespace, job.Name, err)
	}
	return nil
}
