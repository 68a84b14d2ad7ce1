// Package admission holds the integration tests of FlowForge's webhooks on
// the local cluster: the webhook server runs in the test process, is
// registered with the real API server over TLS from deploy/'s webhook
// configurations, and serves a copy of policies/ that the hot-reload tests
// edit.
package admission
