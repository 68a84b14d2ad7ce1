package metrics

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Admission outcomes.
const (
	OutcomeAllowed = "allowed"
	OutcomePatched = "patched"
	OutcomeDenied  = "denied"
	OutcomeError   = "error"
)

// Reasons a request is refused before any policy evaluation
// (AdmissionRejections).
const (
	RejectInFlight  = "in-flight-cap"
	RejectLimit     = "limit"
	RejectTooLarge  = "too-large"
	RejectMalformed = "malformed"
)

var (
	// AdmissionDuration is the admission latency, by webhook and outcome.
	AdmissionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flowforge_admission_duration_seconds",
		Help:    "Time to answer an admission request, by webhook (mutate, mutate-pod, validate-job, validate-pod, validate-pod-connect, validate-cronjob, validate-namespace, ...) and outcome (allowed, patched, denied, error).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"webhook", "outcome"})

	// PolicyEvalDuration is the time spent evaluating Rego, by query.
	PolicyEvalDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flowforge_policy_evaluation_duration_seconds",
		Help:    "Time to evaluate a policy query (mutate or validate).",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
	}, []string{"query"})

	// Mutations counts the settings the mutating webhook changed.
	Mutations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowforge_mutations_total",
		Help: "Settings changed by the mutating webhook on admitted Jobs (dry runs excluded), by setting.",
	}, []string{"setting"})

	// Denials counts validation denials by webhook.
	Denials = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowforge_validation_violations_total",
		Help: "Violations reported by the validating webhooks (dry runs excluded), by webhook.",
	}, []string{"webhook"})

	// PolicyReloads counts policy sets that were loaded and now serve.
	PolicyReloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_policy_reloads_total",
		Help: "Policy reloads that succeeded: the new policy compiled, passed its tests and now serves.",
	})

	// PolicyReloadErrors counts refused policy sets.
	PolicyReloadErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_policy_reload_errors_total",
		Help: "Policy loads refused because the policy did not compile or failed its own tests; the previous policy keeps serving.",
	})

	// AdmissionsInFlight is the number of admission requests being served.
	AdmissionsInFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flowforge_admission_in_flight_requests",
		Help: "Admission requests being served now, across every webhook path, within the --max-in-flight-bytes budget.",
	})

	// AdmissionRejections counts requests the webhook's guard refused
	// before any policy evaluation, by path and reason.
	AdmissionRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowforge_admission_rejections_total",
		Help: "Admission requests refused before any policy evaluation, by webhook path and reason (in-flight-cap, limit, too-large, malformed).",
	}, []string{"path", "reason"})

	// PolicyCacheLookups counts decisions by how the policy engine reached
	// them: from its decision cache (hit), by evaluating and caching
	// (miss), or by evaluating a query that is not cached (uncached).
	PolicyCacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowforge_policy_cache_lookups_total",
		Help: "Policy decisions by query (mutate, validate) and result (hit, miss, uncached) of the decision cache.",
	}, []string{"query", "result"})

	// PolicyCacheEntries is the number of decisions cached for the policy
	// revision being served.
	PolicyCacheEntries = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flowforge_policy_cache_entries",
		Help: "Decisions in the policy decision cache of the revision being served, by query (bounded by data.flowforge.config.cache.maxEntries).",
	}, []string{"query"})

	// PolicyInfo is 1 for the revision being served.
	PolicyInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flowforge_policy_info",
		Help: "The policy revision being served (value 1).",
	}, []string{"revision"})
)

// RegisterWebhook registers the webhook server's metrics.
func RegisterWebhook(reg prometheus.Registerer) error {
	return register(reg, AdmissionDuration, PolicyEvalDuration, Mutations, Denials, PolicyReloads, PolicyReloadErrors, PolicyInfo, AdmissionsInFlight, AdmissionRejections, PolicyCacheLookups, PolicyCacheEntries)
}

// register registers collectors; one already registered (a second server
// in the same process, as in tests) is not an error.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				continue
			}
			return fmt.Errorf("register metric: %w", err)
		}
	}
	return nil
}

// PolicyRecorder feeds the policy engine's measurements into the metrics.
type PolicyRecorder struct{}

// PolicyReload counts a reload or a refusal.
func (PolicyRecorder) PolicyReload(success bool) {
	if success {
		PolicyReloads.Inc()
		return
	}
	PolicyReloadErrors.Inc()
}

// PolicyEval observes one evaluation.
func (PolicyRecorder) PolicyEval(query string, d time.Duration) {
	PolicyEvalDuration.WithLabelValues(query).Observe(d.Seconds())
}

// PolicyRevision marks the revision being served.
func (PolicyRecorder) PolicyRevision(revision string) {
	PolicyInfo.Reset()
	PolicyInfo.WithLabelValues(revision).Set(1)
}

// PolicyCacheLookup counts one decision by how it was reached, and sets
// the cache's size.
func (PolicyRecorder) PolicyCacheLookup(query, lookup string, entries int) {
	PolicyCacheLookups.WithLabelValues(query, lookup).Inc()
	PolicyCacheEntries.WithLabelValues(query).Set(float64(entries))
}
