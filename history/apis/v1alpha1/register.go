package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of the execution history.
const GroupName = "history.flowforge.io"

// Resource names.
const (
	// Resource is the executions resource.
	Resource = "executions"
	// LogSubresource is the archived logs of an execution.
	LogSubresource = "log"
	// Kind is the kind of an execution.
	Kind = "Execution"
)

// Field selector keys of list and watch (besides metadata.name and
// metadata.namespace).
const (
	FieldUser  = "spec.user"
	FieldPhase = "status.phase"
)

// SchemeGroupVersion is history.flowforge.io/v1alpha1.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// Resource returns a group-qualified resource of this group.
func GroupResource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

// AddToScheme adds the types of this group version to a scheme.
func AddToScheme(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&Execution{},
		&ExecutionList{},
		&ExecutionLogOptions{},
	)
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
