package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// referenceObject is what ParseJSONObject must give: encoding/json with
// UseNumber, refusing anything but an object.
func referenceObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, assert.AnError
	}
	return obj, nil
}

func assertObjectAsReference(t *testing.T, raw []byte) bool {
	t.Helper()
	want, wantErr := referenceObject(raw)
	got, exact, gotErr := ParseJSONObject(raw)
	if wantErr != nil {
		require.Error(t, gotErr, "%.80q", raw)
		assert.False(t, exact)
		return false
	}
	require.NoError(t, gotErr, "%.80q", raw)
	assert.Equal(t, want, got, "%.80q", raw)
	return exact
}

func TestParseJSONObjectMatchesEncodingJSON(t *testing.T) {
	for name, tc := range map[string]struct {
		doc   string
		exact bool
	}{
		"object":         {`{"a": 1, "b": [true, false, null], "c": {"d": "e"}}`, true},
		"empty":          {`{"a": {}, "b": []}`, true},
		"whitespace":     {" \t\n{ \"a\" :\r [ 1 , 2 ] } \n", true},
		"numbers":        {`{"n": [0, -0, 1.5, -2.25e3, 1E+2, 3e-1, 12345678901234567890123, 1.50]}`, true},
		"escapes":        {`{"a\"b": "c\\d\/e\u00e9\ud83d\ude00\n\t"}`, true},
		"invalid utf8":   {"{\"a\": \"\xff\xfe\"}", true},
		"lone surrogate": {`{"a": "\ud800"}`, true},
		// encoding/json keeps the last of duplicated keys: not exact.
		"duplicate key":        {`{"a": 1, "a": 2}`, false},
		"nested duplicate key": {`{"s": {"b": 1, "b": {"c": 2}}}`, false},
		// encoding/json's Decoder reads one value and leaves the rest.
		"trailing data":  {`{"a": 1} {"b": 2}`, false},
		"deep but valid": {`{"a":` + strings.Repeat("[", 1500) + strings.Repeat("]", 1500) + `}`, false},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.exact, assertObjectAsReference(t, []byte(tc.doc)))
		})
	}
	for name, doc := range map[string]string{
		"scalar": `"just a string"`, "null": `null`, "array": `[1]`, "trailing comma": `{"a": 1,}`,
		"leading zero": `{"a": 01}`, "control char": "{\"a\": \"a\x01b\"}", "unterminated": `{"a": "b`,
		"bad literal": `{"a": tru}`, "missing colon": `{"a" 1}`, "empty": ``,
	} {
		t.Run(name, func(t *testing.T) { assertObjectAsReference(t, []byte(doc)) })
	}
}

func TestParseJSONObjectOnTestdata(t *testing.T) {
	var files []string
	for _, glob := range []string{"testdata/*.json", "../../mutate/testdata/golden/*.json", "../../test/worstcase/testdata/*.json"} {
		m, err := filepath.Glob(glob)
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		t.Run(filepath.Base(f), func(t *testing.T) { assertObjectAsReference(t, raw) })
	}
}

func FuzzParseJSONObject(f *testing.F) {
	f.Add([]byte(`{"a": [1, "b", {"c": null}], "d": 1.5e3}`))
	f.Add([]byte(`{"\u00e9": "\ud83d\ude00"}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, wantErr := referenceObject(raw)
		got, exact, gotErr := ParseJSONObject(raw)
		if wantErr != nil {
			if gotErr == nil {
				t.Fatalf("%q: the reference fails (%v), the parser gave %v", raw, wantErr, got)
			}
			return
		}
		if gotErr != nil {
			t.Fatalf("%q: %v", raw, gotErr)
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("%q: want %v, got %v", raw, want, got)
		}
		// Exact: the AST parse is exact too, and agrees.
		v, astExact, err := parseJSONValueExact(raw)
		if exact && (err != nil || !astExact) {
			t.Fatalf("%q: exact as Go values, not as AST (%v)", raw, err)
		}
		if exact {
			ref, err := ast.InterfaceToValue(got)
			if err != nil || ref.Compare(v) != 0 {
				t.Fatalf("%q: AST %v, Go values %v", raw, v, got)
			}
		}
	})
}

func TestParseJSONValueExact(t *testing.T) {
	for doc, exact := range map[string]bool{
		`{"a": [1, {"b": "c"}]}`:  true,
		`{"a": 1, "a": 1}`:        false,
		`{"a": {"b": 1, "b": 2}}`: false,
		`{"a": 1} x`:              false,
		`[` + strings.Repeat(`[`, 1001) + `` + strings.Repeat(`]`, 1001) + `]`: false,
	} {
		_, got, err := parseJSONValueExact([]byte(doc))
		if err == nil {
			assert.Equal(t, exact, got, "%.40s", doc)
		} else {
			assert.False(t, got, "%.40s", doc)
		}
	}
}

func TestParseObject(t *testing.T) {
	o, err := ParseObject([]byte(`{"metadata": {"name": "n", "generateName": "g-", "labels": {"app": "flowforge", "n": 1}}}`))
	require.NoError(t, err)
	assert.True(t, o.Exact())
	name, generateName, labels := o.Meta()
	assert.Equal(t, "n", name)
	assert.Equal(t, "g-", generateName)
	assert.Equal(t, map[string]string{"app": "flowforge"}, labels, "only string values")

	o, err = ParseObject([]byte(`{"kind": "Job"}`))
	require.NoError(t, err)
	name, generateName, labels = o.Meta()
	assert.Empty(t, name+generateName)
	assert.Empty(t, labels)

	_, err = ParseObject([]byte(`[1]`))
	require.ErrorContains(t, err, "not a JSON object")
	_, err = ParseObject([]byte(`{`))
	require.Error(t, err)
}

func TestMasksKeepDecoding(t *testing.T) {
	job, pod := reflect.TypeFor[batchv1.Job](), reflect.TypeFor[corev1.Pod]()
	for _, tc := range []struct {
		name string
		t    reflect.Type
		mask string
		want bool
	}{
		{"a plain string", job, "metadata.name", true},
		{"a label value", job, "metadata.labels.job-id", true},
		{"a uid (a string type)", job, "metadata.ownerReferences.*.uid", true},
		{"every container list of a pod spec", job, "spec.template.spec.*.*.env.*.value", true},
		{"a Pod's", pod, "spec.*.*.env.*.value", true},
		{"a field the type does not have", job, "metadata.nosuchfield", true},
		{"a key into an array", job, "spec.template.spec.containers.name", true},
		{"into a quantity, which refuses objects", job, "spec.template.spec.containers.*.resources.limits.cpu.x", true},
		{"a quantity", job, "spec.template.spec.containers.*.resources.limits.cpu", false},
		{"a time", job, "metadata.creationTimestamp", false},
		{"a number", job, "spec.backoffLimit", false},
		{"into a raw field", job, "metadata.managedFields.*.fieldsV1.x", false},
		{"every field of a struct, one a quantity", job, "spec.template.spec.containers.*.resources.limits.*", false},
		{"every key of metadata", job, "metadata.*", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, masksKeepDecoding(tc.t, [][]string{strings.Split(tc.mask, ".")}))
		})
	}
}

func TestVouchKinds(t *testing.T) {
	assert.Empty(t, vouchKinds([]viewPath{{"request", "object", "spec"}}, nil), "a view of part of the object vouches for nothing")
	assert.Equal(t, map[string]bool{"Job": true, "Pod": true}, vouchKinds([]viewPath{{"request"}}, nil))
	assert.Equal(t, map[string]bool{"Pod": true}, vouchKinds([]viewPath{{"request", "object"}}, [][]string{{"spec", "backoffLimit"}}),
		"a mask of a Job's number: Jobs are not vouched for")
}

// TestDecodeVouched: a decision vouches for an object's strict decoding
// only once an object of its view decoded strictly, only for an exact
// parse, and only from the cache.
func TestDecodeVouched(t *testing.T) {
	ctx := context.Background()
	job := func(id string, dup bool) []byte {
		extra := ""
		if dup {
			extra = `"kind": "Job", `
		}
		return []byte(`{"apiVersion": "batch/v1", ` + extra + `"kind": "Job", "metadata": {"name": "` + id + `", "labels": {"app": "flowforge", "job-id": "` + id + `"}}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}`)
	}
	req := func(raw []byte) *admissionv1.AdmissionRequest {
		return &admissionv1.AdmissionRequest{Operation: admissionv1.Create, Namespace: "agents",
			Kind: metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, Object: runtime.RawExtension{Raw: raw}}
	}
	validate := func(e *Engine, raw []byte) *Object {
		t.Helper()
		o, err := ParseObject(raw)
		require.NoError(t, err)
		_, err = e.Validate(ctx, Input{Request: req(raw), Parsed: o})
		require.NoError(t, err)
		return o
	}
	e, err := New(ctx, Options{Tested: testedPolicies})
	require.NoError(t, err)
	for _, q := range []*cachedQuery{e.Current().mutateQ, e.Current().validateQ} {
		assert.Equal(t, map[string]bool{"Job": true, "Pod": true}, q.vouch, "the embedded policy's %s vouches for Jobs and Pods", q.name)
	}
	first := validate(e, job("a", false))
	assert.False(t, first.DecodeVouched(), "nothing decoded yet")
	assert.False(t, validate(e, job("b", false)).DecodeVouched(), "not marked")
	first.MarkDecoded()
	assert.True(t, validate(e, job("c", false)).DecodeVouched(), "another Job of the view")
	dup := validate(e, job("d", true))
	assert.False(t, dup.Exact())
	assert.False(t, dup.DecodeVouched(), "a duplicated key: not exact")

	uncached := func(raw []byte) *Object {
		o, err := ParseObject(raw)
		require.NoError(t, err)
		_, _, err = e.Current().validateWith(ctx, Input{Request: req(raw), Parsed: o}, false)
		require.NoError(t, err)
		return o
	}
	uncached(job("a", false)).MarkDecoded()
	assert.False(t, uncached(job("e", false)).DecodeVouched(), "no cache, no vouching")

	mutate := func(raw []byte) *Mutation {
		obj, exact, err := ParseJSONObject(raw)
		require.NoError(t, err)
		m, err := e.Mutate(ctx, Input{Request: req(raw), Object: obj, ObjectExact: exact})
		require.NoError(t, err)
		return m
	}
	m := mutate(job("a", false))
	assert.False(t, m.DecodeVouched())
	m.MarkDecoded()
	assert.True(t, mutate(job("b", false)).DecodeVouched())
	assert.False(t, mutate(job("c", true)).DecodeVouched(), "a duplicated key: not exact")
}
