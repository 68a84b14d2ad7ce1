package mutate

import (
	"context"
	"os"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/policies/engine"
)

// benchJob is a typical agent Job (the templater's output: one container,
// env with secret references, labels and annotations), as JSON.
func benchJob(b *testing.B) []byte {
	b.Helper()
	data, err := os.ReadFile("testdata/golden/bare.input.yaml")
	if err != nil {
		b.Fatal(err)
	}
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkHandle measures one admission of a typical agent Job, from
// request to JSON patch.
func BenchmarkHandle(b *testing.B) {
	h := newHandler(b, map[string]string{"kubernetes.io/metadata.name": "agents"})
	req := request(admissionv1.Create, benchJob(b))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp := h.Handle(ctx, req)
		if !resp.Allowed || len(resp.Patches) == 0 {
			b.Fatalf("unexpected response: %+v", resp.Result)
		}
	}
}

// BenchmarkHandleWithoutPolicy measures the handler's Go side alone: the
// same steps as Handle after the policy has decided (decoding the Job,
// applying the decisions, encoding and type-checking the result, and the
// JSON patch of PatchResponseFromRaw). With BenchmarkHandle it splits the
// handler's time between OPA and Go.
func BenchmarkHandleWithoutPolicy(b *testing.B) {
	raw := benchJob(b)
	req := request(admissionv1.Create, raw)
	obj, err := decodeObject(req.AdmissionRequest)
	if err != nil {
		b.Fatal(err)
	}
	m, err := newEngine(b).Mutate(context.Background(), engine.Input{Request: &req.AdmissionRequest, Object: obj})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		obj, err := decodeObject(req.AdmissionRequest)
		if err != nil {
			b.Fatal(err)
		}
		mutated, _, err := applyTo(obj, m.Ops)
		if err != nil {
			b.Fatal(err)
		}
		if resp := admission.PatchResponseFromRaw(raw, mutated); len(resp.Patches) == 0 {
			b.Fatal("no patch")
		}
	}
}

// BenchmarkHandleFromDecision is BenchmarkHandleWithoutPolicy with the
// handler's patch built from the decision (patch.go) instead of
// PatchResponseFromRaw: the Go side as the handler runs it now.
func BenchmarkHandleFromDecision(b *testing.B) {
	raw := benchJob(b)
	req := request(admissionv1.Create, raw)
	obj, err := decodeObject(req.AdmissionRequest)
	if err != nil {
		b.Fatal(err)
	}
	m, err := newEngine(b).Mutate(context.Background(), engine.Input{Request: &req.AdmissionRequest, Object: obj})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		obj, err := decodeObject(req.AdmissionRequest)
		if err != nil {
			b.Fatal(err)
		}
		before := anchorsOf(obj, m.Ops)
		_, applied, err := applyTo(obj, m.Ops)
		if err != nil {
			b.Fatal(err)
		}
		if resp := patchResponse(patchFromOps(obj, before, applied, nil)); len(resp.Patches) == 0 {
			b.Fatal("no patch")
		}
	}
}
