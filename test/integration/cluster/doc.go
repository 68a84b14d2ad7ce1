// Package cluster holds the integration tests of the local cluster itself:
// the behaviour that every other FlowForge feature relies on (Job
// completion, retries with exit codes, deadlines, TTL cleanup, pod logs and
// PodSecurity admission), checked against the real control plane.
package cluster
