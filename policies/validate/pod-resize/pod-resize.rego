# In-place resize (pods/resize).
#
# A FlowForge pod's requests and limits come from its profile when it is
# admitted, and the update rules (update/) deny changing them afterwards.
# pods/resize is the subresource that changes them on a running pod; the
# pod webhook sees it as an UPDATE with subResource "resize". Denies it on a
# labelled pod, naming each container whose resources it changes (or spec
# when it changes none): a bigger pod is a new Job with a bigger profile.
package flowforge.validate

import data.flowforge.lib.k8s

resize_applies if {
	update_applies
	k8s.is_pod
	input.request.subResource == "resize"
}

container_resources := {[c.kind, c.name]: object.get(c.container, "resources", {}) |
	some c in k8s.containers
}

old_container_resources := r if {
	resize_applies
	r := container_resources with input.request.object as input.request.oldObject
}

resized_containers contains ctr if {
	resize_applies
	some ctr in workload_containers
	object.get(old_container_resources, [[ctr.kind, ctr.name]], null) != object.get(ctr.container, "resources", {})
}

update_violation contains {
	"msg": "in-place resize of a FlowForge pod is not allowed: its resources were fixed from its profile when it was admitted",
	"field": sprintf("%s.resources", [ctr.field]),
} if {
	some ctr in resized_containers
}

update_violation contains {
	"msg": "in-place resize of a FlowForge pod is not allowed: its resources were fixed from its profile when it was admitted",
	"field": "spec",
} if {
	resize_applies
	count(resized_containers) == 0
}
