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
// For a real cluster, the webhook's serving certificate normally comes from
// cert-manager or from the rotator in this package (see Rotator), which keeps
// the certificate in a Secret, writes it to the serving directory, and injects
// the CA bundle into the webhook configurations.
package certs
