# Non-root users and groups.
#
# Denies, on the pod or any container:
#   runAsUser: 0           the process would be root
#   runAsNonRoot: false    the kubelet would not refuse a root image
#   runAsGroup: 0          a root primary group (see below)
# and on the pod fsGroup: 0 or 0 in supplementalGroups. Also denies a
# workload container whose effective runAsNonRoot (its own, else the pod's)
# is not true: the mutation sets it for a Job, so only a Pod created
# directly can lack it, and such a Pod runs as whatever user the image says.
#
# Group 0 is denied too (a deliberate choice): the mutation gives every Job
# runAsGroup/fsGroup 1000, and group root owns files that a non-root user
# could otherwise read or write through the group bits (many images make
# directories group-0 writable). Nothing FlowForge runs needs it.
package flowforge.validate

import data.flowforge.lib.k8s

root_ids := {"runAsUser": "run as user 0 (root)", "runAsGroup": "run with group 0 (root)"}

violation contains {
	"msg": sprintf("the pod must not %s", [what]),
	"field": sprintf("%s.securityContext.%s", [k8s.pod_field, setting]),
} if {
	applies
	some setting, what in root_ids
	pod_security_context[setting] == 0
}

violation contains {
	"msg": sprintf("container %q must not %s", [ctr.name, what]),
	"field": sprintf("%s.securityContext.%s", [ctr.field, setting]),
} if {
	applies
	some ctr in k8s.containers
	some setting, what in root_ids
	security_context(ctr)[setting] == 0
}

violation contains {
	"msg": "the pod must not use fsGroup 0 (root)",
	"field": sprintf("%s.securityContext.fsGroup", [k8s.pod_field]),
} if {
	applies
	pod_security_context.fsGroup == 0
}

violation contains {
	"msg": "the pod must not add group 0 (root) to supplementalGroups",
	"field": sprintf("%s.securityContext.supplementalGroups[%d]", [k8s.pod_field, i]),
} if {
	applies
	some i, group in object.get(pod_security_context, "supplementalGroups", [])
	group == 0
}

violation contains {
	"msg": "the pod must not set runAsNonRoot: false",
	"field": sprintf("%s.securityContext.runAsNonRoot", [k8s.pod_field]),
} if {
	applies
	pod_security_context.runAsNonRoot == false
}

violation contains {
	"msg": sprintf("container %q must not set runAsNonRoot: false", [ctr.name]),
	"field": sprintf("%s.securityContext.runAsNonRoot", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	security_context(ctr).runAsNonRoot == false
}

violation contains {
	"msg": sprintf("container %q must run as non-root: set runAsNonRoot: true on the pod or the container", [ctr.name]),
	"field": sprintf("%s.securityContext.runAsNonRoot", [ctr.field]),
} if {
	applies
	some ctr in workload_containers
	object.get(security_context(ctr), "runAsNonRoot", null) == null
	object.get(pod_security_context, "runAsNonRoot", null) != true
}
