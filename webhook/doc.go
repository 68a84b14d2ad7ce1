// Package webhook holds what FlowForge's admission handlers share: the
// namespace-label lookup, the selector and managed-namespace checks, the
// outcome metrics, and the job-id claims (claims.go): which Jobs hold a
// job-id, read from the webhook's metadata-only caches of labelled Jobs and
// of the controller's records of Jobs that are gone; and the guard in front
// of every handler (guard.go, shape.go): the cap of admissions in flight,
// the body's size, and the policy's limits on an object's shape, checked
// before any decoding or policy evaluation.
package webhook
