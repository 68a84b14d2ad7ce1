// Package history is FlowForge's execution history: a record of every
// agent Job (who ran what, where, with which policy revision, how it ended),
// each attempt (pod, node, start and end, exit code, reason, and whether the
// Job's podFailurePolicy counted it), compressed per-attempt log archives,
// and the Kubernetes events of the Job, kept after the cluster has deleted
// the Job and its pods.
//
// This package holds the records, the Store interface the controller
// writes and the history API reads, their conversion to the
// history.flowforge.io/v1alpha1 objects (history/apis/v1alpha1) that the
// aggregated history API (history/apiserver) serves, and APIClient, which
// reads that API through the Kubernetes API server with the caller's own
// credentials (the CLI). It has no storage driver: the implementations
// live in history/store, which only the controller links.
//
// Writes are idempotent upserts keyed by Kubernetes UIDs, and Mark records
// one-time facts (an event sent, a metric observed) so that a controller
// that restarts mid-run neither loses nor double-counts anything.
package history
