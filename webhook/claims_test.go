package webhook

import (
	"context"
	"errors"
	"testing"

	"github.com/flowforge/flowforge/test/testjobs"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/flowforge/flowforge/policies"
)

func labelledJob(namespace, name, uid string, labels map[string]string) *batchv1.Job {
	return testjobs.MakeJob(name, namespace).UID(uid).Labels(labels).Obj()
}

func TestIndexJobID(t *testing.T) {
	index := IndexJobID("job-id")
	tests := []struct {
		name string
		obj  client.Object
		want []string
	}{
		{name: "a job-id", obj: labelledJob("agents", "j", "1", map[string]string{"job-id": "abc"}), want: []string{"agents/abc"}},
		{name: "metadata only", obj: func() client.Object {
			m := JobMetadata()
			m.Namespace, m.Labels = "team", map[string]string{"job-id": "x"}
			return m
		}(), want: []string{"team/x"}},
		{name: "no job-id", obj: labelledJob("agents", "j", "1", map[string]string{"app": "flowforge"}), want: nil},
		{name: "an empty job-id", obj: labelledJob("agents", "j", "1", map[string]string{"job-id": ""}), want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, index(tc.obj))
		})
	}
}

// record is the controller's record of a job-id that a Job gone from the
// cluster held.
func record(name, namespace, jobID, jobName, jobUID string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace:   "flowforge-system",
		Name:        name,
		Labels:      map[string]string{policies.ClaimNamespaceLabel: namespace, policies.ClaimJobIDLabel: jobID},
		Annotations: map[string]string{policies.ClaimJobNameAnnotation: jobName, policies.ClaimJobUIDAnnotation: jobUID},
	}}
}

func TestIndexClaim(t *testing.T) {
	assert.Equal(t, []string{"agents/abc"}, IndexClaim(record("r", "agents", "abc", "j", "1")))
	assert.Nil(t, IndexClaim(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{policies.ClaimJobIDLabel: "abc"}}}), "no namespace")
	assert.Nil(t, IndexClaim(&corev1.ConfigMap{}))
}

func TestCachedJobIDClaims(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	objs := []client.Object{
		labelledJob("agents", "second", "uid-2", map[string]string{"job-id": "abc"}),
		labelledJob("agents", "first", "uid-1", map[string]string{"job-id": "abc"}),
		labelledJob("agents", "other", "uid-3", map[string]string{"job-id": "xyz"}),
		labelledJob("team", "same-id-elsewhere", "uid-4", map[string]string{"job-id": "abc"}),
		record("r1", "agents", "abc", "gone", "uid-0"),
		record("r2", "agents", "abc", "first", "uid-1"), // exported, not yet deleted
		record("r3", "team", "abc", "elsewhere", "uid-5"),
		record("r4", "agents", "xyz", "older", "uid-6"),
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithIndex(&batchv1.Job{}, JobIDIndex, IndexJobID("job-id")).
		WithIndex(&corev1.ConfigMap{}, JobIDIndex, IndexClaim).Build()
	claims := CachedJobIDClaims(c, "flowforge-system")

	got, err := claims(context.Background(), "agents", "abc")
	require.NoError(t, err)
	assert.Equal(t, []policies.ClaimHolder{
		{Name: "first", UID: "uid-1", Source: policies.ClaimSourceCluster},
		{Name: "second", UID: "uid-2", Source: policies.ClaimSourceCluster},
		{Name: "gone", UID: "uid-0", Source: policies.ClaimSourceHistory},
	}, got, "this namespace's Jobs by name, then those only in the history")

	got, err = claims(context.Background(), "agents", "free")
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.NotNil(t, got, "an empty list, not unknown")

	got, err = CachedJobIDClaims(c, "elsewhere")(context.Background(), "agents", "xyz")
	require.NoError(t, err)
	assert.Equal(t, []policies.ClaimHolder{{Name: "other", UID: "uid-3", Source: policies.ClaimSourceCluster}}, got, "records only from the claim namespace")
}

func TestCachedJobIDClaimsFailure(t *testing.T) {
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			return errors.New("cache not synced")
		},
	}).Build()
	_, err := CachedJobIDClaims(c, "flowforge-system")(context.Background(), "agents", "abc")
	require.ErrorContains(t, err, "list Jobs: cache not synced")
}
