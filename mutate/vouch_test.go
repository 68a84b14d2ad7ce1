package mutate

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/utils/clock"

	"github.com/flowforge/flowforge/policies/engine"
)

// vouchJob is a labelled Job; a decision on its view, once one of them
// decoded strictly, vouches for the strict decoding of the others.
func vouchJob(id string) string {
	return fmt.Sprintf(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"vouch-%s","labels":{"app":"flowforge","job-id":"vouch-%s","user-id":"u"}},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.4.0"}]}}}}`, id, id)
}

// TestVouchedDecisionStillRefusesMalformed: after Jobs of one view
// decoded strictly (so the cached decision vouches for the next), a
// malformed Job is still refused as malformed, never hardened, even one
// whose parsed value is that view (a duplicated key keeps the value).
func TestVouchedDecisionStillRefusesMalformed(t *testing.T) {
	eng := newEngine(t)
	h := &Handler{Policy: eng, Namespaces: func(context.Context, string) (map[string]string, error) { return nil, nil }, Clock: clock.RealClock{}}
	ctx := context.Background()
	first := h.Handle(ctx, request(admissionv1.Create, []byte(vouchJob("a"))))
	require.True(t, first.Allowed, "%+v", first.Result)
	second := h.Handle(ctx, request(admissionv1.Create, []byte(vouchJob("b"))))
	require.True(t, second.Allowed, "%+v", second.Result)
	require.Len(t, second.Patches, len(first.Patches), "a Job of the same view, vouched for")
	for _, c := range []struct{ name, from, to, want string }{
		{"a duplicated label", `"job-id":"vouch-c"`, `"job-id":"vouch-c","job-id":"vouch-c"`, `duplicate field "metadata.labels.job-id"`},
		{"a duplicated masked label", `"job-id":"vouch-c"`, `"job-id":"x","job-id":"vouch-c"`, `duplicate field "metadata.labels.job-id"`},
		{"a duplicated kind", `"kind":"Job"`, `"kind":"Job","kind":"Job"`, `duplicate field "kind"`},
		{"a duplicated pod spec", `"spec":{"containers"`, `"spec":{},"spec":{"containers"`, `duplicate field "spec.template.spec"`},
		{"an unknown field", `"name":"c",`, `"name":"c","bogus":1,`, `unknown field "spec.template.spec.containers[0].bogus"`},
		{"a number for a label", `"user-id":"u"`, `"user-id":1`, `cannot unmarshal number into Go struct field ObjectMeta.metadata.labels`},
		{"trailing data", `"}]}}}}`, `"}]}}}} {}`, `invalid character`},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := strings.Replace(vouchJob("c"), c.from, c.to, 1)
			require.NotEqual(t, vouchJob("c"), raw)
			resp := h.Handle(ctx, request(admissionv1.Create, []byte(raw)))
			require.False(t, resp.Allowed)
			require.Empty(t, resp.Patches)
			require.EqualValues(t, http.StatusBadRequest, resp.Result.Code, resp.Result.Message)
			require.Contains(t, resp.Result.Message, c.want)
		})
	}
	t.Run("Pods", func(t *testing.T) { testVouchedPodDecisionStillRefusesMalformed(t, eng) })
}

// testVouchedPodDecisionStillRefusesMalformed is the same for the Pod
// hardening (one eng for both: a load costs seconds).
func testVouchedPodDecisionStillRefusesMalformed(t *testing.T, eng *engine.Engine) {
	h := &PodHandler{Policy: eng, Namespaces: func(context.Context, string) (map[string]string, error) {
		return map[string]string{"flowforge.io/managed": "true"}, nil
	}, Clock: clock.RealClock{}}
	ctx := context.Background()
	pod := func(id string) string {
		return strings.ReplaceAll(bareLabelledPod, `"job-id":"a"`, `"job-id":"`+id+`"`)
	}
	first := h.Handle(ctx, podRequest(admissionv1.Create, []byte(pod("a"))))
	require.True(t, first.Allowed, "%+v", first.Result)
	second := h.Handle(ctx, podRequest(admissionv1.Create, []byte(pod("b"))))
	require.True(t, second.Allowed, "%+v", second.Result)
	require.Len(t, second.Patches, len(first.Patches), "a Pod of the same view, vouched for")
	for _, c := range []struct{ name, from, to, want string }{
		{"a duplicated label", `"job-id":"c"`, `"job-id":"c","job-id":"c"`, `duplicate field "metadata.labels.job-id"`},
		{"a duplicated spec", `"spec":{"containers"`, `"spec":{},"spec":{"containers"`, `duplicate field "spec"`},
		{"an unknown field", `"name":"w",`, `"name":"w","bogus":1,`, `unknown field "spec.containers[0].bogus"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := strings.Replace(pod("c"), c.from, c.to, 1)
			require.NotEqual(t, pod("c"), raw)
			resp := h.Handle(ctx, podRequest(admissionv1.Create, []byte(raw)))
			require.False(t, resp.Allowed)
			require.Empty(t, resp.Patches)
			require.EqualValues(t, http.StatusBadRequest, resp.Result.Code, resp.Result.Message)
			require.Contains(t, resp.Result.Message, c.want)
		})
	}
}
