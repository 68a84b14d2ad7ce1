package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/mutate"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/validate"
	"github.com/flowforge/flowforge/webhook"
)

var loadEngine = sync.OnceValues(func() (*engine.Engine, error) {
	return engine.New(context.Background(), engine.Options{})
})

// mux serves the three handlers as the server does.
func mux(t testing.TB) *http.ServeMux {
	t.Helper()
	eng, err := loadEngine()
	require.NoError(t, err)
	m := http.NewServeMux()
	ns := func(context.Context, string) (map[string]string, error) { return nil, nil }
	for path, h := range Handlers(eng, ns, clock.RealClock{}) {
		m.Handle(path, webhook.Guard(webhook.DefaultMaxRequestBytes, &admission.Webhook{Handler: h}))
	}
	return m
}

const job = `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge","job-id":"a","user-id":"u"}},"spec":{"template":{"spec":{"containers":[{"name":"w","image":"ghcr.io/flowforge/claude-worker:1.4.0"}]}}}}`

func review(kind, version, op, object string) string {
	group := "batch"
	if kind == "Pod" {
		group = ""
	}
	req := map[string]any{
		"uid":       "00000000-0000-0000-0000-000000000001",
		"kind":      map[string]string{"group": group, "version": version, "kind": kind},
		"resource":  map[string]string{"group": group, "version": version, "resource": "jobs"},
		"namespace": "agents",
		"operation": op,
		"userInfo":  map[string]any{"username": "alice"},
	}
	if object != "" {
		req["object"] = json.RawMessage(object)
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
	return string(b)
}

// TestBadInputGetsAClearAnswer sends each kind of bad request to every
// webhook path. Each gets an HTTP 400 or a well-formed AdmissionReview
// error response, and nothing panics or leaks.
func TestBadInputGetsAClearAnswer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := httptest.NewServer(mux(t))
	defer srv.Close()
	tests := []struct {
		name        string
		body        string
		contentType string
		wantCode    int32
		wantMessage string
	}{
		{name: "malformed JSON", body: `{"apiVersion":`, wantCode: http.StatusBadRequest, wantMessage: "not JSON"},
		{name: "not an AdmissionReview", body: `{"apiVersion":"v1","kind":"Pod"}`, wantCode: http.StatusBadRequest, wantMessage: "expected an admission.k8s.io/v1 AdmissionReview"},
		{name: "wrong AdmissionReview version", body: strings.Replace(review("Job", "v1", "CREATE", job), "admission.k8s.io/v1", "admission.k8s.io/v9", 1), wantCode: http.StatusBadRequest, wantMessage: "admission.k8s.io/v9"},
		{name: "wrong kind", body: review("CronJob", "v1", "CREATE", job), wantCode: http.StatusBadRequest, wantMessage: "expected a"},
		{name: "wrong version", body: review("Job", "v2", "CREATE", job), wantCode: http.StatusBadRequest, wantMessage: "expected a"},
		{name: "missing object", body: review("Job", "v1", "CREATE", ""), wantCode: http.StatusBadRequest, wantMessage: "no object"},
		{name: "unknown operation", body: review("Job", "v1", "EXPLODE", job), wantCode: http.StatusBadRequest, wantMessage: "unsupported operation"},
		{name: "a Job that does not decode", body: review("Job", "v1", "CREATE", `{"spec":{"template":{"spec":{"containers":"many"}}}}`), wantCode: http.StatusBadRequest, wantMessage: "not a decodable"},
		{name: "wrong content type", body: review("Job", "v1", "CREATE", job), contentType: "text/plain", wantCode: http.StatusBadRequest, wantMessage: "contentType"},
		{name: "empty body", body: "", wantCode: http.StatusBadRequest, wantMessage: "empty"},
		{name: "body over the size cap", body: `{"x":"` + strings.Repeat("a", 8<<20) + `"}`, wantCode: http.StatusRequestEntityTooLarge, wantMessage: "too large"},
	}
	for _, path := range []string{mutate.Path, validate.JobPath, validate.PodPath, validate.NamespacePath} {
		for _, tc := range tests {
			if path == validate.PodPath {
				tc.body = strings.ReplaceAll(tc.body, `"kind":"Job"`, `"kind":"Pod"`)
				tc.body = strings.ReplaceAll(tc.body, `"group":"batch"`, `"group":""`)
				tc.body = strings.ReplaceAll(tc.body, `{"spec":{"template":{"spec":{"containers":"many"}}}}`, `{"spec":{"containers":"many"}}`)
			}
			if path == validate.NamespacePath {
				tc.body = strings.ReplaceAll(tc.body, `"kind":"Job"`, `"kind":"Namespace"`)
				tc.body = strings.ReplaceAll(tc.body, `"group":"batch"`, `"group":""`)
				tc.body = strings.ReplaceAll(tc.body, `{"spec":{"template":{"spec":{"containers":"many"}}}}`, `{"metadata":{"labels":"many"}}`)
			}
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				ct := tc.contentType
				if ct == "" {
					ct = "application/json"
				}
				resp, err := http.Post(srv.URL+path, ct, strings.NewReader(tc.body))
				require.NoError(t, err)
				defer resp.Body.Close() //nolint:errcheck // test
				body, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusRequestEntityTooLarge {
					assert.EqualValues(t, tc.wantCode, resp.StatusCode)
					assert.Contains(t, string(body), tc.wantMessage, "a clear message")
					return
				}
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
				var ar admissionv1.AdmissionReview
				require.NoError(t, json.Unmarshal(body, &ar), "a well-formed AdmissionReview: %s", body)
				require.NotNil(t, ar.Response)
				assert.False(t, ar.Response.Allowed)
				require.NotNil(t, ar.Response.Result)
				assert.Equal(t, tc.wantCode, ar.Response.Result.Code, ar.Response.Result.Message)
				assert.Contains(t, ar.Response.Result.Message, tc.wantMessage)
			})
		}
	}
	t.Run("a Job on the pod path", func(t *testing.T) {
		resp, err := http.Post(srv.URL+validate.PodPath, "application/json", bytes.NewBufferString(review("Job", "v1", "CREATE", job)))
		require.NoError(t, err)
		defer resp.Body.Close() //nolint:errcheck // test
		var ar admissionv1.AdmissionReview
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&ar))
		assert.Contains(t, ar.Response.Result.Message, "expected a /v1, Kind=Pod")
	})
	t.Run("a good request still works", func(t *testing.T) {
		resp, err := http.Post(srv.URL+mutate.Path, "application/json", strings.NewReader(review("Job", "v1", "CREATE", job)))
		require.NoError(t, err)
		defer resp.Body.Close() //nolint:errcheck // test
		var ar admissionv1.AdmissionReview
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&ar))
		assert.True(t, ar.Response.Allowed)
		assert.NotEmpty(t, ar.Response.Patch)
		assert.Equal(t, "00000000-0000-0000-0000-000000000001", string(ar.Response.UID))
	})
	srv.CloseClientConnections()
	http.DefaultClient.CloseIdleConnections()
}
