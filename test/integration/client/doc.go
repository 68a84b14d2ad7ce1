// Package client holds the integration tests of FlowForge's Jobs client
// (jobs/) on the local cluster, with the webhook running in the
// test process so that submitted Jobs are hardened as in production: submit
// and watch to completion, follow logs while a pod runs, idempotent and
// conflicting resubmits, a large task in a ConfigMap, cancellation, a watch
// that survives a too-old resource version and an API server restart, and
// an unreachable cluster.
package client
