package policies

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// benchInput is a typical agent Job as the templater renders it.
func benchInput(b *testing.B) Input {
	b.Helper()
	raw, err := os.ReadFile("testdata/bench-job.json")
	if err != nil {
		b.Fatal(err)
	}
	if !json.Valid(raw) {
		b.Fatal("testdata/bench-job.json is not JSON")
	}
	return Input{Request: &admissionv1.AdmissionRequest{
		UID:       "bench",
		Kind:      metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"},
		Namespace: "agents",
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}, NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "agents"}}
}

// benchEngine loads the embedded policies, or $FLOWFORGE_BENCH_POLICY_DIR
// to compare a policy change.
func benchEngine(b *testing.B) *Engine {
	b.Helper()
	e, err := NewEngine(context.Background(), Options{Dir: os.Getenv("FLOWFORGE_BENCH_POLICY_DIR")})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkMutateEval(b *testing.B) {
	e, in := benchEngine(b), benchInput(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Mutate(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateEval(b *testing.B) {
	e, in := benchEngine(b), benchInput(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Validate(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
