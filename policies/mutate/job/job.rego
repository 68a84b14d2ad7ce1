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

patch contains {"setting": "activeDeadlineSeconds", "op": "set", "path": ["spec", "activeDeadlineSeconds"], "value": timeout_seconds} if {
	applies
	timeout_seconds > 0
}

patch contains {"setting": "activeDeadlineSeconds", "op": "default", "path": ["spec", "activeDeadlineSeconds"], "value": job_config.activeDeadlineSeconds.default} if {
	applies
	not timeout_seconds
}

patch contains {"setting": "ttlSecondsAfterFinished", "op": "default", "path": ["spec", "ttlSecondsAfterFinished"], "value": job_config.ttlSecondsAfterFinished.default} if applies

patch contains {"setting": "ttlSecondsAfterFinished", "op": "set", "path": ["spec", "ttlSecondsAfterFinished"], "value": job_config.ttlSecondsAfterFinished.max} if {
	applies
	k8s.obj.spec.ttlSecondsAfterFinished > job_config.ttlSecondsAfterFinished.max
}

warn contains sprintf("spec.ttlSecondsAfterFinished: %d is above the maximum and was set to %d", [k8s.obj.spec.ttlSecondsAfterFinished, job_config.ttlSecondsAfterFinished.max]) if {
	applies
	k8s.obj.spec.ttlSecondsAfterFinished > job_config.ttlSecondsAfterFinished.max
}

# The API server defaults backoffLimit before admission, so its default
# value counts as unset.
patch contains {"setting": "backoffLimit", "op": "set", "path": ["spec", "backoffLimit"], "value": job_config.backoffLimit.default} if {
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

patch contains {"setting": "podFailurePolicy", "op": "default", "path": ["spec", "podFailurePolicy"], "value": {"rules": pod_failure_rules}} if {
	applies
	count(pod_failure_rules) > 0
}

# Pods carry the Job's FlowForge labels, so that the pod webhook and the
# controller select them.
propagated_labels := {key: value |
	some key in config.propagatedLabels
	value := k8s.labels[key]
}

patch contains {"setting": "podLabels", "op": "merge", "path": array.concat(k8s.pod_meta_path, ["labels"]), "value": propagated_labels} if applies

patch contains {"setting": "finalizers", "op": "union", "path": ["metadata", "finalizers"], "value": [config.export.jobFinalizer]} if {
	applies
	config.export.enabled
}

patch contains {"setting": "podFinalizers", "op": "union", "path": array.concat(k8s.pod_meta_path, ["finalizers"]), "value": [config.export.podFinalizer]} if {
	applies
	config.export.enabled
}

revision := object.get(input, ["policy", "revision"], config.release)

patch contains {"setting": "policyRevision", "op": "set", "path": ["metadata", "annotations", config.annotations.policyRevision], "value": revision} if applies

patch contains {"setting": "policyRevision", "op": "set", "path": array.concat(k8s.pod_meta_path, ["annotations", config.annotations.policyRevision]), "value": revision} if applies

# Pods record the profile they were sized by, so that validating a pod
# checks its limits against the same profile.
patch contains {"setting": "podAnnotations", "op": "merge", "path": array.concat(k8s.pod_meta_path, ["annotations"]), "value": {config.annotations.profile: profile_name}} if applies

# With a podFailurePolicy the Job controller requires podReplacementPolicy
# Failed: a retry starts only once the failed pod is fully gone, so two
# attempts never run at once.
patch contains {"setting": "podReplacementPolicy", "op": "set", "path": ["spec", "podReplacementPolicy"], "value": "Failed"} if applies
