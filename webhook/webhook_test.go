package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies/engine"
)

var loadEngine = sync.OnceValues(func() (*engine.Engine, error) {
	return engine.New(context.Background(), engine.Options{})
})

func TestNamespaceLabelsFromAClient(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "agents", Labels: map[string]string{"flowforge.io/managed": "true"}}}).Build()
	lookup := ClientNamespaceLabels(c, nil)
	labels, err := lookup(context.Background(), "agents")
	require.NoError(t, err)
	assert.Equal(t, "true", labels["flowforge.io/managed"])
	labels, err = lookup(context.Background(), "")
	require.NoError(t, err, "cluster-scoped objects have no namespace")
	assert.Empty(t, labels)
	_, err = lookup(context.Background(), "missing")
	assert.ErrorContains(t, err, `read namespace "missing"`)

	// A namespace the cache has not seen yet is read from live.
	live := fake.NewClientBuilder().WithScheme(scheme).WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh", Labels: map[string]string{"team": "a"}}}).Build()
	withLive := ClientNamespaceLabels(c, live)
	labels, err = withLive(context.Background(), "fresh")
	require.NoError(t, err)
	assert.Equal(t, "a", labels["team"])
	labels, err = withLive(context.Background(), "agents")
	require.NoError(t, err)
	assert.Equal(t, "true", labels["flowforge.io/managed"], "the cache answers when it can")
	_, err = withLive(context.Background(), "missing")
	assert.ErrorContains(t, err, `read namespace "missing"`, "missing everywhere is still an error")
}

func TestSelectorsComeFromPolicyData(t *testing.T) {
	e, err := loadEngine()
	require.NoError(t, err)
	p := e.Current()
	assert.True(t, Selected(p, map[string]string{"app": "flowforge"}))
	assert.False(t, Selected(p, map[string]string{"app": "other"}))
	assert.False(t, Selected(p, nil))
	assert.True(t, ManagedNamespace(p, map[string]string{"flowforge.io/managed": "true"}))
	assert.False(t, ManagedNamespace(p, map[string]string{"flowforge.io/managed": "false"}))
}

func TestOutcome(t *testing.T) {
	patched := admission.PatchResponseFromRaw([]byte(`{}`), []byte(`{"a":1}`))
	tests := []struct {
		resp admission.Response
		want string
	}{
		{admission.Allowed(""), metrics.OutcomeAllowed},
		{patched, metrics.OutcomePatched},
		{admission.Denied("no"), metrics.OutcomeDenied},
		{admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 422}}}, metrics.OutcomeDenied},
		{admission.Errored(http.StatusBadRequest, assert.AnError), metrics.OutcomeError},
		{admission.Errored(http.StatusInternalServerError, assert.AnError), metrics.OutcomeError},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, Outcome(tc.resp))
	}
	before := testutil.CollectAndCount(metrics.AdmissionDuration)
	Observe("test-webhook", time.Now(), time.Now().Add(time.Millisecond), admission.Allowed(""))
	assert.Equal(t, before+1, testutil.CollectAndCount(metrics.AdmissionDuration))
	resp := Errorf(http.StatusBadRequest, "bad %s", "thing")
	assert.Equal(t, "bad thing", resp.Result.Message)
}

func TestGuard(t *testing.T) {
	reached := false
	h := Guard(64, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	tests := []struct {
		name, method, body string
		code               int
		msg                string
	}{
		{"GET", http.MethodGet, "", http.StatusMethodNotAllowed, "POSTed"},
		{"empty", http.MethodPost, "", http.StatusBadRequest, "empty"},
		{"too large", http.MethodPost, strings.Repeat("x", 65), http.StatusRequestEntityTooLarge, "limit is 64 bytes"},
		{"not JSON", http.MethodPost, "{", http.StatusBadRequest, "not JSON"},
		{"not a review", http.MethodPost, `{"kind":"Pod"}`, http.StatusBadRequest, "expected an admission.k8s.io/v1 AdmissionReview"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, "/", strings.NewReader(tc.body)))
			assert.Equal(t, tc.code, rec.Code)
			assert.Contains(t, rec.Body.String(), tc.msg)
		})
	}
	assert.False(t, reached)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`)))
	assert.True(t, reached, "a review goes through")
}
