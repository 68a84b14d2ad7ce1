// Package openapi holds the generated OpenAPI definitions of
// history.flowforge.io/v1alpha1 and the Kubernetes meta types it uses
// (hack/update-codegen.sh regenerates them). The history API server
// publishes them, and genericapiserver builds its type converter from them.
package openapi
