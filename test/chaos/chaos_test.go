package chaos

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestClassify(t *testing.T) {
	jobs := schema.GroupResource{Group: "batch", Resource: "jobs"}
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{name: "created", err: nil, want: Admitted},
		{name: "a webhook's denial (403)", err: apierrors.NewForbidden(jobs, "x", errors.New(`admission webhook "jobs.validate.flowforge.io" denied the request: spec.x: nope`)), want: PolicyDenied},
		{name: "a webhook's denial (422)", err: apierrors.NewInvalid(schema.GroupKind{Group: "batch", Kind: "Job"}, "x", field.ErrorList{field.Invalid(field.NewPath("spec"), "x", `admission webhook "jobs.validate.flowforge.io" denied the request`)}), want: PolicyDenied},
		{name: "webhook unreachable", err: apierrors.NewInternalError(errors.New(`failed calling webhook "jobs.mutate.flowforge.io": failed to call webhook: Post "https://127.99.3.10:443/mutate": dial tcp 127.99.3.10:443: connect: connection refused`)), want: AdmissionFailed},
		{name: "webhook timeout", err: apierrors.NewInternalError(errors.New(`failed calling webhook "jobs.validate.flowforge.io": failed to call webhook: context deadline exceeded`)), want: AdmissionFailed},
		{name: "webhook refused for load (429 from the webhook)", err: apierrors.NewInternalError(errors.New(`failed calling webhook "jobs.validate.flowforge.io": failed to call webhook: the server has received too many requests`)), want: AdmissionFailed},
		{name: "webhook TLS failure", err: apierrors.NewInternalError(errors.New(`failed calling webhook "x": failed to call webhook: tls: failed to verify certificate: x509: certificate signed by unknown authority`)), want: AdmissionFailed},
		{name: "already exists", err: apierrors.NewAlreadyExists(jobs, "x"), want: Exists},
		{name: "API server down", err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, want: APIUnavailable},
		{name: "connection lost", err: fmt.Errorf("Post: %w", io.ErrUnexpectedEOF), want: APIUnavailable},
		{name: "API server shutting down", err: apierrors.NewServiceUnavailable("apiserver is shutting down"), want: APIUnavailable},
		{name: "API server throttles", err: apierrors.NewTooManyRequests("slow down", 1), want: APIUnavailable},
		{name: "etcd timeout", err: apierrors.NewTimeoutError("etcd", 1), want: APIUnavailable},
		{name: "anything else", err: apierrors.NewBadRequest("no"), want: Other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Classify(tc.err))
		})
	}
	assert.Equal(t, "admission-failed", AdmissionFailed.String())
	assert.Equal(t, "unknown", Class(99).String())
}

const metricsText = `# TYPE apiserver_admission_webhook_rejection_count counter
apiserver_admission_webhook_rejection_count{error_type="calling_webhook_error",name="jobs.mutate.flowforge.io",operation="CREATE",rejection_code="500",type="admit"} 2
apiserver_admission_webhook_rejection_count{error_type="apiserver_internal_error",name="jobs.validate.flowforge.io",operation="CREATE",rejection_code="500",type="validating"} 1
apiserver_admission_webhook_rejection_count{error_type="no_error",name="jobs.validate.flowforge.io",operation="CREATE",rejection_code="403",type="validating"} 5
# TYPE apiserver_admission_webhook_admission_duration_seconds histogram
apiserver_admission_webhook_admission_duration_seconds_bucket{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="false",type="admit",le="0.005"} 10
apiserver_admission_webhook_admission_duration_seconds_bucket{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="false",type="admit",le="0.025"} 90
apiserver_admission_webhook_admission_duration_seconds_bucket{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="false",type="admit",le="0.1"} 99
apiserver_admission_webhook_admission_duration_seconds_bucket{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="false",type="admit",le="0.5"} 100
apiserver_admission_webhook_admission_duration_seconds_bucket{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="false",type="admit",le="+Inf"} 100
apiserver_admission_webhook_admission_duration_seconds_sum{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="false",type="admit"} 2
apiserver_admission_webhook_admission_duration_seconds_count{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="false",type="admit"} 100
apiserver_admission_webhook_admission_duration_seconds_bucket{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="true",type="admit",le="0.005"} 0
apiserver_admission_webhook_admission_duration_seconds_bucket{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="true",type="admit",le="0.025"} 0
apiserver_admission_webhook_admission_duration_seconds_bucket{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="true",type="admit",le="0.1"} 0
apiserver_admission_webhook_admission_duration_seconds_bucket{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="true",type="admit",le="0.5"} 0
apiserver_admission_webhook_admission_duration_seconds_bucket{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="true",type="admit",le="+Inf"} 2
apiserver_admission_webhook_admission_duration_seconds_sum{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="true",type="admit"} 20
apiserver_admission_webhook_admission_duration_seconds_count{name="jobs.mutate.flowforge.io",operation="CREATE",rejected="true",type="admit"} 2
`

func TestParseAPIServerMetrics(t *testing.T) {
	s, err := ParseAPIServerMetrics([]byte(metricsText))
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"jobs.mutate.flowforge.io": 2, "jobs.validate.flowforge.io": 1}, s.Failed)
	assert.Equal(t, map[string]float64{"jobs.validate.flowforge.io": 5}, s.Denied)
	h := s.Durations["jobs.mutate.flowforge.io"]
	assert.Equal(t, []float64{0.005, 0.025, 0.1, 0.5, math.Inf(1)}, h.Bounds)
	assert.Equal(t, []float64{10, 90, 99, 100, 102}, h.Counts, "the two series summed, +Inf from the counts")
	assert.Equal(t, 102.0, h.Total())
	assert.Equal(t, 0.025, h.Quantile(0.5))
	assert.Equal(t, 0.5, h.Quantile(0.98))
	assert.True(t, math.IsInf(h.Quantile(0.999), 1), "the slowest calls are beyond the last bucket")

	_, err = ParseAPIServerMetrics([]byte("not { metrics"))
	assert.Error(t, err)
}

func TestHistogramArithmetic(t *testing.T) {
	a := Histogram{Bounds: []float64{1, math.Inf(1)}, Counts: []float64{3, 4}}
	b := Histogram{Bounds: []float64{1, math.Inf(1)}, Counts: []float64{5, 10}}
	assert.Equal(t, []float64{2, 6}, b.Sub(a).Counts)
	assert.Equal(t, []float64{3, 4}, a.Sub(b).Counts, "counters that went down restarted: the later sample alone")
	assert.Equal(t, []float64{8, 14}, Merge(a, b, Histogram{}).Counts)
	assert.True(t, math.IsNaN(Histogram{}.Quantile(0.99)))
	assert.Equal(t, map[string]float64{"a": 2, "b": 1}, delta(map[string]float64{"a": 5, "b": 1, "c": 0}, map[string]float64{"a": 3, "b": 4}))
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	assert.Equal(t, 50*time.Millisecond, Percentile(ds, 0.5))
	assert.Equal(t, 99*time.Millisecond, Percentile(ds, 0.99))
	assert.Equal(t, 100*time.Millisecond, Percentile(ds, 1))
	assert.Zero(t, Percentile(nil, 0.5))
}

func TestReportCountsEveryCreateInItsPhase(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := &Report{Rate: 50, Totals: map[Class]int{}, Durations: map[string]Histogram{}, Phases: []Phase{
		{Name: "steady", Start: t0, End: t0.Add(10 * time.Second)},
		{Name: "webhook-replica-stop", Start: t0.Add(10 * time.Second), End: t0.Add(20 * time.Second), Outcome: Outcome{Recovery: 3 * time.Second, Detail: "ok"},
			APIServerFailed: map[string]float64{"jobs.mutate.flowforge.io": 1}},
		{Name: "cert-rotation", Start: t0.Add(20 * time.Second), End: t0.Add(21 * time.Second), Outcome: Outcome{Skipped: "files"}},
	}}
	r.classify([]Result{
		{ID: "a", Start: t0.Add(time.Second), End: t0.Add(time.Second + time.Millisecond), Class: Admitted, Latency: time.Millisecond},
		// Sent during the steady window, failed in the fault's: it counts
		// where it failed.
		{ID: "b", Start: t0.Add(9 * time.Second), End: t0.Add(11 * time.Second), Class: AdmissionFailed, Err: "failed calling webhook\nmore"},
		{ID: "c", Start: t0.Add(12 * time.Second), End: t0.Add(12*time.Second + 2*time.Millisecond), Class: Admitted, Retries: 2, Latency: 2 * time.Millisecond},
	})
	assert.Equal(t, 1, r.Phases[0].Counts[Admitted])
	assert.Equal(t, 1, r.Phases[1].Counts[AdmissionFailed])
	assert.Equal(t, 2, r.Phases[1].Retries)
	assert.Equal(t, []string{"b: admission-failed: failed calling webhook"}, r.Phases[1].Failures)
	require.Len(t, r.Problems, 2, "the failed create and the failed call the API server counted")
	assert.False(t, r.Passed())
	summary := r.Summary()
	assert.NotContains(t, summary, "\n", "one line")
	assert.Contains(t, summary, "chaos FAIL")
	assert.Contains(t, summary, "1 failed admissions")
	assert.Contains(t, summary, "webhook-replica-stop 3s")
	assert.Contains(t, summary, "not run: cert-rotation")
	r.LogsRead, r.EmptyLogs = 10, 1
	assert.Contains(t, r.Summary(), "1 of 10 log archives read back empty")
	md := r.Markdown()
	assert.Equal(t, 2+2+3+1+2, strings.Count(md, "\n"), "the stream's rates, a header and a row per phase, a blank line, the webhooks' header")
	assert.Contains(t, md, "| webhook-replica-stop | 3s | 1 / 1 / 0 / 2 | 0.0 / 0.0 | 1 |")
	assert.Contains(t, md, "not run: files")
}

func TestFlag(t *testing.T) {
	args := []string{"/bin/flowforge-webhook", "--cert-mode=files", "--port=443"}
	assert.Equal(t, "files", flag(args, "cert-mode", "rotate"))
	assert.Equal(t, "x", flag(args, "cert-secret", "x"))
}

func TestStreamJobIsAPlainAgentJob(t *testing.T) {
	j := StreamJob("chaos-1-2", 10*time.Second)
	assert.Equal(t, "chaos-1-2", j.Labels["job-id"])
	assert.Equal(t, StreamUser, j.Labels["user-id"])
	assert.Equal(t, "10", j.Annotations["flowforge.io/ttl-seconds-after-finished"])
	assert.NotContains(t, StreamJob("x", 0).Annotations, "flowforge.io/ttl-seconds-after-finished")
}

func TestReportKeepsACrashsLossesApart(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := &Report{Rate: 50, Totals: map[Class]int{}, Durations: map[string]Histogram{}, Phases: []Phase{
		{Name: "webhook-replica-crash", Informational: true, Start: t0, End: t0.Add(10 * time.Second), Outcome: Outcome{Recovery: time.Second},
			APIServerFailed: map[string]float64{"jobs.mutate.flowforge.io": 2}},
	}}
	r.classify([]Result{
		{ID: "a", Start: t0, End: t0.Add(time.Second), Class: AdmissionFailed, Err: "failed calling webhook: connection reset by peer"},
		{ID: "b", Start: t0, End: t0.Add(time.Minute), Class: Other, Err: "late"},
	})
	assert.Len(t, r.Losses, 2, "the crash's failed creates and failed calls")
	require.Len(t, r.Problems, 1, "an unexpected error is a problem wherever it happens")
	assert.Contains(t, r.Problems[0], "after the last fault: b")
	assert.Contains(t, r.Summary(), "a crash lost")
}
