// Package certs generates the TLS material FlowForge needs without openssl:
// a self-signed certificate authority, serving certificates for the webhook
// server (and for the local cluster's API server and simulated kubelets), and
// client certificates for the local cluster's components.
//
// Keys are ECDSA P-256: small, fast to generate, and accepted by every
// Kubernetes component. Files are written atomically (write to a temporary
// file, then rename) so that a process watching the directory, such as the
// webhook server's certificate watcher, never reads a half-written pair.
//
// In a real cluster the webhook's serving certificate comes from cert-manager
// (deploy/certificates.yaml), which rotates it and injects the CA bundle into
// the webhook configurations; the webhook server reloads a rotated
// certificate from its directory without a restart.
package certs
