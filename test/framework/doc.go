// Package framework holds what FlowForge's integration test packages share:
// a TestMain helper that starts one local cluster per package and fails (never
// skips) when it cannot, plus small helpers to build and wait for objects.
package framework
