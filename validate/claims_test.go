package validate

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/mutate"
	"github.com/flowforge/flowforge/policies"
)

const identityJob = `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"claude-job-abc","labels":{"app":"flowforge","job-id":"abc","user-id":"alice"}},
"spec":{"template":{"spec":{"containers":[{"name":"worker","image":"ghcr.io/flowforge/claude-worker:1.0.0"}]}}}}`

// TestJobIDClaimsReachThePolicy runs a hardened Job's CREATE through the
// handler with each kind of claims source.
func TestJobIDClaimsReachThePolicy(t *testing.T) {
	engine := sharedEngine(t)
	ns := func(context.Context, string) (map[string]string, error) { return nil, nil }
	hardened, resp, err := mutate.Review(context.Background(), &mutate.Handler{Policy: engine, Namespaces: ns, Clock: clock.RealClock{}}, "agents", []byte(identityJob))
	require.NoError(t, err, "%+v", resp.Result)
	request := func(user string) admission.Request {
		return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "identity", Kind: metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"},
			Namespace: "agents", Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: user},
			Object:   runtime.RawExtension{Raw: hardened},
		}}
	}
	var asked []string
	source := func(holders []policies.ClaimHolder, err error) func(context.Context, string, string) ([]policies.ClaimHolder, error) {
		return func(_ context.Context, namespace, jobID string) ([]policies.ClaimHolder, error) {
			asked = append(asked, namespace+"/"+jobID)
			return holders, err
		}
	}
	tests := []struct {
		name    string
		claims  func(context.Context, string, string) ([]policies.ClaimHolder, error)
		user    string
		allowed bool
		code    int32
		msg     string
	}{
		{name: "free job-id, the owner", claims: source(nil, nil), user: "alice", allowed: true},
		{name: "the same Job exists (a retried create)", claims: source([]policies.ClaimHolder{{Name: "claude-job-abc", UID: "1", Source: policies.ClaimSourceCluster}}, nil), user: "alice", allowed: true},
		{name: "another Job holds it", claims: source([]policies.ClaimHolder{{Name: "other", UID: "2", Source: policies.ClaimSourceCluster}}, nil), user: "alice",
			code: http.StatusUnprocessableEntity, msg: `metadata.labels[job-id]: Forbidden: job-id "abc" belongs to another Job: Job "other" (uid 2) exists`},
		{name: "it is in the history", claims: source([]policies.ClaimHolder{{Name: "claude-job-abc", UID: "0", Source: policies.ClaimSourceHistory}}, nil), user: "alice",
			code: http.StatusUnprocessableEntity, msg: "is in the history"},
		{name: "the cache fails", claims: source(nil, errors.New("cache not synced")), user: "alice",
			code: http.StatusInternalServerError, msg: `so it is denied: read the Jobs that hold job-id "abc": cache not synced`},
		{name: "no source", claims: nil, user: "alice",
			code: http.StatusUnprocessableEntity, msg: "could not check whether another Job claims this job-id"},
		{name: "another user", claims: source(nil, nil), user: "bob",
			code: http.StatusUnprocessableEntity, msg: `metadata.labels[user-id]: Forbidden: user-id "alice" is not the requester`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			asked = nil
			h := NewJobHandler(engine, ns, clock.RealClock{})
			h.Claims = tc.claims
			resp := h.Handle(context.Background(), request(tc.user))
			assert.Equal(t, tc.allowed, resp.Allowed)
			if tc.claims != nil {
				assert.Equal(t, []string{"agents/abc"}, asked, "the handler asks for this namespace and job-id")
			}
			if !tc.allowed {
				require.NotNil(t, resp.Result)
				assert.Equal(t, tc.code, resp.Result.Code)
				assert.Contains(t, resp.Result.Message, tc.msg)
			}
		})
	}
}

func TestUpdatesGatherNoClaims(t *testing.T) {
	engine := sharedEngine(t)
	h := NewJobHandler(engine, func(context.Context, string) (map[string]string, error) { return nil, nil }, clock.RealClock{})
	h.Claims = func(context.Context, string, string) ([]policies.ClaimHolder, error) {
		t.Fatal("an UPDATE is not a claim")
		return nil, nil
	}
	claims, err := h.claims(context.Background(), engine.Current(), admissionv1.AdmissionRequest{Operation: admissionv1.Update}, &metav1.ObjectMeta{Labels: map[string]string{"job-id": "abc"}})
	require.NoError(t, err)
	assert.Nil(t, claims)
	claims, err = h.claims(context.Background(), engine.Current(), admissionv1.AdmissionRequest{Operation: admissionv1.Create}, &metav1.ObjectMeta{})
	require.NoError(t, err)
	assert.Equal(t, &policies.Claims{}, claims, "no job-id: nothing to look up (required-metadata denies it)")
}

// TestPodsCannotBorrowAJobsID: a labelled Pod whose job-id a Job holds is
// admitted from the Job controller for that Job only.
func TestPodsCannotBorrowAJobsID(t *testing.T) {
	engine := sharedEngine(t)
	ns := func(context.Context, string) (map[string]string, error) { return nil, nil }
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"claude-job-abc-x","labels":{"app":"flowforge","job-id":"abc","user-id":"alice"},
"ownerReferences":[{"apiVersion":"batch/v1","kind":"Job","name":"claude-job-abc","uid":"uid-abc","controller":true}]},
"spec":{"containers":[{"name":"worker","image":"ghcr.io/flowforge/claude-worker:1.0.0"}]}}`
	holders := []policies.ClaimHolder{{Name: "claude-job-abc", UID: "uid-abc", Source: policies.ClaimSourceCluster}}
	h := NewPodHandler(engine, ns, clock.RealClock{})
	h.Claims = func(context.Context, string, string) ([]policies.ClaimHolder, error) { return holders, nil }
	request := func(user string) admission.Request {
		return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "pod", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Namespace: "agents", Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: user},
			Object:   runtime.RawExtension{Raw: []byte(pod)},
		}}
	}
	resp := h.Handle(context.Background(), request("alice"))
	require.False(t, resp.Allowed)
	assert.Contains(t, resp.Result.Message, `metadata.labels[job-id]: Forbidden: job-id "abc" belongs to Job "claude-job-abc": only the Job controller may create Pods with it`)

	resp = h.Handle(context.Background(), request("system:serviceaccount:kube-system:job-controller"))
	if !resp.Allowed {
		assert.NotContains(t, resp.Result.Message, "metadata.labels[job-id]", "the Job controller creates the Job's pods")
	}
}
