# METADATA
# title: Kubernetes helpers
# description: |
#   Read the admission input the same way for Jobs and Pods: the object, its
#   pod spec, every container with its JSON path (for mutations) and its field
#   path (for messages), labels, annotations and the namespace's labels.
package flowforge.lib.k8s

import data.flowforge.config

# The admitted object, and the previous one on UPDATE (null on CREATE).
obj := input.request.object

old_obj := object.get(input.request, "oldObject", null)

operation := input.request.operation

kind := input.request.kind.kind

namespace_labels := object.get(input, ["namespace", "labels"], {})

is_job if kind == "Job"

is_pod if kind == "Pod"

labels := object.get(obj, ["metadata", "labels"], {})

annotations := object.get(obj, ["metadata", "annotations"], {})

# selected: the object carries the FlowForge selector label.
selected if labels[config.selector.label] == config.selector.value

# managed_namespace: the namespace is a FlowForge namespace.
managed_namespace if {
	namespace_labels[config.managedNamespaceLabel.key] == config.managedNamespaceLabel.value
}

# pod_path is the JSON path of the pod spec; pod_field renders it for messages.
pod_path := ["spec", "template", "spec"] if is_job

pod_path := ["spec"] if is_pod

pod_field := "spec.template.spec" if is_job

pod_field := "spec" if is_pod

pod_spec := object.get(obj, pod_path, {})

# pod_meta_path is the JSON path of the pod's metadata (the template's for a Job).
pod_meta_path := ["spec", "template", "metadata"] if is_job

pod_meta_path := ["metadata"] if is_pod

container_kinds := ["initContainers", "containers", "ephemeralContainers"]

# containers: every container of the pod, with where it lives.
containers contains ctr if {
	some ckind in container_kinds
	some i, c in object.get(pod_spec, ckind, [])
	ctr := {
		"kind": ckind,
		"index": i,
		"name": object.get(c, "name", ""),
		"container": c,
		"path": array.concat(pod_path, [ckind, i]),
		"field": sprintf("%s.%s[%d]", [pod_field, ckind, i]),
	}
}

# volumes: every pod volume with its index and field path.
volumes contains vol if {
	some i, v in object.get(pod_spec, "volumes", [])
	vol := {"index": i, "volume": v, "field": sprintf("%s.volumes[%d]", [pod_field, i])}
}

# label_field renders the field path of a metadata map entry.
label_field(map_name, key) := sprintf("metadata.%s[%s]", [map_name, key])
