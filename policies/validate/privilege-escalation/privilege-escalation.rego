# Privilege escalation.
#
# Denies allowPrivilegeEscalation: true on any container: setuid binaries
# and file capabilities would let the process gain privileges it was not
# started with. Also denies a workload container that leaves it unset: the
# Kubernetes default is true, the mutation sets false for every Job
# container, so only a Pod created directly can lack it.
package flowforge.validate

import data.flowforge.lib.k8s

violation contains {
	"msg": sprintf("container %q must not allow privilege escalation", [ctr.name]),
	"field": sprintf("%s.securityContext.allowPrivilegeEscalation", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	security_context(ctr).allowPrivilegeEscalation == true
}

violation contains {
	"msg": sprintf("container %q must set allowPrivilegeEscalation: false (the default is true)", [ctr.name]),
	"field": sprintf("%s.securityContext.allowPrivilegeEscalation", [ctr.field]),
} if {
	applies
	some ctr in workload_containers
	object.get(security_context(ctr), "allowPrivilegeEscalation", null) == null
}
