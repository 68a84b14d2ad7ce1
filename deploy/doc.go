// Package deploy holds FlowForge's manifests for a real cluster and embeds
// the ones that tools register themselves: the webhook configurations and
// the cluster objects hardened Jobs refer to. `make up` and the integration
// tests register exactly these objects, changing only how the API server
// reaches the webhook (a URL on loopback instead of the in-cluster Service)
// and the CA bundle.
package deploy
