# Lifecycle bounds: a cancel or a timeout ends a pod in bounded time, and a
# Job stays the built-in Job controller's, bounded in size and retries.
#
# Denies, on a Job's pod template or a Pod:
#   terminationGracePeriodSeconds above config.job.
#     terminationGracePeriodSeconds.max, on the pod or on a container's
#     liveness or startup probe (a probe's own grace period replaces the
#     pod's when the probe kills the container);
# and on a Job:
#   spec.managedBy other than config.job.allowedManagedBy: another
#     controller need honour neither the deadline nor the TTL, nor let
#     FlowForge's controller cancel the Job;
#   spec.manualSelector: true (unless config.job.allowManualSelector): the
#     Job's own selector could then miss its pods, hiding them from the Job
#     and from FlowForge's controller;
#   spec.parallelism and spec.completions above config.job.parallelism.max
#     and config.job.completions.max, on CREATE and on UPDATE (a scale-up:
#     an update that lowers a value admitted under an older policy, or
#     keeps it, is not refused);
#   spec.backoffLimitPerIndex above config.job.backoffLimitPerIndex.max;
#   a podFailurePolicy rule with action Ignore on exit codes, or on a pod
#     condition outside config.job.podFailurePolicy.ignorableConditions
#     (DisruptionTarget): ignored failures never count against
#     backoffLimit, so such a rule retries ordinary failures until the
#     deadline.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

job_config := config.job

max_grace := job_config.terminationGracePeriodSeconds.max

violation contains {
	"msg": sprintf("terminationGracePeriodSeconds %v is above the maximum %d", [grace, max_grace]),
	"field": sprintf("%s.terminationGracePeriodSeconds", [k8s.pod_field]),
} if {
	applies
	grace := k8s.pod_spec.terminationGracePeriodSeconds
	grace > max_grace
}

violation contains {
	"msg": sprintf("container %q: %s terminationGracePeriodSeconds %v is above the maximum %d", [ctr.name, probe, grace, max_grace]),
	"field": sprintf("%s.%s.terminationGracePeriodSeconds", [ctr.field, probe]),
} if {
	applies
	some ctr in k8s.containers
	some probe in ["livenessProbe", "startupProbe", "readinessProbe"]
	grace := ctr.container[probe].terminationGracePeriodSeconds
	grace > max_grace
}

violation contains {
	"msg": sprintf("spec.managedBy %q is not allowed (allowed: %s): only the Job controller honours the deadline and the TTL", [managed_by, joined(job_config.allowedManagedBy)]),
	"field": "spec.managedBy",
} if {
	applies
	k8s.is_job
	managed_by := k8s.obj.spec.managedBy
	managed_by != null
	not managed_by in job_config.allowedManagedBy
}

violation contains {
	"msg": "spec.manualSelector: true is not allowed: the Job's pods must be the ones its generated selector finds",
	"field": "spec.manualSelector",
} if {
	applies
	k8s.is_job
	not job_config.allowManualSelector
	k8s.obj.spec.manualSelector == true
}

violation contains {
	"msg": sprintf("spec.%s %v is above the maximum %d", [name, value, job_config[name].max]),
	"field": sprintf("spec.%s", [name]),
} if {
	applies
	k8s.is_job
	some name in ["parallelism", "completions", "backoffLimitPerIndex"]
	value := k8s.obj.spec[name]
	value > job_config[name].max
	not lowered(name, value)
}

# lowered: an UPDATE that does not raise the value. A Job admitted above a
# maximum under an older policy may still scale down or stay as it is;
# raising is denied.
lowered(name, value) if {
	k8s.operation == "UPDATE"
	value <= object.get(k8s.old_obj, ["spec", name], 0)
}

pod_failure_rules_of_job contains [i, rule] if {
	some i, rule in object.get(k8s.obj, ["spec", "podFailurePolicy", "rules"], [])
}

violation contains {
	"msg": "a podFailurePolicy rule must not Ignore exit codes: ignored failures never count against backoffLimit",
	"field": sprintf("spec.podFailurePolicy.rules[%d].onExitCodes", [i]),
} if {
	applies
	k8s.is_job
	some [i, rule] in pod_failure_rules_of_job
	rule.action == "Ignore"
	object.get(rule, "onExitCodes", null) != null
}

violation contains {
	"msg": sprintf("a podFailurePolicy rule may Ignore only %s, not %q: ignored failures never count against backoffLimit", [joined(job_config.podFailurePolicy.ignorableConditions), type]),
	"field": sprintf("spec.podFailurePolicy.rules[%d].onPodConditions[%d].type", [i, j]),
} if {
	applies
	k8s.is_job
	some [i, rule] in pod_failure_rules_of_job
	rule.action == "Ignore"
	some j, condition in object.get(rule, "onPodConditions", [])
	type := object.get(condition, "type", "")
	not type in job_config.podFailurePolicy.ignorableConditions
}
