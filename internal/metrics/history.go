package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// History store metrics: its size, retention's work and failed writes.
// The gauges are set by the leader's retention loop (controller.Retention)
// after each pass.
var (
	// HistoryRecords is the number of Job records in the store.
	HistoryRecords = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flowforge_history_records",
		Help: "Job records in the execution history store.",
	})

	// HistoryArchiveBytes is the size of the stored log archives.
	HistoryArchiveBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flowforge_history_archive_bytes",
		Help: "Total size of the compressed log archives in the history store (what --history-max-archive-bytes caps).",
	})

	// HistoryStoreBytes is the space the store takes.
	HistoryStoreBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flowforge_history_store_bytes",
		Help: "Space the history store takes: the SQLite database and write-ahead log, or the Postgres database.",
	})

	// HistoryVolumeCapacity and HistoryVolumeAvailable describe the volume
	// of an SQLite store (unset with Postgres).
	HistoryVolumeCapacity = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flowforge_history_volume_capacity_bytes",
		Help: "Size of the filesystem holding the SQLite history store.",
	})
	HistoryVolumeAvailable = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flowforge_history_volume_available_bytes",
		Help: "Space left for the controller on the filesystem holding the SQLite history store.",
	})

	// HistoryPrunedRecords counts whole records removed by retention.
	HistoryPrunedRecords = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_history_pruned_records_total",
		Help: "Job records (with their attempts, events and logs) removed by retention by age.",
	})

	// HistoryPrunedBytes counts archive bytes removed by retention.
	HistoryPrunedBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowforge_history_pruned_archive_bytes_total",
		Help: "Bytes of log archives removed by retention, by cause: age (with their records) or size (the archive cap).",
	}, []string{"cause"})

	// HistoryPrunedClaims counts job-id records (ConfigMaps) removed with
	// their Jobs' history.
	HistoryPrunedClaims = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_history_pruned_claims_total",
		Help: "Job-id records (ConfigMaps in FlowForge's namespace) removed once their Job and history record were gone.",
	})

	// HistoryLastPrune is when the last retention pass succeeded.
	HistoryLastPrune = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flowforge_history_last_prune_timestamp_seconds",
		Help: "Unix time of the last successful retention pass over the history store.",
	})

	// HistoryPruneFailures counts failed retention passes.
	HistoryPruneFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowforge_history_prune_failures_total",
		Help: "Retention passes that failed; the next pass starts over.",
	})

	// HistoryStoreErrors counts failed writes to the history store.
	HistoryStoreErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowforge_history_store_errors_total",
		Help: "Failed writes to the history store, by operation; the export retries them with backoff and keeps the Job by its finalizer meanwhile.",
	}, []string{"op"})
)

// historyCollectors are the history metrics RegisterController registers.
func historyCollectors() []prometheus.Collector {
	return []prometheus.Collector{
		HistoryRecords, HistoryArchiveBytes, HistoryStoreBytes, HistoryVolumeCapacity, HistoryVolumeAvailable,
		HistoryPrunedRecords, HistoryPrunedBytes, HistoryPrunedClaims, HistoryLastPrune, HistoryPruneFailures, HistoryStoreErrors,
	}
}
