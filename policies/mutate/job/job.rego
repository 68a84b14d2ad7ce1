# Job lifecycle.
#
# Deadline (from the timeout annotation, the Job's own value, or the
# default), TTL after finishing (clamped to the maximum; recorded in an
# annotation for the FlowForge controller when the export is on), retries with a
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
	applies_job
	timeout_seconds > 0
}

patch contains {"setting": "activeDeadlineSeconds", "op": "default", "path": ["spec", "activeDeadlineSeconds"], "value": job_config.activeDeadlineSeconds.default} if {
	applies_job
	not timeout_seconds
}

# TTL after finishing. With the export on, FlowForge deletes finished Jobs
# itself, after their export: the TTL goes into the annotation
# config.annotations.ttlSecondsAfterFinished and never into
# spec.ttlSecondsAfterFinished, so the built-in TTL controller (which would
# delete the pods, and with them their logs on the node, whether or not
# the export is done) never acts on the Job. The value is the annotation's
# (a whole number of seconds), else the user's spec.ttlSecondsAfterFinished
# (moved into the annotation and removed from spec), else the default;
# clamped to the maximum. A malformed annotation is left for validation to
# deny. With the export off, the built-in controller does the job as before.
ttl_config := job_config.ttlSecondsAfterFinished

ttl_annotation := config.annotations.ttlSecondsAfterFinished

ttl_annotated if k8s.annotations[ttl_annotation]

ttl_spec_set if "ttlSecondsAfterFinished" in object.keys(object.get(k8s.obj, "spec", {}))

ttl_requested := to_number(raw) if {
	raw := k8s.annotations[ttl_annotation]
	regex.match(`^[0-9]+$`, raw)
}

ttl_requested := k8s.obj.spec.ttlSecondsAfterFinished if {
	not ttl_annotated
	is_number(k8s.obj.spec.ttlSecondsAfterFinished)
}

ttl_requested := ttl_config.default if {
	not ttl_annotated
	not is_number(object.get(k8s.obj, ["spec", "ttlSecondsAfterFinished"], null))
}

ttl_seconds := min([ttl_requested, ttl_config.max])

patch contains {"setting": "ttlSecondsAfterFinished", "op": "set", "path": ["metadata", "annotations", ttl_annotation], "value": format_int(ttl_seconds, 10)} if {
	applies_job
	config.export.enabled
}

patch contains {"setting": "ttlSecondsAfterFinished", "op": "remove", "path": ["spec", "ttlSecondsAfterFinished"]} if {
	applies_job
	config.export.enabled
	ttl_spec_set
}

warn contains sprintf("spec.ttlSecondsAfterFinished: FlowForge deletes the Job itself once its logs are exported; the TTL (%d s) was moved to the annotation %s", [ttl_seconds, ttl_annotation]) if {
	applies_job
	config.export.enabled
	ttl_spec_set
	not ttl_annotated
	ttl_requested <= ttl_config.max
}

warn contains sprintf("spec.ttlSecondsAfterFinished: %v is above the maximum; the annotation %s was set to %d", [ttl_requested, ttl_annotation, ttl_config.max]) if {
	applies_job
	config.export.enabled
	ttl_spec_set
	not ttl_annotated
	ttl_requested > ttl_config.max
}

warn contains sprintf("metadata.annotations[%s]: %v is above the maximum and was set to %d", [ttl_annotation, ttl_requested, ttl_config.max]) if {
	applies_job
	config.export.enabled
	ttl_annotated
	ttl_requested > ttl_config.max
}

patch contains {"setting": "ttlSecondsAfterFinished", "op": "default", "path": ["spec", "ttlSecondsAfterFinished"], "value": ttl_config.default} if {
	applies_job
	not config.export.enabled
}

patch contains {"setting": "ttlSecondsAfterFinished", "op": "set", "path": ["spec", "ttlSecondsAfterFinished"], "value": ttl_config.max} if {
	applies_job
	not config.export.enabled
	k8s.obj.spec.ttlSecondsAfterFinished > ttl_config.max
}

warn contains sprintf("spec.ttlSecondsAfterFinished: %d is above the maximum and was set to %d", [k8s.obj.spec.ttlSecondsAfterFinished, ttl_config.max]) if {
	applies_job
	not config.export.enabled
	k8s.obj.spec.ttlSecondsAfterFinished > ttl_config.max
}

# The API server defaults backoffLimit before admission, so its default
# value counts as unset. A Job with backoffLimitPerIndex retries each index
# on its own (the API server's backoffLimit is then MaxInt32): its
# backoffLimit is left alone, and validation bounds backoffLimitPerIndex.
patch contains {"setting": "backoffLimit", "op": "set", "path": ["spec", "backoffLimit"], "value": job_config.backoffLimit.default} if {
	applies_job
	not per_index_backoff
	object.get(k8s.obj, ["spec", "backoffLimit"], job_config.backoffLimit.apiServerDefault) == job_config.backoffLimit.apiServerDefault
}

per_index_backoff if object.get(k8s.obj, ["spec", "backoffLimitPerIndex"], null) != null

pod_failure_rules := array.concat(
	[{"action": "FailJob", "onExitCodes": {"operator": "In", "values": job_config.podFailurePolicy.failJobOnExitCodes}} |
		count(job_config.podFailurePolicy.failJobOnExitCodes) > 0
	],
	[{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} |
		job_config.podFailurePolicy.ignoreDisruptions
	],
)

patch contains {"setting": "podFailurePolicy", "op": "default", "path": ["spec", "podFailurePolicy"], "value": {"rules": pod_failure_rules}} if {
	applies_job
	count(pod_failure_rules) > 0
}

# Pods carry the Job's FlowForge labels, so that the pod webhook and the
# controller select them. The op names the keys and the engine copies their
# values from the Job's labels: the decision holds no value of this Job's
# own (a job-id), so distinct Jobs of one template share it.
propagated_label_keys := [key |
	some key in config.propagatedLabels
	key in object.keys(k8s.labels)
]

patch contains {"setting": "podLabels", "op": "copy", "from": ["metadata", "labels"], "path": array.concat(k8s.pod_meta_path, ["labels"]), "value": propagated_label_keys} if applies_job

patch contains {"setting": "finalizers", "op": "union", "path": ["metadata", "finalizers"], "value": [config.export.jobFinalizer]} if {
	applies_job
	config.export.enabled
}

patch contains {"setting": "podFinalizers", "op": "union", "path": array.concat(k8s.pod_meta_path, ["finalizers"]), "value": [config.export.podFinalizer]} if {
	applies_job
	config.export.enabled
}

revision := object.get(input, ["policy", "revision"], config.release)

patch contains {"setting": "policyRevision", "op": "set", "path": ["metadata", "annotations", config.annotations.policyRevision], "value": revision} if applies_job

patch contains {"setting": "policyRevision", "op": "set", "path": array.concat(k8s.pod_meta_path, ["annotations", config.annotations.policyRevision]), "value": revision} if applies

# Pods record the profile they were sized by, so that validating a pod
# checks its limits against the same profile.
patch contains {"setting": "podAnnotations", "op": "merge", "path": array.concat(k8s.pod_meta_path, ["annotations"]), "value": {config.annotations.profile: profile_name}} if applies

# With a podFailurePolicy the Job controller requires podReplacementPolicy
# Failed: a retry starts only once the failed pod is fully gone, so two
# attempts never run at once.
patch contains {"setting": "podReplacementPolicy", "op": "set", "path": ["spec", "podReplacementPolicy"], "value": "Failed"} if applies_job
