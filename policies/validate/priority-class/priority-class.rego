# Priority class.
#
# Denies a pod whose priorityClassName is not config.priorityClassName
# (field spec.template.spec.priorityClassName for a Job, spec.priorityClassName
# for a Pod), and one without it. The mutation sets it on every labelled Job
# and Pod; the class decides whom the pod may preempt (the FlowForge class
# preempts nobody), so a pod may not pick a higher one.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

violation contains {
	"msg": sprintf("priorityClassName %q is not allowed: FlowForge pods run with %q", [pc, config.priorityClassName]),
	"field": sprintf("%s.priorityClassName", [k8s.pod_field]),
} if {
	applies
	pc := object.get(k8s.pod_spec, "priorityClassName", "")
	pc != config.priorityClassName
}
