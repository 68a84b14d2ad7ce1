// Package apiserver serves the execution history as the aggregated API
// history.flowforge.io/v1alpha1 (package history/apis/v1alpha1), built on
// k8s.io/apiserver's generic API server, the way metrics-server and
// Kueue's visibility API are.
//
// The Kubernetes API server proxies requests for the group to it (an
// APIService with a `service:` reference). Authentication and
// authorization are delegated: the requester's identity arrives in the
// front-proxy headers (X-Remote-User, X-Remote-Group), trusted only from a
// client certificate signed by the requestheader client CA and named in
// requestheader-allowed-names (both read from the ConfigMap
// kube-system/extension-apiserver-authentication); bearer tokens are
// checked with TokenReview; and every request is authorized with a
// SubjectAccessReview, so RBAC on history.flowforge.io decides who reads
// which namespace. Anonymous requests are refused (401).
//
// The server is read-only: executions (get, list) and executions/log
// (text). It reads a history.Store and runs inside the controller process.
package apiserver
