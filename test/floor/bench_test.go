package floor

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/mutate"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/templates"
	"github.com/flowforge/flowforge/validate"
)

// BenchmarkHandlers measures the admission handlers without HTTP, side by
// side in one run: the floor (decode, harden, PatchResponseFromRaw) and
// FlowForge's mutate then validate of the hardened Job (what the API
// server sends), with the decision cache, over two streams of distinct
// Jobs: templated (the templater's Jobs; ids, names, tasks and secret
// names differ) and bare (a labelled Job with one container, as kubectl
// users write it; names and ids differ). Its ratio is steadier than either
// number on a machine whose cores are shared.
//
//	go test -run '^$' -bench Handlers -benchmem ./test/floor/
func BenchmarkHandlers(b *testing.B) {
	const n = 128
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{})
	require.NoError(b, err)
	ns := func(context.Context, string) (map[string]string, error) {
		return map[string]string{"flowforge.io/managed": "true", "kubernetes.io/metadata.name": "agents"}, nil
	}
	mutator := &mutate.Handler{Policy: eng, Namespaces: ns, Clock: clock.RealClock{}}
	validator := validate.NewJobHandler(eng, ns, clock.RealClock{})
	validator.Claims = func(context.Context, string, string) ([]policies.ClaimHolder, error) { return nil, nil }
	r, err := templates.NewRenderer(templates.RendererOptions{})
	require.NoError(b, err)
	streams := map[string][][]byte{}
	for i := range n {
		rendered, err := r.Render(templates.Request{
			ID: fmt.Sprintf("bench-%d", i+1), UserID: "alice", Repository: "acme/widgets", RepositoryURL: "https://github.com/acme/widgets.git",
			Branch: "fix-parser", Task: fmt.Sprintf("Make the parser skip empty lines (case %d).", i+1), Timeout: 30 * time.Minute,
		})
		require.NoError(b, err)
		rendered.Job.Namespace = "agents"
		job, err := json.Marshal(rendered.Job)
		require.NoError(b, err)
		streams["templated"] = append(streams["templated"], job)
		streams["bare"] = append(streams["bare"], bareJob(b, i+1))
	}
	for _, stream := range []string{"templated", "bare"} {
		mutateReqs := make([]admission.Request, n)
		validateReqs := make([]admission.Request, n)
		for i, job := range streams[stream] {
			mutateReqs[i] = jobRequest(job)
			hardened, _, err := mutate.Review(ctx, mutator, "agents", job)
			require.NoError(b, err)
			validateReqs[i] = jobRequest(hardened)
		}
		b.Run(stream+"/floor", func(b *testing.B) {
			h := NewHandler()
			b.ReportAllocs()
			cpu := cpuTime()
			i := 0
			for b.Loop() {
				if resp := h.Handle(ctx, mutateReqs[i%n]); !resp.Allowed {
					b.Fatalf("floor: %v", resp.Result)
				}
				i++
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(i), "cpu-ns/op")
		})
		b.Run(stream+"/flowforge", func(b *testing.B) {
			before := eng.CacheStats()
			b.ReportAllocs()
			cpu := cpuTime()
			i := 0
			for b.Loop() {
				if resp := mutator.Handle(ctx, mutateReqs[i%n]); !resp.Allowed || len(resp.Patches) == 0 {
					b.Fatalf("mutate: %v", resp.Result)
				}
				if resp := validator.Handle(ctx, validateReqs[i%n]); !resp.Allowed {
					b.Fatalf("validate: %v", resp.Result)
				}
				i++
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(i), "cpu-ns/op")
			after := eng.CacheStats()
			b.ReportMetric(hitRate(before["mutate"], after["mutate"]), "mutate-hit-rate")
			b.ReportMetric(hitRate(before["validate"], after["validate"]), "validate-hit-rate")
		})
	}
}

// bareJob is a labelled Job as a kubectl user writes it: one container,
// no template, nothing hardened; the i-th has its own name and job id.
func bareJob(b *testing.B, i int) []byte {
	b.Helper()
	job, err := json.Marshal(map[string]any{
		"apiVersion": "batch/v1", "kind": "Job",
		"metadata": map[string]any{
			"name": fmt.Sprintf("bare-%d", i), "namespace": "agents",
			"labels": map[string]any{"app": "flowforge", "user-id": "alice", "job-id": fmt.Sprintf("bare-%d", i)},
		},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"restartPolicy": "Never",
			"containers":    []any{map[string]any{"name": "agent", "image": "ghcr.io/flowforge/claude-worker:1.4.0"}},
		}}},
	})
	require.NoError(b, err)
	return job
}

// hitRate is the hit rate of the lookups between two snapshots of a
// cache's statistics (the setup's misses are not the benchmark's).
func hitRate(before, after engine.CacheStats) float64 {
	return engine.CacheStats{Hits: after.Hits - before.Hits, Misses: after.Misses - before.Misses}.HitRate()
}

func jobRequest(job []byte) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "u", Operation: admissionv1.Create, Namespace: "agents",
		Kind:     metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"},
		Resource: metav1.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"},
		UserInfo: authenticationv1.UserInfo{Username: "alice"},
		Object:   runtime.RawExtension{Raw: job},
	}}
}

// cpuTime is the process's user and system CPU time in nanoseconds: on a
// machine whose cores are shared, CPU per op is steadier than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
