// Package webhookserver is the webhook server program behind
// cmd/flowforge-webhook: a controller-runtime manager that serves the
// mutating and validating handlers over TLS from a certificate directory
// (reloaded without a restart by controller-runtime's certificate watcher),
// keeps the policy engine hot-reloading, and serves /healthz, /readyz (with
// the policy's revision and any refused reload as details) and /metrics.
package server
