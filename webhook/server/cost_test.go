package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/mutate"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/test/worstcase"
	"github.com/flowforge/flowforge/validate"
	"github.com/flowforge/flowforge/webhook"
)

// costStack serves the Job webhooks as Run does: the guard (with the
// served policy's limits, or none: the webhook before it had them), the
// controller-runtime webhook and FlowForge's handlers.
func costStack(t testing.TB, limited bool) (*http.ServeMux, policies.Limits) {
	t.Helper()
	engine, err := loadEngine()
	require.NoError(t, err)
	ns := func(context.Context, string) (map[string]string, error) {
		return map[string]string{"flowforge.io/managed": "true"}, nil
	}
	handlers := Handlers(engine, ns, clock.RealClock{})
	WithClaims(handlers, func(context.Context, string, string) ([]policies.ClaimHolder, error) { return nil, nil })
	opts := webhook.GuardOptions{Path: "cost"}
	if limited {
		opts.Limits = func() policies.Limits { return engine.Current().Limits() }
	}
	m := http.NewServeMux()
	for _, path := range []string{mutate.Path, validate.JobPath} {
		m.Handle(path, webhook.NewGuard(opts, &admission.Webhook{Handler: handlers[path]}))
	}
	return m, engine.Current().Limits()
}

func answer(t testing.TB, m http.Handler, path string, body []byte) *admissionv1.AdmissionResponse {
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, post(path, body))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.NotNil(t, out.Response)
	return out.Response
}

func post(path string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

type costCase struct {
	name   string
	object []byte
	// admitted by the limited stack (else refused by a limit)
	admitted bool
}

func costCases(limits policies.Limits) []costCase {
	return []costCase{
		{name: "env-flood-100000", object: worstcase.EnvFlood(100000)},
		{name: "containers-5000", object: worstcase.ManyContainers(5000)},
		// At the ceiling: what a policy that raised the limit would evaluate.
		{name: "containers-128", object: worstcase.ManyContainers(int(policies.Ceilings().Containers))},
		{name: "at-limits", object: worstcase.AtLimits(limits), admitted: true},
		// What a policy that raised every limit to its ceiling would admit.
		{name: "at-ceilings", object: worstcase.AtLimits(policies.Ceilings())},
	}
}

// TestWorstCaseObjects: the floods are refused by a limit, the object at
// every limit is hardened and admitted, through the real handlers.
func TestWorstCaseObjects(t *testing.T) {
	m, limits := costStack(t, true)
	for _, tc := range costCases(limits) {
		t.Run(tc.name, func(t *testing.T) {
			require.Less(t, len(tc.object), 3<<20, "the API server accepts it")
			resp := answer(t, m, mutate.Path, worstcase.Review("u", tc.object))
			if !tc.admitted {
				require.False(t, resp.Allowed)
				require.Contains(t, resp.Result.Message, "over the limit")
				return
			}
			require.True(t, resp.Allowed, "%v", resp.Result)
			require.NotEmpty(t, resp.Patch, "hardened")
			resp = answer(t, m, validate.JobPath, worstcase.Review("u", tc.object))
			require.NotNil(t, resp.Result)
			require.NotContains(t, resp.Result.Message, "over the limit")
		})
	}
}

// BenchmarkAdmissionCost measures the bytes allocated by one admission of
// each worst-case object, with the limits and without (the webhook before
// them): go test -run '^$' -bench AdmissionCost -benchmem ./webhook/server/
func BenchmarkAdmissionCost(b *testing.B) {
	for _, limited := range []bool{false, true} {
		m, limits := costStack(b, limited)
		stack := "unlimited"
		if limited {
			stack = "limited"
		}
		for _, tc := range costCases(limits) {
			for _, path := range []string{mutate.Path, validate.JobPath} {
				body := worstcase.Review("u", tc.object)
				b.Run(stack+path+"/"+tc.name, func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(len(body)))
					for b.Loop() {
						rec := httptest.NewRecorder()
						m.ServeHTTP(rec, post(path, body))
					}
				})
			}
		}
	}
}
