package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/flowforge/flowforge/policies"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// benchInput is a typical agent Job as the templater renders it.
func benchInput(b testing.TB) Input {
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
	e, err := New(context.Background(), Options{Dir: os.Getenv("FLOWFORGE_BENCH_POLICY_DIR")})
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

// distinctJobs renders n Jobs from testdata/bench-job.json that differ as
// one template's Jobs do: ids, names, tasks and secret names.
func distinctJobs(b *testing.B, n int) []Input {
	b.Helper()
	base := benchInput(b)
	out := make([]Input, 0, n)
	for i := range n {
		var job map[string]any
		if err := json.Unmarshal(base.Request.Object.Raw, &job); err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprintf("j%06d", i)
		meta := job["metadata"].(map[string]any)
		meta["name"] = "claude-job-" + id
		meta["labels"].(map[string]any)["job-id"] = id
		meta["annotations"].(map[string]any)["flowforge.io/task"] = "fix issue " + id
		ctr := job["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
		ctr["env"] = []any{
			map[string]any{"name": "TASK", "value": "fix issue " + id},
			map[string]any{"name": "GIT_TOKEN", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "git-" + id, "key": "token"}}},
		}
		raw, err := json.Marshal(job)
		if err != nil {
			b.Fatal(err)
		}
		req := base.Request.DeepCopy()
		req.UID = types.UID("bench-" + id)
		req.Object = runtime.RawExtension{Raw: raw}
		out = append(out, Input{Request: req, NamespaceLabels: base.NamespaceLabels})
	}
	return out
}

// BenchmarkDecide measures mutate plus validate on a stream of distinct
// Jobs and on one Job repeated, with and without the decision cache, and
// reports the cache's hit rate.
func BenchmarkDecide(b *testing.B) {
	streams := map[string][]Input{"distinct": distinctJobs(b, 4096), "same": {benchInput(b)}}
	for _, stream := range []string{"distinct", "same"} {
		for _, cache := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/cache=%v", stream, cache), func(b *testing.B) {
				e, err := New(context.Background(), Options{Dir: os.Getenv("FLOWFORGE_BENCH_POLICY_DIR"), DisableCache: !cache})
				if err != nil {
					b.Fatal(err)
				}
				inputs := streams[stream]
				ctx := context.Background()
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					in := inputs[i%len(inputs)]
					i++
					if _, err := e.Mutate(ctx, in); err != nil {
						b.Fatal(err)
					}
					if _, err := e.Validate(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
				st := e.CacheStats()
				b.ReportMetric(st["mutate"].HitRate(), "mutate-hit-rate")
				b.ReportMetric(st["validate"].HitRate(), "validate-hit-rate")
			})
		}
	}
}

// identityInput is the validation input of the templated Job, hardened by
// the policy (what the validating webhook sees), as its owner creates it
// in a managed namespace.
func identityInput(b testing.TB, e *Engine) Input {
	b.Helper()
	in := benchInput(b)
	in.Request.UserInfo.Username = "u-42"
	in.NamespaceLabels = map[string]string{"flowforge.io/managed": "true", "kubernetes.io/metadata.name": "agents"}
	in.Claims = &policies.Claims{JobID: []policies.ClaimHolder{}}
	m, err := e.Mutate(context.Background(), in)
	if err != nil {
		b.Fatal(err)
	}
	ops, err := m.Prepared()
	if err != nil {
		b.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(in.Request.Object.Raw, &obj); err != nil {
		b.Fatal(err)
	}
	if _, err := ops.Apply(obj); err != nil {
		b.Fatal(err)
	}
	if in.Request.Object.Raw, err = json.Marshal(obj); err != nil {
		b.Fatal(err)
	}
	return in
}

// BenchmarkIdentityQuery measures the uncached identity query alone, the
// part of every validation the decision cache cannot save, with each
// evaluator: topdown and the compiled one that serves it (irvm.go).
func BenchmarkIdentityQuery(b *testing.B) {
	e := benchEngine(b)
	in := identityInput(b, e)
	p := e.Current()
	value, err := p.inputValue(in)
	if err != nil {
		b.Fatal(err)
	}
	if dump := os.Getenv("FLOWFORGE_DUMP_INPUT"); dump != "" {
		if err := os.WriteFile(dump, []byte(value.String()), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if evaluator, reason := p.IdentityEvaluator(); evaluator != "compiled" {
		b.Fatalf("the identity query is not compiled: %s", reason)
	}
	b.Run("topdown", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.eval(ctx, p.identity, value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compiled", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.evalIdentityIR(ctx, value); err != nil {
				b.Fatal(err)
			}
		}
	})
}
