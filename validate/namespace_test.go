package validate

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/internal/metrics"
)

var (
	nsOwner = authenticationv1.UserInfo{Username: "alice", Groups: []string{"team-a:owners", "system:authenticated"}}
	nsAdmin = authenticationv1.UserInfo{Username: "bob", Groups: []string{"flowforge:platform-admins", "system:authenticated"}}
)

func namespaceJSON(t *testing.T, labels, annotations map[string]string) string {
	t.Helper()
	obj := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "team-a", "labels": labels, "annotations": annotations}}
	raw, err := json.Marshal(obj)
	require.NoError(t, err)
	return string(raw)
}

func namespaceRequest(op admissionv1.Operation, user authenticationv1.UserInfo, raw, old string) admission.Request {
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Namespace"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "namespaces"},
		Name:      "team-a",
		Operation: op,
		UserInfo:  user,
		Object:    runtime.RawExtension{Raw: []byte(raw)},
	}}
	if old != "" {
		req.OldObject = runtime.RawExtension{Raw: []byte(old)}
	}
	return req
}

func TestNamespaceHandlerDecisions(t *testing.T) {
	h := NewNamespaceHandler(sharedEngine(t), clock.RealClock{})
	managedNS := namespaceJSON(t, map[string]string{"flowforge.io/managed": "true", "team": "a"}, nil)
	unmanaged := namespaceJSON(t, map[string]string{"team": "a"}, nil)
	relaxed := namespaceJSON(t, map[string]string{"flowforge.io/managed": "true", "team": "a", "flowforge.io/seccomp": "runtime-default"}, nil)
	renamed := namespaceJSON(t, map[string]string{"flowforge.io/managed": "true", "team": "b"}, map[string]string{"note": "x"})
	wrongKind := namespaceRequest(admissionv1.Create, nsOwner, managedNS, "")
	wrongKind.Kind = metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}
	tests := []struct {
		name        string
		req         admission.Request
		allowed     bool
		code        int32
		msgContains []string
		causes      []string
	}{
		{name: "the owner cannot remove the managed label", req: namespaceRequest(admissionv1.Update, nsOwner, unmanaged, managedNS), code: http.StatusForbidden,
			msgContains: []string{`namespaces "team-a" is forbidden`, "metadata.labels[flowforge.io/managed]", "the label flowforge.io/managed", "flowforge:platform-admins", `user "alice" may not`},
			causes:      []string{"metadata.labels[flowforge.io/managed]"}},
		{name: "the owner cannot add the seccomp label", req: namespaceRequest(admissionv1.Update, nsOwner, relaxed, managedNS), code: http.StatusForbidden,
			msgContains: []string{"the label flowforge.io/seccomp", "flowforge:platform-admins"}, causes: []string{"metadata.labels[flowforge.io/seccomp]"}},
		{name: "the owner cannot create a managed namespace", req: namespaceRequest(admissionv1.Create, nsOwner, managedNS, ""), code: http.StatusForbidden,
			causes: []string{"metadata.labels[flowforge.io/managed]"}},
		{name: "the owner cannot null the labels", req: namespaceRequest(admissionv1.Update, nsOwner, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a","labels":null}}`, managedNS),
			code: http.StatusForbidden, causes: []string{"metadata.labels[flowforge.io/managed]"}},
		{name: "the owner may change other labels and annotations", req: namespaceRequest(admissionv1.Update, nsOwner, renamed, managedNS), allowed: true},
		{name: "an admin may remove the managed label", req: namespaceRequest(admissionv1.Update, nsAdmin, unmanaged, managedNS), allowed: true},
		{name: "an admin may add the seccomp label", req: namespaceRequest(admissionv1.Update, nsAdmin, relaxed, managedNS), allowed: true},
		{name: "delete is not judged", req: namespaceRequest(admissionv1.Delete, nsOwner, "", managedNS), allowed: true},
		{name: "unknown operation", req: namespaceRequest("SHRED", nsOwner, managedNS, ""), code: http.StatusBadRequest, msgContains: []string{`unsupported operation "SHRED"`}},
		{name: "wrong kind", req: wrongKind, code: http.StatusBadRequest, msgContains: []string{"expected a /v1, Kind=Namespace"}},
		{name: "missing object", req: namespaceRequest(admissionv1.Create, nsOwner, "", ""), code: http.StatusBadRequest, msgContains: []string{"the request has no object"}},
		{name: "null object", req: namespaceRequest(admissionv1.Create, nsOwner, "null", ""), code: http.StatusBadRequest, msgContains: []string{"the request has no object"}},
		{name: "update without old object", req: namespaceRequest(admissionv1.Update, nsOwner, managedNS, ""), code: http.StatusBadRequest, msgContains: []string{"the request has no oldObject"}},
		{name: "malformed object", req: namespaceRequest(admissionv1.Create, nsOwner, `{"metadata":{"labels":{"flowforge.io/managed":7}}}`, ""), code: http.StatusBadRequest,
			msgContains: []string{"the object is not a decodable /v1, Kind=Namespace"}},
		{name: "malformed old object", req: namespaceRequest(admissionv1.Update, nsOwner, managedNS, `{"metadata":[]}`), code: http.StatusBadRequest,
			msgContains: []string{"the oldObject is not a decodable /v1, Kind=Namespace"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.Handle(context.Background(), tc.req)
			assert.Equal(t, tc.allowed, resp.Allowed)
			if tc.code == 0 {
				return
			}
			require.NotNil(t, resp.Result)
			assert.Equal(t, tc.code, resp.Result.Code)
			for _, m := range tc.msgContains {
				assert.Contains(t, resp.Result.Message, m)
			}
			if tc.causes != nil {
				require.NotNil(t, resp.Result.Details)
				var fields []string
				for _, c := range resp.Result.Details.Causes {
					fields = append(fields, c.Field)
					assert.Equal(t, metav1.CauseType("FieldValueForbidden"), c.Type)
				}
				assert.Equal(t, tc.causes, fields)
			}
		})
	}
}

func TestNamespaceEvaluationErrorFailsClosed(t *testing.T) {
	h := NewNamespaceHandler(brokenPolicy{sharedEngine(t)}, clock.RealClock{})
	managedNS := namespaceJSON(t, map[string]string{"flowforge.io/managed": "true"}, nil)
	resp := h.Handle(context.Background(), namespaceRequest(admissionv1.Update, nsAdmin, managedNS, managedNS))
	assert.False(t, resp.Allowed)
	assert.Equal(t, int32(http.StatusInternalServerError), resp.Result.Code)
	assert.Contains(t, resp.Result.Message, `could not check this change to namespace "team-a"'s labels, so it is denied: eval timeout`)
}

func TestNamespaceDenialsAreCountedButNotDryRuns(t *testing.T) {
	h := NewNamespaceHandler(sharedEngine(t), clock.RealClock{})
	denials := metrics.Denials.WithLabelValues(h.Name)
	denied := metrics.AdmissionDuration.WithLabelValues(h.Name, metrics.OutcomeDenied)
	before, beforeObserved := testutil.ToFloat64(denials), histogramCount(t, denied)
	req := namespaceRequest(admissionv1.Create, nsOwner, namespaceJSON(t, map[string]string{"flowforge.io/managed": "true"}, nil), "")
	req.DryRun = ptr.To(true)
	assert.False(t, h.Handle(context.Background(), req).Allowed, "a dry run gets the same verdict")
	assert.Equal(t, before, testutil.ToFloat64(denials))
	req.DryRun = nil
	assert.False(t, h.Handle(context.Background(), req).Allowed)
	assert.Equal(t, before+1, testutil.ToFloat64(denials))
	assert.Equal(t, beforeObserved+2, histogramCount(t, denied), "both answers are in the latency histogram")
}

// histogramCount returns how many observations a histogram holds.
func histogramCount(t *testing.T, o prometheus.Observer) uint64 {
	t.Helper()
	m, ok := o.(prometheus.Metric)
	require.True(t, ok, "%T is not a metric", o)
	var out dto.Metric
	require.NoError(t, m.Write(&out))
	return out.GetHistogram().GetSampleCount()
}

// FuzzNamespaceHandle sends arbitrary objects through the namespace
// handler as a namespace owner's CREATE and UPDATE of a managed namespace.
// It must never panic; every refusal carries a message; and whenever the
// object decodes, the answer follows from it: a change to a flowforge.io/
// label or annotation is refused with a 403 that names it, anything else
// is allowed.
func FuzzNamespaceHandle(f *testing.F) {
	old := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a","labels":{"flowforge.io/managed":"true","team":"a"}}}`
	f.Add(old)
	f.Add(`{"metadata":{"name":"team-a","labels":{"team":"b"}}}`)
	f.Add(`{"metadata":{"labels":{"flowforge.io/managed":"true","team":"a"},"annotations":{"flowforge.io/x":""}}}`)
	f.Add(`{"metadata":{"labels":null,"annotations":{"a":"b"}}}`)
	f.Add(`{"metadata":{"labels":{"flowforge.io/managed":7}}}`)
	f.Add(`null`)
	f.Add(`[]`)
	h := NewNamespaceHandler(sharedEngine(f), clock.RealClock{})
	oldKeys := map[string]string{"labels/flowforge.io/managed": "true"}
	check := func(t *testing.T, op admissionv1.Operation, object, oldObject string, before map[string]string) {
		resp := h.Handle(context.Background(), namespaceRequest(op, nsOwner, object, oldObject))
		if !resp.Allowed && (resp.Result == nil || resp.Result.Message == "") {
			t.Fatalf("a refusal without a message: %+v", resp)
		}
		ns, err := decodeNamespace([]byte(object), "object")
		if err != nil {
			if resp.Allowed {
				t.Fatalf("an undecodable object was allowed: %q", object)
			}
			return
		}
		after := flowforgeKeys(ns.Labels, ns.Annotations)
		changed := len(after) != len(before)
		for k, v := range after {
			if w, ok := before[k]; !ok || w != v {
				changed = true
			}
		}
		switch {
		case changed && (resp.Allowed || resp.Result.Code != http.StatusForbidden || resp.Result.Details == nil || len(resp.Result.Details.Causes) == 0):
			t.Fatalf("a change to flowforge.io/ keys (%v -> %v) was not refused with its fields: %+v", before, after, resp.Result)
		case !changed && !resp.Allowed:
			t.Fatalf("a change that keeps the flowforge.io/ keys was refused: %s", resp.Result.Message)
		}
	}
	f.Fuzz(func(t *testing.T, object string) {
		check(t, admissionv1.Create, object, "", map[string]string{})
		check(t, admissionv1.Update, object, old, oldKeys)
	})
}

// flowforgeKeys collects the flowforge.io/ labels and annotations.
func flowforgeKeys(labels, annotations map[string]string) map[string]string {
	out := map[string]string{}
	for prefix, m := range map[string]map[string]string{"labels/": labels, "annotations/": annotations} {
		for k, v := range m {
			if strings.HasPrefix(k, "flowforge.io/") {
				out[prefix+k] = v
			}
		}
	}
	return out
}
