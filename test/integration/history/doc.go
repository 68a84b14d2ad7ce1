// Package history holds the integration tests of the aggregated history
// API (history.flowforge.io/v1alpha1) on the local cluster: the
// controller serves it behind an APIService with a `service:` reference,
// and the API server proxies to it with the front-proxy headers. The tests
// check authentication (401), namespace-scoped RBAC through the
// aggregated view, edit and admin roles (403 elsewhere), that an agent
// pod's service account reads nothing, kubectl get and get --raw on the
// log subresource, and the CLI reading the history through the API server.
package history
