package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/mutate"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/templates"
	"github.com/flowforge/flowforge/test/floor"
	"github.com/flowforge/flowforge/test/worstcase"
	"github.com/flowforge/flowforge/validate"
	"github.com/flowforge/flowforge/webhook"
)

// admissionStack serves the Job webhooks as Run does (guard with the
// policy's limits, controller-runtime webhook, FlowForge's handlers) with
// the given eng, and the pure-Go floor beside them.
func admissionStack(tb testing.TB, eng *engine.Engine) http.Handler {
	tb.Helper()
	ns := func(context.Context, string) (map[string]string, error) {
		return map[string]string{"flowforge.io/managed": "true", "kubernetes.io/metadata.name": "agents"}, nil
	}
	handlers := Handlers(eng, ns, clock.RealClock{})
	WithClaims(handlers, func(context.Context, string, string) ([]policies.ClaimHolder, error) { return nil, nil })
	opts := webhook.GuardOptions{Path: "bench", Limits: func() policies.Limits { return eng.Current().Limits() }}
	m := http.NewServeMux()
	for _, path := range []string{mutate.Path, validate.JobPath} {
		m.Handle(path, webhook.NewGuard(opts, &admission.Webhook{Handler: handlers[path]}))
	}
	m.Handle(floor.Path, &admission.Webhook{Handler: floor.NewHandler()})
	return m
}

// benchJobs renders n distinct Jobs of one kind: "templated" as the
// templater renders them for one repository (ids, names, tasks and secret
// names differ), "bare" a minimal labelled Job (ids and names differ).
func benchJobs(tb testing.TB, kind string, n int) [][]byte {
	tb.Helper()
	out := make([][]byte, 0, n)
	r, err := templates.NewRenderer(templates.RendererOptions{})
	require.NoError(tb, err)
	for i := range n {
		var job []byte
		switch kind {
		case "templated":
			rendered, err := r.Render(templates.Request{
				ID: fmt.Sprintf("bench-%d", i+1), UserID: "alice", Repository: "acme/widgets", RepositoryURL: "https://github.com/acme/widgets.git",
				Branch: "fix-parser", Task: fmt.Sprintf("Make the parser skip empty lines (case %d).", i+1), Timeout: 30 * time.Minute,
			})
			require.NoError(tb, err)
			rendered.Job.Namespace = "agents"
			job, err = json.Marshal(rendered.Job)
			require.NoError(tb, err)
		default:
			job = fmt.Appendf(nil, `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j-%d","namespace":"agents","labels":{"app":"flowforge","job-id":"id-%d","user-id":"alice"}},"spec":{"template":{"spec":{"containers":[{"name":"w","image":"ghcr.io/flowforge/claude-worker:1.4.0"}]}}}}`, i, i)
		}
		out = append(out, job)
	}
	return out
}

// BenchmarkAdmission measures one Job's admission through the HTTP stack:
// mutate, then validate of the hardened Job (what the API server sends),
// over a stream of distinct Jobs and over one Job repeated, with and
// without the policy decision cache; and the pure-Go floor (mutate only,
// its whole work) on the same stream. Reports the cache hit rates.
//
//	go test -run '^$' -bench Admission$ -benchmem ./webhook/server/
func BenchmarkAdmission(b *testing.B) {
	const n = 2048
	ctx := context.Background()
	uncached, err := engine.New(ctx, engine.Options{DisableCache: true})
	require.NoError(b, err)
	for _, kind := range []string{"templated", "bare"} {
		jobs := benchJobs(b, kind, n)
		// The validating webhook sees the hardened Job.
		hardener := &mutate.Handler{Policy: uncached, Namespaces: func(context.Context, string) (map[string]string, error) {
			return map[string]string{"flowforge.io/managed": "true", "kubernetes.io/metadata.name": "agents"}, nil
		}, Clock: clock.RealClock{}}
		mutateBodies := make([][]byte, n)
		validateBodies := make([][]byte, n)
		for i, job := range jobs {
			hardened, _, err := mutate.Review(ctx, hardener, "agents", job)
			require.NoError(b, err)
			mutateBodies[i] = worstcase.Review(fmt.Sprintf("m-%d", i), job)
			validateBodies[i] = worstcase.Review(fmt.Sprintf("v-%d", i), hardened)
		}
		for _, stream := range []string{"distinct", "same"} {
			for _, cache := range []bool{true, false} {
				b.Run(fmt.Sprintf("%s/%s/cache=%v", kind, stream, cache), func(b *testing.B) {
					eng, err := engine.New(ctx, engine.Options{DisableCache: !cache})
					require.NoError(b, err)
					m := admissionStack(b, eng)
					b.ReportAllocs()
					cpu := cpuTime()
					i := 0
					for b.Loop() {
						j := i % n
						if stream == "same" {
							j = 0
						}
						i++
						serve(b, m, mutate.Path, mutateBodies[j])
						serve(b, m, validate.JobPath, validateBodies[j])
					}
					b.ReportMetric(float64(cpuTime()-cpu)/float64(i), "cpu-ns/op")
					st := eng.CacheStats()
					b.ReportMetric(st["mutate"].HitRate(), "mutate-hit-rate")
					b.ReportMetric(st["validate"].HitRate(), "validate-hit-rate")
				})
			}
		}
		b.Run(kind+"/floor", func(b *testing.B) {
			m := admissionStack(b, uncached)
			b.ReportAllocs()
			cpu := cpuTime()
			i := 0
			for b.Loop() {
				serve(b, m, floor.Path, mutateBodies[i%n])
				i++
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(i), "cpu-ns/op")
		})
	}
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

func serve(b *testing.B, m http.Handler, path string, body []byte) {
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, post(path, body))
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
	}
}
