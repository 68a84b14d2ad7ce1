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

patch contains default_op(sprintf("container.securityContext.%s", [field]), array.concat(ctr.path, ["securityContext", field]), value) if {
	applies
	some ctr in workload_containers
	some field, value in container_security_defaults
	not conflicts_with_privileged(ctr, field)
}

# The API server refuses allowPrivilegeEscalation false next to privileged
# true; leave it unset so that the validating policy can name the real
# problem (privileged) instead.
conflicts_with_privileged(ctr, "allowPrivilegeEscalation") if container_security_context(ctr).privileged == true

patch contains set_op("container.securityContext.readOnlyRootFilesystem", array.concat(ctr.path, ["securityContext", "readOnlyRootFilesystem"]), true) if {
	applies
	some ctr in workload_containers
}

patch contains union_op("container.securityContext.capabilities.drop", array.concat(ctr.path, ["securityContext", "capabilities", "drop"]), ["ALL"]) if {
	applies
	some ctr in workload_containers
}

# A container's own profile, where it sets one, becomes the pod's profile,
# unless it is Unconfined (denied by validation).
patch contains set_op("container.securityContext.seccompProfile", array.concat(ctr.path, ["securityContext", "seccompProfile"]), seccomp_profile) if {
	applies
	some ctr in workload_containers
	profile := container_security_context(ctr).seccompProfile
	not unconfined(profile)
}

patch contains set_op("container.securityContext.appArmorProfile", array.concat(ctr.path, ["securityContext", "appArmorProfile"]), config.appArmor) if {
	applies
	some ctr in workload_containers
	profile := container_security_context(ctr).appArmorProfile
	not unconfined(profile)
	not legacy_apparmor
}
