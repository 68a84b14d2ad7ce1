# Linux capabilities.
#
# Denies any capability in securityContext.capabilities.add that is not in
# config.capabilities.allowed (field capabilities.add[k]), on any container
# kind; names compare as the runtime does, case-insensitively and with or
# without the CAP_ prefix, so CAP_SYS_ADMIN and sys_admin are both caught.
# Also denies a workload container that does not drop ALL capabilities: the
# mutation adds ALL to every Job container's drop list, so only a Pod
# created directly can lack it, and such a Pod would keep the runtime's
# default set (NET_RAW, CHOWN, SETUID...).
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

capability_name(c) := trim_prefix(upper(c), "CAP_")

allowed_capabilities := {capability_name(c) | some c in config.capabilities.allowed}

violation contains {
	"msg": sprintf("container %q must not add capability %s (allowed: %s)", [ctr.name, cap, joined(config.capabilities.allowed)]),
	"field": sprintf("%s.securityContext.capabilities.add[%d]", [ctr.field, k]),
} if {
	applies
	some ctr in k8s.containers
	some k, cap in object.get(security_context(ctr), ["capabilities", "add"], [])
	not capability_name(cap) in allowed_capabilities
}

violation contains {
	"msg": sprintf("container %q must drop all capabilities (capabilities.drop: [ALL])", [ctr.name]),
	"field": sprintf("%s.securityContext.capabilities.drop", [ctr.field]),
} if {
	applies
	some ctr in workload_containers
	not "ALL" in object.get(security_context(ctr), ["capabilities", "drop"], [])
}
