# Seccomp.
#
# Denies seccompProfile type Unconfined on the pod or any container: the
# process could make every system call the runtime allows. The mutation
# sets the pod's profile and aligns each container's, but keeps an explicit
# Unconfined so that it is denied here. Also denies a workload container
# with no profile at all (its own, else the pod's), which only a Pod
# created directly can have: without one the runtime's default may be
# Unconfined too.
package flowforge.validate

import data.flowforge.lib.k8s

violation contains {
	"msg": "the pod's seccomp profile must not be Unconfined",
	"field": sprintf("%s.securityContext.seccompProfile.type", [k8s.pod_field]),
} if {
	applies
	pod_security_context.seccompProfile.type == "Unconfined"
}

violation contains {
	"msg": sprintf("container %q's seccomp profile must not be Unconfined", [ctr.name]),
	"field": sprintf("%s.securityContext.seccompProfile.type", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	security_context(ctr).seccompProfile.type == "Unconfined"
}

violation contains {
	"msg": sprintf("container %q has no seccomp profile: set securityContext.seccompProfile on the pod or the container", [ctr.name]),
	"field": sprintf("%s.securityContext.seccompProfile", [ctr.field]),
} if {
	applies
	some ctr in workload_containers
	object.get(security_context(ctr), "seccompProfile", null) == null
	object.get(pod_security_context, "seccompProfile", null) == null
}
