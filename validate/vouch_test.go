package validate

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/policies"
)

// vouchJob is a labelled Job; a decision on its view, once one of them
// decoded strictly, vouches for the strict decoding of the others.
func vouchJob(id string) string {
	return fmt.Sprintf(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"vouch-%s","labels":{"app":"flowforge","job-id":"vouch-%s","user-id":"u"}},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.4.0"}]}}}}`, id, id)
}

// TestVouchedDecisionStillRefusesMalformed: after Jobs of one view
// decoded strictly (so the cached decision vouches for the next), a
// malformed Job is still refused as malformed, even one whose parsed value
// is that view (a duplicated key keeps the value).
func TestVouchedDecisionStillRefusesMalformed(t *testing.T) {
	h := NewJobHandler(sharedEngine(t), managed, clock.RealClock{})
	h.Claims = func(context.Context, string, string) ([]policies.ClaimHolder, error) { return nil, nil }
	create := func(raw string) admission.Response {
		return h.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "vouch", Operation: admissionv1.Create, Namespace: "agents",
			Kind:     metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"},
			UserInfo: authenticationv1.UserInfo{Username: "u"}, Object: runtime.RawExtension{Raw: []byte(raw)},
		}})
	}
	first := create(vouchJob("a"))
	require.NotNil(t, first.Result)
	require.NotEqual(t, int32(http.StatusBadRequest), first.Result.Code, first.Result.Message)
	second := create(vouchJob("b"))
	require.Equal(t, first.Allowed, second.Allowed, "a Job of the same view, vouched for")
	for _, c := range []struct{ name, from, to, want string }{
		{"a duplicated label", `"job-id":"vouch-c"`, `"job-id":"vouch-c","job-id":"vouch-c"`, `duplicate field "metadata.labels.job-id"`},
		{"a duplicated masked label", `"job-id":"vouch-c"`, `"job-id":"x","job-id":"vouch-c"`, `duplicate field "metadata.labels.job-id"`},
		{"a duplicated kind", `"kind":"Job"`, `"kind":"Job","kind":"Job"`, `duplicate field "kind"`},
		{"a duplicated pod spec", `"spec":{"containers"`, `"spec":{},"spec":{"containers"`, `duplicate field "spec.template.spec"`},
		{"an unknown field", `"name":"c",`, `"name":"c","bogus":1,`, `unknown field "spec.template.spec.containers[0].bogus"`},
		{"a number for a label", `"user-id":"u"`, `"user-id":1`, `cannot unmarshal number into Go struct field ObjectMeta.metadata.labels`},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := strings.Replace(vouchJob("c"), c.from, c.to, 1)
			require.NotEqual(t, vouchJob("c"), raw)
			resp := create(raw)
			require.False(t, resp.Allowed)
			require.EqualValues(t, http.StatusBadRequest, resp.Result.Code, resp.Result.Message)
			require.Contains(t, resp.Result.Message, c.want)
		})
	}
}
