# Container hardening.
#
# Every container, init containers and sidecars included: not privileged,
# no privilege escalation, non-root, all capabilities dropped, read-only
# root filesystem, and the pod's seccomp and AppArmor profiles wherever a
# container sets its own.
package flowforge.mutate

import data.flowforge.config

container_security_defaults := {
	"privileged": false,
	"allowPrivilegeEscalation": false,
	"runAsNonRoot": true,
}

container_security_context(ctr) := object.get(ctr.container, "securityContext", {})

patch contains {"setting": sprintf("container.securityContext.%s", [field]), "op": "default", "path": array.concat(ctr.path, ["securityContext", field]), "value": value} if {
	applies
	some ctr in workload_containers
	some field, value in container_security_defaults
	not conflicts_with_privileged(ctr, field)
}

# The API server refuses allowPrivilegeEscalation false next to privileged
# true; leave it unset so that the validating policy can name the real
# problem (privileged) instead.
conflicts_with_privileged(ctr, "allowPrivilegeEscalation") if container_security_context(ctr).privileged == true

patch contains {"setting": "container.securityContext.readOnlyRootFilesystem", "op": "set", "path": array.concat(ctr.path, ["securityContext", "readOnlyRootFilesystem"]), "value": true} if {
	applies
	some ctr in workload_containers
}

patch contains {"setting": "container.securityContext.capabilities.drop", "op": "union", "path": array.concat(ctr.path, ["securityContext", "capabilities", "drop"]), "value": ["ALL"]} if {
	applies
	some ctr in workload_containers
}

# A container's own profile, where it sets one, becomes the pod's profile,
# unless it is Unconfined (denied by validation).
patch contains {"setting": "container.securityContext.seccompProfile", "op": "set", "path": array.concat(ctr.path, ["securityContext", "seccompProfile"]), "value": seccomp_profile} if {
	applies
	some ctr in workload_containers
	profile := container_security_context(ctr).seccompProfile
	not unconfined(profile)
}

patch contains {"setting": "container.securityContext.appArmorProfile", "op": "set", "path": array.concat(ctr.path, ["securityContext", "appArmorProfile"]), "value": config.appArmor} if {
	applies
	some ctr in workload_containers
	profile := container_security_context(ctr).appArmorProfile
	not unconfined(profile)
	not legacy_apparmor
}
