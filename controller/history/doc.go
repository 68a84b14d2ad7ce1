// Package history is FlowForge's execution history: a record of every
// agent Job (who ran what, where, with which policy revision, how it ended),
// each attempt (pod, node, start and end, exit code, reason, and whether the
// Job's podFailurePolicy counted it), compressed per-attempt log archives,
// and the Kubernetes events of the Job, kept after the cluster has deleted
// the Job and its pods.
//
// The Store interface is what the controller writes and the HTTP API reads.
// The default implementation is embedded SQLite through the pure-Go
// modernc.org/sqlite driver (no cgo, one file, WAL mode). It suits one
// active controller replica with its database on a persistent volume; a
// shared store for several replicas would implement the same interface.
//
// Writes are idempotent upserts keyed by Kubernetes UIDs, and Mark records
// one-time facts (an event sent, a metric observed) so that a controller
// that restarts mid-run neither loses nor double-counts anything.
package history
