// Package webhook holds what FlowForge's admission handlers share: the
// namespace-label lookup, the selector and managed-namespace checks, the
// outcome metrics, and the job-id claims (claims.go): which Jobs hold a
// job-id, read from the webhook's metadata-only caches of labelled Jobs and
// of the controller's records of Jobs that are gone.
package webhook
