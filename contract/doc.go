// Package contract is the FlowForge Job contract: the labels, annotations,
// environment variables, Secret and ConfigMap names that the renderer, the
// webhook's policy data, the controller, the history and the CLI share.
//
// It does no I/O and imports nothing of FlowForge, so every other package
// may import it and none of it imports back (docs/architecture.md, "Where
// to find what").
package contract
