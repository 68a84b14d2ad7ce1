// Package certs generates the TLS material FlowForge needs without openssl
// (a CA, serving and client certificates, for the webhook and the local
// cluster's components) and keeps the webhook's serving certificate valid
// on its own, in the manner of open-policy-agent/cert-controller's rotator:
//
//   - A Secret is the source of truth: tls.crt/tls.key (the serving pair),
//     ca.crt (every trusted CA, the signing one first) and ca.key.
//   - Rotator, run by one leader-elected replica (RunLeaderElected), renews
//     the serving certificate and the CA ahead of expiry, on request
//     (RotateAnnotation, ForceRotation) or when the Secret is missing or
//     broken, and keeps the caBundle of the webhook configurations and of
//     any APIService named in Config equal to ca.crt.
//   - A new CA is only added to ca.crt at first; the serving certificate
//     moves to it Config.Propagation after every caBundle was seen holding
//     it, and the old CA stays trusted until it expires, so that no request
//     fails between a caBundle update and a replica's certificate switch.
//   - Keeper, in every replica, serves the Secret's pair through
//     tls.Config.GetCertificate and swaps it atomically when the Secret
//     changes: no restart.
//
// The decisions (plan) are a pure function of the Secret, the clock and
// the time the CA was seen injected; the clock is injected (k8s.io/utils
// clock), so the unit tests walk whole rotations on a fake clock.
//
// cert-controller itself (github.com/open-policy-agent/cert-controller) is
// not used: it reads the wall clock, replaces the CA and the serving
// certificate in one step without a CA overlap, and expects the Secret
// mounted as files.
//
// Keys are ECDSA P-256. Files are written atomically (write to a temporary
// file, then rename), so that a process watching a directory (the files
// mode, with cert-manager: deploy/cert-manager) never reads a half-written
// pair.
package certs
