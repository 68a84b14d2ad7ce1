// Package localup runs FlowForge's whole local stack for `make up`, `make
// demo` and people and tools outside the tests: the local cluster, then
// FlowForge's webhook server and controller built from the working tree,
// registered with the API server exactly as the manifests in deploy/
// register them in a real cluster (only the webhook's address differs).
package localup
