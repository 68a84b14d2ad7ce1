package controller

import (
	"context"
	"errors"
	"testing"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/test/testjobs"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/flowforge/flowforge/policies"
)

func claimTestJob(id string) *batchv1.Job {
	w := testjobs.MakeJob(contract.JobName(id), "agents").UID("uid-1").Label(contract.LabelApp, contract.AppName)
	if id != "" {
		w.JobID(id)
	}
	return w.Obj()
}

func TestClaimsRecord(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	claims := &Claims{Client: c, Namespace: "flowforge-system"}
	ctx := context.Background()

	require.NoError(t, claims.Record(ctx, claimTestJob("abc")))
	require.NoError(t, claims.Record(ctx, claimTestJob("abc")), "recording twice is fine")
	var cm corev1.ConfigMap
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "flowforge-system", Name: ClaimName("agents", "abc")}, &cm))
	assert.Equal(t, map[string]string{policies.ClaimNamespaceLabel: "agents", policies.ClaimJobIDLabel: "abc"}, cm.Labels)
	assert.Equal(t, map[string]string{policies.ClaimJobNameAnnotation: "claude-job-abc", policies.ClaimJobUIDAnnotation: "uid-1"}, cm.Annotations)
	assert.Empty(t, cm.Data)

	require.NoError(t, claims.Record(ctx, claimTestJob("")), "a Job without a job-id records nothing")
	var list corev1.ConfigMapList
	require.NoError(t, c.List(ctx, &list))
	assert.Len(t, list.Items, 1)

	var none *Claims
	require.NoError(t, none.Record(ctx, claimTestJob("abc")), "no recorder: nothing to do")
}

func TestClaimsRecordFailure(t *testing.T) {
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
			return errors.New("forbidden")
		},
	}).Build()
	err := (&Claims{Client: c, Namespace: "flowforge-system"}).Record(context.Background(), claimTestJob("abc"))
	require.ErrorContains(t, err, `record that job-id "abc" of agents/claude-job-abc is taken: forbidden`)
}

func TestClaimName(t *testing.T) {
	a, b := ClaimName("agents", "abc"), ClaimName("agents", "abd")
	assert.NotEqual(t, a, b)
	assert.NotEqual(t, ClaimName("agents", "abc"), ClaimName("team", "abc"), "per namespace")
	assert.Len(t, a, len("job-id-")+32, "a valid, bounded name")
	assert.Equal(t, policies.DefaultClaimNamespace, "flowforge-system")
}
