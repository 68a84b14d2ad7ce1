// Package install holds the integration tests of FlowForge's install on a
// real API server: every overlay (deploy/ and overlays/, rendered with
// deploy/render) applied with server-side apply, its custom resources
// (ServiceMonitor, PrometheusRule, SeccompProfile) checked against the
// upstream CRDs vendored in deploy/crds, and the uninstall
// (deploy.Uninstall) with Jobs held by their export finalizers.
package install
