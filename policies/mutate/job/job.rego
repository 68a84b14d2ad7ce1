# Job lifecycle.
#
# Deadline (from the timeout annotation, the Job's own value, or the
# default), TTL after finishing (clamped to the maximum), retries with a
# podFailurePolicy, pod labels for selection, export finalizers, and the
# policy revision that hardened the Job.
package flowforge.mutate

import data.flowforge.config
import data.flowforge.lib.k8s

job_config := config.job

# timeout_seconds: the timeout annotation, in seconds ("1800") or as a Go
# duration ("30m"). Undefined when absent or unparsable.
timeout_seconds := to_number(raw) if {
	raw := k8s.annotations[config.annotations.timeout]
	regex.match(`^[0-9]+$`, raw)
}

timeout_seconds := round(time.parse_duration_ns(raw) / 1000000000) if {
	raw := k8s.annotations[config.annotations.timeout]
	not regex.match(`^[0-9]+$`, raw)
}

patch contains set_op("activeDeadlineSeconds", ["spec", "activeDeadlineSeconds"], timeout_seconds) if {
	applies
	timeout_seconds > 0
}

patch contains default_op("activeDeadlineSeconds", ["spec", "activeDeadlineSeconds"], job_config.activeDeadlineSeconds.default) if {
	applies
	not timeout_seconds
}

patch contains default_op("ttlSecondsAfterFinished", ["spec", "ttlSecondsAfterFinished"], job_config.ttlSecondsAfterFinished.default) if applies

patch contains set_op("ttlSecondsAfterFinished", ["spec", "ttlSecondsAfterFinished"], job_config.ttlSecondsAfterFinished.max) if {
	applies
	k8s.obj.spec.ttlSecondsAfterFinished > job_config.ttlSecondsAfterFinished.max
}

warn contains sprintf("spec.ttlSecondsAfterFinished: %d is above the maximum and was set to %d", [k8s.obj.spec.ttlSecondsAfterFinished, job_config.ttlSecondsAfterFinished.max]) if {
	applies
	k8s.obj.spec.ttlSecondsAfterFinished > job_config.ttlSecondsAfterFinished.max
}

# The API server defaults backoffLimit before admission, so its default
# value counts as unset.
patch contains set_op("backoffLimit", ["spec", "backoffLimit"], job_config.backoffLimit.default) if {
	applies
	object.get(k8s.obj, ["spec", "backoffLimit"], job_config.backoffLimit.apiServerDefault) == job_config.backoffLimit.apiServerDefault
}

pod_failure_rules := array.concat(
	[{"action": "FailJob", "onExitCodes": {"operator": "In", "values": job_config.podFailurePolicy.failJobOnExitCodes}} |
		count(job_config.podFailurePolicy.failJobOnExitCodes) > 0
	],
	[{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} |
		job_config.podFailurePolicy.ignoreDisruptions
	],
)

patch contains default_op("podFailurePolicy", ["spec", "podFailurePolicy"], {"rules": pod_failure_rules}) if {
	applies
	count(pod_failure_rules) > 0
}

# Pods carry the Job's FlowForge labels, so that the pod webhook and the
# controller select them.
propagated_labels := {key: value |
	some key in config.propagatedLabels
	value := k8s.labels[key]
}

patch contains merge_op("podLabels", array.concat(k8s.pod_meta_path, ["labels"]), propagated_labels) if applies

patch contains union_op("finalizers", ["metadata", "finalizers"], [config.export.jobFinalizer]) if {
	applies
	config.export.enabled
}

patch contains union_op("podFinalizers", array.concat(k8s.pod_meta_path, ["finalizers"]), [config.export.podFinalizer]) if {
	applies
	config.export.enabled
}

revision := object.get(input, ["policy", "revision"], config.release)

patch contains set_op("policyRevision", ["metadata", "annotations", config.annotations.policyRevision], revision) if applies

patch contains set_op("policyRevision", array.concat(k8s.pod_meta_path, ["annotations", config.annotations.policyRevision]), revision) if applies

# Pods record the profile they were sized by, so that validating a pod
# checks its limits against the same profile.
patch contains merge_op("podAnnotations", array.concat(k8s.pod_meta_path, ["annotations"]), {config.annotations.profile: profile_name}) if applies

# With a podFailurePolicy the Job controller requires podReplacementPolicy
# Failed: a retry starts only once the failed pod is fully gone, so two
# attempts never run at once.
patch contains set_op("podReplacementPolicy", ["spec", "podReplacementPolicy"], "Failed") if applies
