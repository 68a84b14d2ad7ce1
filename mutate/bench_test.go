package mutate

import (
	"context"
	"os"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/yaml"
)

// BenchmarkHandle measures one admission of a typical agent Job (the
// templater's output: one container, env with secret references,
// labels and annotations), from request to JSON patch.
func BenchmarkHandle(b *testing.B) {
	data, err := os.ReadFile("testdata/golden/bare.input.yaml")
	if err != nil {
		b.Fatal(err)
	}
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		b.Fatal(err)
	}
	h := newHandler(b, map[string]string{"kubernetes.io/metadata.name": "agents"})
	req := request(admissionv1.Create, raw)
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
