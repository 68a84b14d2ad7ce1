# Pod deadline.
#
# A Job bounds its pods with its own spec.activeDeadlineSeconds
# (job-limits/); a Pod bounds itself with its spec.activeDeadlineSeconds,
# which the kubelet enforces. The pod mutation sets it on every labelled Pod
# (mutate/pod-lifecycle), so denies:
#   a labelled Pod without spec.activeDeadlineSeconds (the mutation did not
#     run, or the Pod predates it);
#   spec.activeDeadlineSeconds of a Pod, or of a Job's pod template
#     (spec.template.spec.activeDeadlineSeconds), above
#     config.job.activeDeadlineSeconds.max.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

violation contains {
	"msg": sprintf("spec.activeDeadlineSeconds is required on a FlowForge Pod (at most %d): nothing else ends it", [config.job.activeDeadlineSeconds.max]),
	"field": "spec.activeDeadlineSeconds",
} if {
	applies
	k8s.is_pod
	object.get(k8s.pod_spec, "activeDeadlineSeconds", null) == null
}

violation contains {
	"msg": sprintf("%s.activeDeadlineSeconds %v is above the maximum %d for a pod's own deadline", [k8s.pod_field, deadline, config.job.activeDeadlineSeconds.max]),
	"field": sprintf("%s.activeDeadlineSeconds", [k8s.pod_field]),
} if {
	applies
	deadline := k8s.pod_spec.activeDeadlineSeconds
	deadline > config.job.activeDeadlineSeconds.max
}
