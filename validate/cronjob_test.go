package validate

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// cronJob renders a CronJob whose jobTemplate has the given labels and
// container securityContext.
func cronJob(cronLabels, templateLabels, securityContext string) string {
	return `{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"nightly","labels":` + cronLabels + `},"spec":{"schedule":"0 3 * * *","jobTemplate":{"metadata":{"labels":` + templateLabels + `},"spec":{"template":{"spec":{"containers":[{"name":"w","image":"ghcr.io/flowforge/claude-worker:1.4.0","securityContext":` + securityContext + `}]}}}}}}`
}

const ffLabels = `{"app":"flowforge","job-id":"nightly","user-id":"alice"}`

func cronJobRequest(op admissionv1.Operation, raw, old string) admission.Request {
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid",
		Kind:      metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"},
		Resource:  metav1.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"},
		Name:      "nightly",
		Namespace: "agents",
		Operation: op,
		UserInfo:  authenticationv1.UserInfo{Username: "alice", Groups: []string{"system:authenticated"}},
		Object:    runtime.RawExtension{Raw: []byte(raw)},
	}}
	if old != "" {
		req.OldObject = runtime.RawExtension{Raw: []byte(old)}
	}
	return req
}

func TestCronJobDecisions(t *testing.T) {
	engine := sharedEngine(t)
	h := &CronJobHandler{Policy: engine, Namespaces: noLabels, Clock: clock.RealClock{}}
	inManaged := &CronJobHandler{Policy: engine, Namespaces: managed, Clock: clock.RealClock{}}
	labelled := cronJob(`{}`, ffLabels, `{}`)
	plain := cronJob(`{}`, `{}`, `{"privileged":true}`)
	tests := []struct {
		name        string
		handler     *CronJobHandler
		req         admission.Request
		allowed     bool
		code        int32
		msgContains []string
	}{
		{name: "a labelled template is refused: a job-id names one Job", req: cronJobRequest(admissionv1.Create, labelled, ""), code: http.StatusUnprocessableEntity,
			msgContains: []string{`CronJob.batch "nightly" is invalid`, "spec.jobTemplate.metadata.labels[app]", "one-shot"}},
		{name: "a labelled CronJob is refused", req: cronJobRequest(admissionv1.Create, cronJob(`{"app":"flowforge"}`, `{}`, `{}`), ""),
			code: http.StatusUnprocessableEntity, msgContains: []string{"metadata.labels[app]"}},
		{name: "any CronJob in a managed namespace is refused", handler: inManaged, req: cronJobRequest(admissionv1.Create, cronJob(`{}`, `{"team":"x"}`, `{}`), ""),
			code: http.StatusUnprocessableEntity, msgContains: []string{"not allowed in a FlowForge namespace", "spec.jobTemplate"}},
		{name: "an unlabelled CronJob elsewhere is not ours", req: cronJobRequest(admissionv1.Create, plain, ""), allowed: true},
		{name: "a CronJob admitted before the rule can be suspended", req: cronJobRequest(admissionv1.Update, strings.Replace(labelled, `"schedule"`, `"suspend":true,"schedule"`, 1), labelled), allowed: true},
		{name: "delete is allowed", req: cronJobRequest(admissionv1.Delete, "", ""), allowed: true},
		{name: "unknown operation", req: cronJobRequest("SHRED", labelled, ""), code: http.StatusBadRequest, msgContains: []string{"unsupported operation"}},
		{name: "missing object", req: cronJobRequest(admissionv1.Create, "", ""), code: http.StatusBadRequest, msgContains: []string{"malformed", "empty"}},
		{name: "update without old object", req: cronJobRequest(admissionv1.Update, labelled, ""), code: http.StatusBadRequest, msgContains: []string{"oldObject is malformed"}},
		{name: "malformed object", req: cronJobRequest(admissionv1.Create, `{"apiVersion":"batch/v1","kind":"CronJob","spec":{"jobTemplate":7}}`, ""), code: http.StatusBadRequest, msgContains: []string{"object is malformed"}},
		{name: "an unknown field is malformed", req: cronJobRequest(admissionv1.Create, strings.Replace(labelled, `"schedule"`, `"shedule":"x","schedule"`, 1), ""), code: http.StatusBadRequest, msgContains: []string{"shedule"}},
		{name: "a Job sent as a CronJob", req: cronJobRequest(admissionv1.Create, `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"}}`, ""), code: http.StatusBadRequest, msgContains: []string{"not the request's"}},
		{name: "wrong kind", req: func() admission.Request {
			r := cronJobRequest(admissionv1.Create, labelled, "")
			r.Kind.Kind = "Job"
			return r
		}(), code: http.StatusBadRequest, msgContains: []string{"expected a batch/v1, Kind=CronJob"}},
		{name: "namespace lookup fails closed", handler: &CronJobHandler{Policy: engine, Clock: clock.RealClock{},
			Namespaces: func(context.Context, string) (map[string]string, error) { return nil, errors.New("cache gone") }},
			req: cronJobRequest(admissionv1.Create, labelled, ""), code: http.StatusInternalServerError, msgContains: []string{"could not validate this CronJob, so it is denied", "cache gone"}},
		{name: "validation error fails closed", handler: &CronJobHandler{Policy: brokenPolicy{engine}, Namespaces: noLabels, Clock: clock.RealClock{}},
			req: cronJobRequest(admissionv1.Create, labelled, ""), code: http.StatusInternalServerError, msgContains: []string{"eval timeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler := h
			if tc.handler != nil {
				handler = tc.handler
			}
			resp := handler.Handle(context.Background(), tc.req)
			assert.Equal(t, tc.allowed, resp.Allowed, "%+v", resp.Result)
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
