// Package render renders FlowForge's install manifests with kustomize's Go
// API (sigs.k8s.io/kustomize/api/krusty), no kustomize binary: the base,
// deploy/, and each overlay under overlays/ (at the repository's root:
// kustomize refuses an overlay inside the directory of its base), with FlowForge's images
// replaced by the digests `make images` recorded (internal/images). `make
// manifests` writes one install.yaml per overlay.
package render
