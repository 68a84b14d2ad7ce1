// Package metrics defines FlowForge's Prometheus metrics in one place, in
// the style of kueue's pkg/metrics: package-level collectors, registered
// explicitly by each program (RegisterWebhook, RegisterController) on the
// controller-runtime registry that its manager serves on /metrics. Nothing is
// registered at import time.
//
// Every name has the flowforge_ prefix and follows Prometheus naming
// conventions (base units, _total counters); TestLint checks them with
// client_golang's linter.
package metrics
