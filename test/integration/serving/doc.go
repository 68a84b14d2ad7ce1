// Package serving holds the integration tests of how the local cluster
// serves FlowForge's webhook, as production does: the webhook
// configurations reach it through `service:` references to the
// flowforge-webhook Service, whose clusterIP is in the cluster's own
// loopback Service range, and two replicas listen there with SO_REUSEPORT.
// A replica stopping and restarting fails no admission.
package serving
