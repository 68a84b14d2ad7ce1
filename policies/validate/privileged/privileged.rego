# Privileged containers.
#
# Denies securityContext.privileged: true on any container (init containers,
# sidecars, containers, ephemeral containers), and Windows host-process
# containers (windowsOptions.hostProcess on the pod or a container). Either
# gives the container the node's devices and kernel, which no sandbox
# contains. The mutation defaults privileged to false but keeps an explicit
# true, so that it is denied here, with its field path.
package flowforge.validate

import data.flowforge.lib.k8s

violation contains {
	"msg": sprintf("container %q must not be privileged", [ctr.name]),
	"field": sprintf("%s.securityContext.privileged", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	security_context(ctr).privileged == true
}

violation contains {
	"msg": sprintf("container %q must not be a host-process container", [ctr.name]),
	"field": sprintf("%s.securityContext.windowsOptions.hostProcess", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	security_context(ctr).windowsOptions.hostProcess == true
}

violation contains {
	"msg": "the pod must not run host-process containers",
	"field": sprintf("%s.securityContext.windowsOptions.hostProcess", [k8s.pod_field]),
} if {
	applies
	pod_security_context.windowsOptions.hostProcess == true
}
