package chaos

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
)

// The API server's admission webhook metrics.
const (
	rejectionMetric = "apiserver_admission_webhook_rejection_count"
	durationMetric  = "apiserver_admission_webhook_admission_duration_seconds"
)

// APIServerSample is what the API server had counted of its webhook calls
// at one moment: rejections by webhook and error type, and the histogram
// of call durations by webhook.
type APIServerSample struct {
	// Failed counts the calls that failed (error_type other than
	// no_error: no answer, a timeout, an error status), by webhook.
	Failed map[string]float64
	// Denied counts the webhooks' own denials, by webhook.
	Denied map[string]float64
	// Durations are the call-duration histograms, by webhook.
	Durations map[string]Histogram
}

// Histogram is a cumulative histogram: Counts[i] calls took at most
// Bounds[i] seconds.
type Histogram struct {
	Bounds []float64
	Counts []float64
}

// ScrapeAPIServer reads the API server's /metrics.
func ScrapeAPIServer(ctx context.Context, cs kubernetes.Interface) (*APIServerSample, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("scrape the API server: %w", err)
	}
	return ParseAPIServerMetrics(raw)
}

// ParseAPIServerMetrics reads the webhook metrics of a Prometheus text
// exposition.
func ParseAPIServerMetrics(raw []byte) (*APIServerSample, error) {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse the API server's metrics: %w", err)
	}
	s := &APIServerSample{Failed: map[string]float64{}, Denied: map[string]float64{}, Durations: map[string]Histogram{}}
	if f := families[rejectionMetric]; f != nil {
		for _, m := range f.GetMetric() {
			l := labels(m)
			if l["error_type"] == "no_error" {
				s.Denied[l["name"]] += value(m)
			} else {
				s.Failed[l["name"]] += value(m)
			}
		}
	}
	if f := families[durationMetric]; f != nil {
		for _, m := range f.GetMetric() {
			name := labels(m)["name"]
			h := s.Durations[name]
			h.add(m.GetHistogram())
			s.Durations[name] = h
		}
	}
	return s, nil
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, p := range m.GetLabel() {
		out[p.GetName()] = p.GetValue()
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}

// add sums another histogram with the same buckets into h.
func (h *Histogram) add(p *dto.Histogram) {
	if p == nil {
		return
	}
	buckets := p.GetBucket()
	if n := len(buckets); n > 0 && math.IsInf(buckets[n-1].GetUpperBound(), 1) {
		buckets = buckets[:n-1] // the parser's +Inf bucket: the sample count
	}
	if h.Bounds == nil {
		for _, b := range buckets {
			h.Bounds = append(h.Bounds, b.GetUpperBound())
		}
		h.Bounds = append(h.Bounds, math.Inf(1))
		h.Counts = make([]float64, len(h.Bounds))
	}
	if len(buckets)+1 != len(h.Counts) {
		return
	}
	for i, b := range buckets {
		h.Counts[i] += float64(b.GetCumulativeCount())
	}
	h.Counts[len(h.Counts)-1] += float64(p.GetSampleCount())
}

// Sub is h minus an earlier sample of the same histogram (the API server's
// counters restart from zero when it does: a negative count means the
// earlier sample is from before a restart, and h alone is returned).
func (h Histogram) Sub(earlier Histogram) Histogram {
	out := Histogram{Bounds: h.Bounds, Counts: append([]float64(nil), h.Counts...)}
	if len(earlier.Counts) != len(h.Counts) {
		return out
	}
	for i := range out.Counts {
		out.Counts[i] -= earlier.Counts[i]
		if out.Counts[i] < 0 {
			return Histogram{Bounds: h.Bounds, Counts: append([]float64(nil), h.Counts...)}
		}
	}
	return out
}

// Total is the number of observations.
func (h Histogram) Total() float64 {
	if len(h.Counts) == 0 {
		return 0
	}
	return h.Counts[len(h.Counts)-1]
}

// Quantile is the upper bound of the bucket that holds quantile q (a
// bound, not an estimate: the API server's buckets are coarse), or NaN
// without observations.
func (h Histogram) Quantile(q float64) float64 {
	total := h.Total()
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	i := sort.Search(len(h.Counts), func(i int) bool { return h.Counts[i] >= rank })
	return h.Bounds[min(i, len(h.Bounds)-1)]
}

// Merge sums histograms with the same buckets.
func Merge(hs ...Histogram) Histogram {
	var out Histogram
	for _, h := range hs {
		if len(h.Counts) == 0 {
			continue
		}
		if out.Bounds == nil {
			out.Bounds = h.Bounds
			out.Counts = make([]float64, len(h.Counts))
		}
		if len(h.Counts) != len(out.Counts) {
			continue
		}
		for i, c := range h.Counts {
			out.Counts[i] += c
		}
	}
	return out
}

// delta is later minus earlier per key, treating a drop (a restarted API
// server) as a count from zero.
func delta(later, earlier map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range later {
		d := v - earlier[k]
		if d < 0 {
			d = v
		}
		if d > 0 {
			out[k] = d
		}
	}
	return out
}

func sum(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

// handlerMetric is the webhook's own histogram of the time it takes to
// answer (the handler, after TLS and HTTP).
const handlerMetric = "flowforge_admission_duration_seconds"

// ParseHandlerDurations sums the webhook's handler-duration histograms of
// a Prometheus text exposition (every webhook path and outcome).
func ParseHandlerDurations(raw []byte) (Histogram, error) {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return Histogram{}, fmt.Errorf("parse the webhook's metrics: %w", err)
	}
	var h Histogram
	if f := families[handlerMetric]; f != nil {
		for _, m := range f.GetMetric() {
			h.add(m.GetHistogram())
		}
	}
	return h, nil
}
