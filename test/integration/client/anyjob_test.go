package client

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// TestCommandsFindAnyFlowForgeJobByItsID: a client that is not the CLI
// (kubectl, CI, a backend) names its labelled Job as it likes; every command
// finds it by its job-id label.
func TestCommandsFindAnyFlowForgeJobByItsID(t *testing.T) {
	ns := framework.Namespace(t, clientset, "anyjob", nil)
	ctx := testContext(t, 3*time.Minute)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly-fix-7f3c", Labels: map[string]string{"app": "flowforge", "job-id": "kc-1", "user-id": "u-42"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{localcluster.AnnotationDuration: "10m"}},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
				Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0",
			}}},
		}},
	}
	_, err := clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err)

	res := kubectlFlowforge(t, ctx, "-n", ns, "status", "kc-1", "-o", "json")
	require.Equal(t, 0, res.code, res.err)
	var st contract.Status
	require.NoError(t, json.Unmarshal([]byte(res.out), &st), res.out)
	assert.Equal(t, "nightly-fix-7f3c", st.Name)

	res = kubectlFlowforge(t, ctx, "-n", ns, "cancel", "kc-1", "--reason", "wrong branch")
	require.Equal(t, 0, res.code, "cancel finds the Job by its id, not by a derived name: %s", res.err)

	// No controller runs in this package: the request is recorded on the
	// Job it found, and the phase says so.
	res = kubectlFlowforge(t, ctx, "-n", ns, "status", "kc-1", "-o", "json")
	require.Equal(t, 0, res.code, res.err)
	require.NoError(t, json.Unmarshal([]byte(res.out), &st), res.out)
	assert.Equal(t, contract.PhaseCancelling, st.Phase)
	assert.NotEmpty(t, st.CancelRequestedBy)

	res = kubectlFlowforge(t, ctx, "-n", ns, "status", "nosuch")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.err, `job "nosuch" not found in namespace `+ns)
}
