// Package worstcase builds the objects a hostile client would send a
// FlowForge webhook to make one admission cost as much as it can: the
// largest objects within the policy's limits (AtLimits), and floods far
// over them (EnvFlood, ManyContainers), as AdmissionReviews. The cost
// benchmarks (webhook/server) and the load tool
// (test/cmd/webhookload -worst) send them.
package worstcase
