// Package controller holds the integration tests of FlowForge's controller
// on the local cluster, with the webhook registered as in production: job
// lifecycles (success, retries, pending timeout, deadline, cancellation),
// TTL cleanup that waits for the export, the history API, log shipping,
// events and metrics.
package controller
