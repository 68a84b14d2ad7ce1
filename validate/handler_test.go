package validate

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies/engine"
)

const (
	privilegedPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"flowforge","job-id":"a","user-id":"u"}},"spec":{"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.4.0","securityContext":{"privileged":true}}]}}`
	plainPod      = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"docker.io/anything:latest","securityContext":{"privileged":true}}]}}`
)

func podRequest(op admissionv1.Operation, raw, old string) admission.Request {
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Namespace: "agents",
		Operation: op,
		Object:    runtime.RawExtension{Raw: []byte(raw)},
	}}
	if old != "" {
		req.OldObject = runtime.RawExtension{Raw: []byte(old)}
	}
	return req
}

func noLabels(context.Context, string) (map[string]string, error) { return nil, nil }

func managed(context.Context, string) (map[string]string, error) {
	return map[string]string{"flowforge.io/managed": "true"}, nil
}

func TestHandlerDecisions(t *testing.T) {
	eng := sharedEngine(t)
	tests := []struct {
		name        string
		handler     *Handler
		req         admission.Request
		allowed     bool
		code        int32
		msgContains []string
	}{
		{name: "privileged labelled pod is denied with its field", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req: podRequest(admissionv1.Create, privilegedPod, ""), code: 422,
			msgContains: []string{`Pod "p" is invalid`, "spec.containers[0].securityContext.privileged: Forbidden"}},
		{name: "unlabelled pod outside managed namespaces is not evaluated", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req: podRequest(admissionv1.Create, plainPod, ""), allowed: true},
		{name: "unlabelled pod in a managed namespace is denied", handler: NewPodHandler(eng, managed, clock.RealClock{}),
			req: podRequest(admissionv1.Create, plainPod, ""), code: 422, msgContains: []string{"metadata.labels[app]"}},
		{name: "removing the label on update is evaluated", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req: podRequest(admissionv1.Update, plainPod, privilegedPod), code: 422, msgContains: []string{"metadata.labels[app]"}},
		{name: "delete is allowed", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req: podRequest(admissionv1.Delete, "", ""), allowed: true},
		{name: "unknown operation", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req: podRequest("SHRED", privilegedPod, ""), code: http.StatusBadRequest, msgContains: []string{"unsupported operation"}},
		{name: "missing object", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req: podRequest(admissionv1.Create, "", ""), code: http.StatusBadRequest, msgContains: []string{"no object"}},
		{name: "update without old object", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req: podRequest(admissionv1.Update, privilegedPod, ""), code: http.StatusBadRequest, msgContains: []string{"no oldObject"}},
		{name: "malformed object", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req: podRequest(admissionv1.Create, `{"spec":{"containers":7}}`, ""), code: http.StatusBadRequest, msgContains: []string{"not a decodable /v1, Kind=Pod"}},
		{name: "wrong kind", handler: NewJobHandler(eng, noLabels, clock.RealClock{}),
			req: podRequest(admissionv1.Create, privilegedPod, ""), code: http.StatusBadRequest, msgContains: []string{"expected a batch/v1, Kind=Job"}},
		// A request whose object is not what its kind says is malformed.
		{name: "a Job sent as a Pod", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req:  podRequest(admissionv1.Create, `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge"}},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}}`, ""),
			code: http.StatusBadRequest, msgContains: []string{`the object is not a decodable /v1, Kind=Pod: its apiVersion "batch/v1" and kind "Job" are not the request's v1 Pod`}},
		{name: "a Job relabelled as a Pod", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req:  podRequest(admissionv1.Create, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j","labels":{"app":"flowforge"}},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}}`, ""),
			code: http.StatusBadRequest, msgContains: []string{`unknown field "spec.template"`}},
		{name: "an old object of another kind", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req:  podRequest(admissionv1.Update, privilegedPod, `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"p"}}`),
			code: http.StatusBadRequest, msgContains: []string{"the oldObject is not a decodable /v1, Kind=Pod"}},
		{name: "an unlabelled object of another kind is refused too", handler: NewPodHandler(eng, noLabels, clock.RealClock{}),
			req:  podRequest(admissionv1.Create, `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`, ""),
			code: http.StatusBadRequest, msgContains: []string{`its apiVersion "" and kind ""`}},
		{name: "namespace lookup fails closed", handler: NewPodHandler(eng, func(context.Context, string) (map[string]string, error) {
			return nil, errors.New("cache gone")
		}, clock.RealClock{}), req: podRequest(admissionv1.Create, privilegedPod, ""), code: http.StatusInternalServerError, msgContains: []string{"so it is denied", "cache gone"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.handler.Handle(context.Background(), tc.req)
			assert.Equal(t, tc.allowed, resp.Allowed)
			if tc.code != 0 {
				require.NotNil(t, resp.Result)
				assert.Equal(t, tc.code, resp.Result.Code)
				for _, m := range tc.msgContains {
					assert.Contains(t, resp.Result.Message, m)
				}
			}
		})
	}
}

type brokenPolicy struct{ *engine.Engine }

func (brokenPolicy) Validate(context.Context, engine.Input) (*engine.Validation, error) {
	return nil, errors.New("eval timeout")
}

func TestEvaluationErrorFailsClosed(t *testing.T) {
	h := NewPodHandler(brokenPolicy{sharedEngine(t)}, noLabels, clock.RealClock{})
	resp := h.Handle(context.Background(), podRequest(admissionv1.Create, privilegedPod, ""))
	assert.False(t, resp.Allowed)
	assert.Contains(t, resp.Result.Message, "could not validate this Pod, so it is denied: eval timeout")
}

func TestDryRunIsNotCounted(t *testing.T) {
	h := NewPodHandler(sharedEngine(t), noLabels, clock.RealClock{})
	counter := metrics.Denials.WithLabelValues(h.Name)
	before := testutil.ToFloat64(counter)
	req := podRequest(admissionv1.Create, privilegedPod, "")
	req.DryRun = ptr.To(true)
	dry := h.Handle(context.Background(), req)
	assert.False(t, dry.Allowed, "a dry run gets the same verdict")
	assert.Equal(t, before, testutil.ToFloat64(counter))
	h.Handle(context.Background(), podRequest(admissionv1.Create, privilegedPod, ""))
	assert.Greater(t, testutil.ToFloat64(counter), before)
}

func TestDenialListsEveryViolation(t *testing.T) {
	resp := Denial(NewJobHandler(nil, nil, nil).Kind, "j", []engine.Violation{
		{Field: "spec.a", Msg: "first"}, {Field: "spec.b", Msg: "second"},
	})
	assert.False(t, resp.Allowed)
	assert.Equal(t, `Job.batch "j" is invalid: [spec.a: Forbidden: first, spec.b: Forbidden: second]`, resp.Result.Message)
}
