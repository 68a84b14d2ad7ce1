package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	// JobDuration is the run time of finished Jobs, by final status.
	JobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flowforge_job_duration_seconds",
		Help:    "Time from a Job's start to its end, observed once per Job at export, by final status.",
		Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400},
	}, []string{"status"})

	// QueueWait is the time from creation to the first attempt running.
	QueueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flowforge_job_queue_wait_seconds",
		Help:    "Time from a Job's creation to its first pod running, observed once per Job.",
		Buckets: prometheus.ExponentialBuckets(0.25, 2, 14),
	})

	// Timeouts counts Jobs that ended by timing out.
	Timeouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowforge_job_timeouts_total",
		Help: "Jobs that timed out, by kind: deadline (activeDeadlineSeconds) or pending (pods stuck Pending).",
	}, []string{"kind"})

	// Cancellations counts cancelled Jobs.
	Cancellations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_job_cancellations_total",
		Help: "Jobs that ended because a user cancelled them.",
	})

	// Retries counts failed attempts that the Job retried.
	Retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowforge_job_retries_total",
		Help: "Failed attempts followed by a retry, by reason (the container's or pod's failure reason).",
	}, []string{"reason"})

	// ExportLag is the time from a Job's end to its export.
	ExportLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flowforge_export_lag_seconds",
		Help:    "Time from a Job finishing to its status, events and logs being exported to the history.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
	})

	// TTLDeletions counts finished Jobs the controller deleted after their
	// export and TTL.
	TTLDeletions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_ttl_deletions_total",
		Help: "Finished Jobs deleted by the controller (with their pods) once exported and past their TTL.",
	})

	// TTLDeletionDelay is how late a Job was deleted after its TTL expired:
	// the export lag when the export came last, else the reconcile delay.
	TTLDeletionDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flowforge_ttl_deletion_delay_seconds",
		Help:    "Time from a finished Job's TTL expiring to the controller deleting it (waiting for the export included).",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
	})

	// ExportLogsLost counts container logs the node removed before the
	// export could read them (a Job deleted by someone else while the
	// controller was behind).
	ExportLogsLost = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_export_logs_lost_total",
		Help: "Container logs removed by their node (the pod was deleted and had ended) before the export could read them.",
	})

	// ExportFailures counts failed export attempts.
	ExportFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_export_failures_total",
		Help: "Export attempts that failed; the Job is kept by its finalizer and retried.",
	})

	// LogBytesShipped counts log bytes shipped to the log sink.
	LogBytesShipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_log_bytes_shipped_total",
		Help: "Bytes of job pod log lines shipped to the log sink.",
	})

	// LogShipFailures counts lines the log sink refused. The checkpoint
	// stays before such a line, so it is shipped again on the retry.
	LogShipFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_log_ship_failures_total",
		Help: "Log lines the log sink refused; each is retried from the last checkpoint.",
	})

	// LogLinesShipped counts log lines shipped to the log sink.
	LogLinesShipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_log_lines_shipped_total",
		Help: "Job pod log lines shipped to the log sink.",
	})
)

// RegisterController registers the controller's metrics; state gauges
// (jobs by phase, jobs awaiting export) come from the given collectors,
// which read the controller's cache at scrape time.
func RegisterController(reg prometheus.Registerer, state ...prometheus.Collector) error {
	cs := []prometheus.Collector{JobDuration, QueueWait, Timeouts, Cancellations, Retries, ExportLag, TTLDeletions, TTLDeletionDelay, ExportLogsLost, ExportFailures, LogBytesShipped, LogLinesShipped, LogShipFailures, PolicyReloads, PolicyReloadErrors, PolicyInfo}
	cs = append(cs, historyCollectors()...)
	return register(reg, append(cs, state...)...)
}
