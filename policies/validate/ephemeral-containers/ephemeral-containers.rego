# Ephemeral containers.
#
# Denies ephemeral containers (spec.ephemeralContainers[i]) on a FlowForge
# pod, e.g. from `kubectl debug` (an UPDATE of the ephemeralcontainers
# subresource): one would run an arbitrary image next to the agent, with
# its processes and its secrets, outside the Job's hardening.
package flowforge.validate

import data.flowforge.lib.k8s

violation contains {
	"msg": sprintf("ephemeral container %q is not allowed: FlowForge pods cannot be debugged in place", [ctr.name]),
	"field": ctr.field,
} if {
	applies
	some ctr in k8s.containers
	ctr.kind == "ephemeralContainers"
}
