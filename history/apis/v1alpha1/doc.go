// Package v1alpha1 is the history.flowforge.io/v1alpha1 API: the execution
// history of agent Jobs as Kubernetes objects, served by the aggregated
// history API server (package history/apiserver) and read by kubectl and
// the flowforge CLI through the Kubernetes API server.
//
// Resources:
//   - executions (namespaced, read-only: get, list, watch): one per agent
//     Job, named by its job id;
//   - executions/log: the archived logs of an execution, as text
//     (ExecutionLogOptions select an attempt and a container).
//
// This package holds the types alone (no I/O); history converts between
// them and its records.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +groupName=history.flowforge.io
package v1alpha1
