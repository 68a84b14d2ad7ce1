// Package webhook holds what FlowForge's admission handlers share: the
// namespace-label lookup, the selector and managed-namespace checks, and the
// outcome metrics.
package webhook
