# Runtime class.
#
# Denies a pod whose runtimeClassName is not in config.runtimeClass.allowed
# (gVisor), and a pod without one: the sandbox runtime is what contains the
# agent. The mutation sets it on every Job that lacks one, so a Job without
# it means the mutation did not run; a Pod created directly must set it.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

violation contains {
	"msg": sprintf("runtimeClassName is required (allowed: %s)", [joined(config.runtimeClass.allowed)]),
	"field": sprintf("%s.runtimeClassName", [k8s.pod_field]),
} if {
	applies
	object.get(k8s.pod_spec, "runtimeClassName", null) == null
}

violation contains {
	"msg": sprintf("runtimeClassName %q is not allowed (allowed: %s)", [rc, joined(config.runtimeClass.allowed)]),
	"field": sprintf("%s.runtimeClassName", [k8s.pod_field]),
} if {
	applies
	rc := k8s.pod_spec.runtimeClassName
	rc != null
	not rc in config.runtimeClass.allowed
}
