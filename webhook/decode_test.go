package webhook

import (
	"testing"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestDecodeStrict(t *testing.T) {
	jobKind := batchv1.SchemeGroupVersion.WithKind("Job")
	podKind := corev1.SchemeGroupVersion.WithKind("Pod")
	const job = `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}}`
	const pod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`
	tests := []struct {
		name, raw string
		kind      string
		wantErr   string
	}{
		{name: "a Job as a Job", raw: job, kind: "Job"},
		{name: "a Pod as a Pod", raw: pod, kind: "Pod"},
		{name: "a Pod as a Job", raw: pod, kind: "Job", wantErr: `its apiVersion "v1" and kind "Pod" are not the request's batch/v1 Job`},
		{name: "a Job as a Pod", raw: job, kind: "Pod", wantErr: `its apiVersion "batch/v1" and kind "Job" are not the request's v1 Pod`},
		{name: "a Pod's body claiming to be a Job", kind: "Job",
			raw: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}`, wantErr: `unknown field "spec.containers"`},
		{name: "no apiVersion", raw: `{"kind":"Job"}`, kind: "Job", wantErr: `its apiVersion "" and kind "Job"`},
		{name: "another version", raw: `{"apiVersion":"batch/v2","kind":"Job"}`, kind: "Job", wantErr: `apiVersion "batch/v2"`},
		{name: "a key in another case", raw: `{"apiVersion":"batch/v1","kind":"Job","Spec":{}}`, kind: "Job", wantErr: `unknown field "Spec"`},
		{name: "a duplicated key", raw: `{"apiVersion":"batch/v1","kind":"Job","spec":{},"spec":{}}`, kind: "Job", wantErr: `duplicate field "spec"`},
		{name: "a duplicated kind", raw: `{"apiVersion":"batch/v1","kind":"Pod","kind":"Job"}`, kind: "Job", wantErr: `duplicate field "kind"`},
		{name: "a field of the wrong type", raw: `{"apiVersion":"batch/v1","kind":"Job","spec":{"template":"x"}}`, kind: "Job", wantErr: "cannot unmarshal string"},
		{name: "not an object", raw: `[1]`, kind: "Job", wantErr: "cannot unmarshal array"},
		{name: "another kind that fails to decode", raw: `{"apiVersion":"v1","kind":"Pod","spec":{"template":"x"}}`, kind: "Job", wantErr: `its apiVersion "v1" and kind "Pod" are not the request's batch/v1 Job`},
		{name: "a malformed apiVersion", raw: `{"apiVersion":"a/b/c","kind":"Job"}`, kind: "Job", wantErr: `its apiVersion "a/b/c" and kind "Job"`},
		{name: "empty", raw: "  ", kind: "Job", wantErr: "it is empty"},
	}
	t.Run("an untyped value is checked by a pass of its own", func(t *testing.T) {
		var into map[string]any
		require.NoError(t, DecodeStrict([]byte(job), jobKind, &into))
		require.ErrorContains(t, DecodeStrict([]byte(pod), jobKind, &into), `its apiVersion "v1" and kind "Pod"`)
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.kind == "Job" {
				err = DecodeStrict([]byte(tc.raw), jobKind, &batchv1.Job{})
			} else {
				err = DecodeStrict([]byte(tc.raw), podKind, &corev1.Pod{})
			}
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
