# /proc mount.
#
# Denies securityContext.procMount: Unmasked on any container: the
# container would see the paths of /proc that the runtime masks (kernel
# keys, timers, sysrq-trigger...).
package flowforge.validate

import data.flowforge.lib.k8s

violation contains {
	"msg": sprintf("container %q must not use procMount Unmasked", [ctr.name]),
	"field": sprintf("%s.securityContext.procMount", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	security_context(ctr).procMount == "Unmasked"
}
