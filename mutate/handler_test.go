package mutate

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies/engine"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// testedPolicies: the package's engines run the embedded policy's tests
// once, not at every engine they build.
var testedPolicies = engine.NewTestedPolicies()

func newEngine(t testing.TB) *engine.Engine {
	t.Helper()
	e, err := engine.New(context.Background(), engine.Options{Tested: testedPolicies})
	require.NoError(t, err)
	return e
}

func newHandler(t testing.TB, nsLabels map[string]string) *Handler {
	t.Helper()
	return &Handler{
		Policy:     newEngine(t),
		Namespaces: func(context.Context, string) (map[string]string, error) { return nsLabels, nil },
		Clock:      clock.RealClock{},
	}
}

func readJSON(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	out, err := yaml.YAMLToJSON(data)
	require.NoError(t, err)
	return out
}

// TestGolden hardens every testdata/golden/*.input.yaml and compares the
// result with its .golden.yaml; a second pass must change nothing.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.input.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	h := newHandler(t, map[string]string{"kubernetes.io/metadata.name": "agents"})
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.yaml")
		t.Run(name, func(t *testing.T) {
			job := []byte(strings.ReplaceAll(string(readJSON(t, in)), "REVISION", h.Policy.Current().Revision))
			hardened, resp, err := Review(context.Background(), h, "agents", job)
			require.NoError(t, err)

			got, err := yaml.JSONToYAML(hardened)
			require.NoError(t, err)
			// The revision changes with every policy edit; the golden files
			// pin the hardening, not the hash.
			got = []byte(strings.ReplaceAll(string(got), h.Policy.Current().Revision, "REVISION"))
			golden := filepath.Join("testdata/golden", name+".golden.yaml")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./mutate -update to create it")
			assert.Equal(t, string(want), string(got))

			var decoded batchv1.Job
			require.NoError(t, json.Unmarshal(hardened, &decoded), "the hardened Job decodes")

			again, resp2, err := Review(context.Background(), h, "agents", hardened)
			require.NoError(t, err)
			assert.Empty(t, resp2.Patches, "a second pass yields no patch")
			assert.JSONEq(t, string(hardened), string(again))
			if name == "already-hardened" {
				assert.Empty(t, resp.Patches, "an already hardened Job is left as it is")
			} else {
				assert.NotEmpty(t, resp.Patches)
			}
		})
	}
}

func request(op admissionv1.Operation, raw []byte) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"},
		Namespace: "agents",
		Operation: op,
		Object:    runtime.RawExtension{Raw: raw},
	}}
}

const labelledJob = `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge","job-id":"a","user-id":"u"}},"spec":{"template":{"spec":{"containers":[{"name":"w","image":"ghcr.io/flowforge/claude-worker:1.4.0"}]}}}}`

func TestHandlerDecisions(t *testing.T) {
	h := newHandler(t, nil)
	tests := []struct {
		name        string
		req         admission.Request
		allowed     bool
		patched     bool
		code        int32
		msgContains string
	}{
		{name: "labelled create is hardened", req: request(admissionv1.Create, []byte(labelledJob)), allowed: true, patched: true},
		{name: "unlabelled create is untouched", req: request(admissionv1.Create, []byte(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"x"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}}`)), allowed: true},
		// A request whose object is not what its kind says is malformed,
		// never hardened, labelled or not.
		{name: "a Pod sent as a Job", req: request(admissionv1.Create, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"flowforge"}},"spec":{"containers":[{"name":"c","image":"i"}]}}`)), code: http.StatusBadRequest, msgContains: `its apiVersion "v1" and kind "Pod" are not the request's batch/v1 Job`},
		{name: "a Pod relabelled as a Job", req: request(admissionv1.Create, []byte(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"p","labels":{"app":"flowforge"}},"spec":{"containers":[{"name":"c","image":"i","securityContext":{"privileged":true}}]}}`)), code: http.StatusBadRequest, msgContains: `unknown field "spec.containers"`},
		{name: "object without apiVersion and kind", req: request(admissionv1.Create, []byte(`{"metadata":{"name":"j","labels":{"app":"flowforge"}},"spec":{"template":{"spec":{"containers":[{"name":"w","image":"i"}]}}}}`)), code: http.StatusBadRequest, msgContains: `its apiVersion "" and kind "" are not the request's`},
		{name: "a Job of another group", req: request(admissionv1.Create, []byte(strings.Replace(labelledJob, `"batch/v1"`, `"batch.example.com/v1"`, 1))), code: http.StatusBadRequest, msgContains: "not the request's batch/v1 Job"},
		{name: "a field spelled in another case", req: request(admissionv1.Create, []byte(strings.Replace(labelledJob, `"spec":{"template"`, `"Spec":{"template"`, 1))), code: http.StatusBadRequest, msgContains: `unknown field "Spec"`},
		{name: "a duplicated field", req: request(admissionv1.Create, []byte(strings.Replace(labelledJob, `"spec":{"template"`, `"spec":{},"spec":{"template"`, 1))), code: http.StatusBadRequest, msgContains: `duplicate field "spec"`},
		{name: "update is left alone", req: request(admissionv1.Update, []byte(labelledJob)), allowed: true},
		{name: "delete is left alone", req: request(admissionv1.Delete, nil), allowed: true},
		{name: "unknown operation", req: request("EXPLODE", []byte(labelledJob)), code: http.StatusBadRequest, msgContains: "unsupported operation"},
		{name: "missing object", req: request(admissionv1.Create, nil), code: http.StatusBadRequest, msgContains: "no object"},
		{name: "not JSON", req: request(admissionv1.Create, []byte(`{"metadata":`)), code: http.StatusBadRequest, msgContains: "not a decodable batch/v1 Job"},
		{name: "wrongly typed Job", req: request(admissionv1.Create, []byte(`{"spec":{"template":"nope"}}`)), code: http.StatusBadRequest, msgContains: "not a decodable"},
		{name: "wrongly typed labelled Job", req: request(admissionv1.Create, []byte(`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"template":{"spec":{"containers":[{"name":7}]}}}}`)), code: http.StatusBadRequest, msgContains: "not a decodable"},
		{name: "not an object", req: request(admissionv1.Create, []byte(`[1,2]`)), code: http.StatusBadRequest, msgContains: "not a decodable"},
		{name: "wrong kind", req: func() admission.Request {
			r := request(admissionv1.Create, []byte(labelledJob))
			r.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
			return r
		}(), code: http.StatusBadRequest, msgContains: "expected a batch/v1 Job"},
		{name: "wrong version", req: func() admission.Request {
			r := request(admissionv1.Create, []byte(labelledJob))
			r.Kind.Version = "v2"
			return r
		}(), code: http.StatusBadRequest, msgContains: "expected a batch/v1 Job"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.Handle(context.Background(), tc.req)
			assert.Equal(t, tc.allowed, resp.Allowed)
			assert.Equal(t, tc.patched, len(resp.Patches) > 0)
			if tc.code != 0 {
				require.NotNil(t, resp.Result)
				assert.Equal(t, tc.code, resp.Result.Code)
				assert.Contains(t, resp.Result.Message, tc.msgContains)
			}
		})
	}
}

type failingPolicy struct{ *engine.Engine }

func (failingPolicy) Mutate(context.Context, engine.Input) (*engine.Mutation, error) {
	return nil, errors.New("rego exploded")
}

func TestFailsClosed(t *testing.T) {
	base := newHandler(t, nil)
	t.Run("policy evaluation error", func(t *testing.T) {
		h := &Handler{Policy: failingPolicy{base.Policy.(*engine.Engine)}, Namespaces: base.Namespaces, Clock: clock.RealClock{}}
		resp := h.Handle(context.Background(), request(admissionv1.Create, []byte(labelledJob)))
		assert.False(t, resp.Allowed)
		assert.Contains(t, resp.Result.Message, "could not harden this Job, so it is denied: rego exploded")
	})
	t.Run("namespace lookup error", func(t *testing.T) {
		h := &Handler{Policy: base.Policy, Clock: clock.RealClock{},
			Namespaces: func(context.Context, string) (map[string]string, error) { return nil, errors.New("cache not synced") }}
		resp := h.Handle(context.Background(), request(admissionv1.Create, []byte(labelledJob)))
		assert.False(t, resp.Allowed)
		assert.Contains(t, resp.Result.Message, "cache not synced")
	})
	t.Run("policy output that cannot be applied", func(t *testing.T) {
		_, _, err := Apply([]byte(labelledJob), []engine.Op{{Setting: "bad", Op: "set", Path: []any{"spec", "template", "spec", "containers", 7, "x"}, Value: true}})
		assert.ErrorContains(t, err, "out of range")
	})
	t.Run("policy output that is not a Job", func(t *testing.T) {
		_, _, err := Apply([]byte(labelledJob), []engine.Op{{Setting: "bad", Op: "set", Path: []any{"spec", "backoffLimit"}, Value: "many"}})
		assert.ErrorContains(t, err, "policy produced an invalid Job")
	})
}

// TestApplyCheckedRefusesWhatApplyRefuses: the handler checks only what
// the ops wrote (engine.WrittenBy); on every op it refuses exactly what checking
// the whole encoded Job refuses.
func TestApplyCheckedRefusesWhatApplyRefuses(t *testing.T) {
	job := `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge"}},"spec":{"template":{"spec":{"containers":[{"name":"a","image":"i"},{"name":"b","image":"i","env":[{"name":"E","value":"v"}]}]}}}}`
	tests := []struct {
		name string
		op   engine.Op
		bad  bool
	}{
		{"a number where a number goes", engine.Op{Setting: "s", Op: "set", Path: []any{"spec", "backoffLimit"}, Value: json.Number("3")}, false},
		{"a string where a number goes", engine.Op{Setting: "s", Op: "set", Path: []any{"spec", "backoffLimit"}, Value: "many"}, true},
		{"inside the second container", engine.Op{Setting: "s", Op: "set", Path: []any{"spec", "template", "spec", "containers", 1, "securityContext", "privileged"}, Value: "yes"}, true},
		{"a valid container field", engine.Op{Setting: "s", Op: "set", Path: []any{"spec", "template", "spec", "containers", 1, "securityContext", "privileged"}, Value: false}, false},
		{"an object where a string goes", engine.Op{Setting: "s", Op: "set", Path: []any{"spec", "template", "spec", "containers", 0, "image"}, Value: map[string]any{"a": "b"}}, true},
		{"a merge of labels", engine.Op{Setting: "m", Op: "merge", Path: []any{"spec", "template", "metadata", "labels"}, Value: map[string]any{"a": "b"}}, false},
		{"a merge of a number into labels", engine.Op{Setting: "m", Op: "merge", Path: []any{"spec", "template", "metadata", "labels"}, Value: map[string]any{"a": json.Number("1")}}, true},
		{"an added volume", engine.Op{Setting: "a", Op: "add", Key: "name", Path: []any{"spec", "template", "spec", "volumes"}, Value: map[string]any{"name": "tmp", "emptyDir": map[string]any{}}}, false},
		{"an added bad volume", engine.Op{Setting: "a", Op: "add", Key: "name", Path: []any{"spec", "template", "spec", "volumes"}, Value: map[string]any{"name": "tmp", "emptyDir": "x"}}, true},
		{"a union of finalizers", engine.Op{Setting: "u", Op: "union", Path: []any{"metadata", "finalizers"}, Value: []any{"f"}}, false},
		{"a union of numbers", engine.Op{Setting: "u", Op: "union", Path: []any{"metadata", "finalizers"}, Value: []any{json.Number("1")}}, true},
		{"a copy of labels", engine.Op{Setting: "c", Op: "copy", From: []any{"metadata", "labels"}, Path: []any{"spec", "template", "metadata", "labels"}, Value: []any{"app"}}, false},
		{"a removal", engine.Op{Setting: "r", Op: "remove", Path: []any{"spec", "template", "spec", "containers", 1, "env"}}, false},
		{"an unknown field is no type error", engine.Op{Setting: "s", Op: "set", Path: []any{"spec", "novel"}, Value: "x"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, wantErr := Apply([]byte(job), []engine.Op{tc.op})
			obj, err := decodeJSON([]byte(job))
			require.NoError(t, err)
			_, applied, gotErr := applyChecked(obj, []engine.Op{tc.op})
			assert.Equal(t, tc.bad, wantErr != nil, "whole check: %v", wantErr)
			assert.Equal(t, tc.bad, gotErr != nil, "check of the written values: %v", gotErr)
			if !tc.bad {
				assert.NotEmpty(t, applied)
			}
		})
	}
}

func TestDryRunHasNoSideEffects(t *testing.T) {
	h := newHandler(t, nil)
	before := testutil.ToFloat64(metrics.Mutations.WithLabelValues("runtimeClassName"))
	req := request(admissionv1.Create, []byte(labelledJob))
	req.DryRun = ptr.To(true)
	dry := h.Handle(context.Background(), req)
	assert.True(t, dry.Allowed)
	assert.Equal(t, before, testutil.ToFloat64(metrics.Mutations.WithLabelValues("runtimeClassName")), "dry runs are not counted")

	real := h.Handle(context.Background(), request(admissionv1.Create, []byte(labelledJob)))
	assert.Equal(t, len(real.Patches), len(dry.Patches), "a dry run gets the same answer")
	assert.Equal(t, before+1, testutil.ToFloat64(metrics.Mutations.WithLabelValues("runtimeClassName")))
}

func TestWarningsAreReturned(t *testing.T) {
	h := newHandler(t, nil)
	raw := strings.Replace(labelledJob, `"spec":{"template"`, `"spec":{"ttlSecondsAfterFinished":999999,"template"`, 1)
	resp := h.Handle(context.Background(), request(admissionv1.Create, []byte(raw)))
	require.True(t, resp.Allowed)
	require.Len(t, resp.Warnings, 1)
	assert.Contains(t, resp.Warnings[0], "ttlSecondsAfterFinished")
}
