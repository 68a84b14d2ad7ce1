# Pods that no hardened Job created.
#
# A labelled Pod gets the same pod-level hardening as a Job's pod template
# (pod/, containers/, volumes/, resources/, scheduling/ apply to both). What
# a Job bounds with its own fields, a Pod must bound by itself:
#
#   spec.activeDeadlineSeconds  a Pod that no Job controls gets the deadline
#     a Job would: the timeout annotation (on the Pod), else the default; the
#     kubelet ends the Pod when it expires. A Pod whose controller owner
#     reference names a Job gets the policy maximum where it has none: the
#     Job's own, shorter deadline governs a real Job's pods, and an owner
#     reference anyone can write still does not let a Pod outlive the
#     maximum. Validation (validate/pod-deadline) denies a Pod without one,
#     or above the maximum.
#
#   spec.priority, spec.preemptionPolicy  the API server resolves them from
#     priorityClassName before webhooks run, and refuses the Pod when they
#     disagree with the class the mutation sets; where the mutation changes
#     the class, the stale values are removed for the API server to resolve
#     again (for a Job's template too, where a user set them).
package flowforge.mutate

import data.flowforge.config
import data.flowforge.lib.k8s

# job_controlled: the Pod's controller, as its owner references claim, is a
# Job. Claimed, not proven: it only chooses the deadline's default.
job_controlled if {
	some ref in object.get(k8s.obj, ["metadata", "ownerReferences"], [])
	ref.controller == true
	ref.kind == "Job"
	ref.apiVersion == "batch/v1"
}

patch contains {"setting": "pod.activeDeadlineSeconds", "op": "set", "path": ["spec", "activeDeadlineSeconds"], "value": timeout_seconds} if {
	applies_pod
	not job_controlled
	timeout_seconds > 0
}

patch contains {"setting": "pod.activeDeadlineSeconds", "op": "default", "path": ["spec", "activeDeadlineSeconds"], "value": config.job.activeDeadlineSeconds.default} if {
	applies_pod
	not job_controlled
	not timeout_seconds
}

patch contains {"setting": "pod.activeDeadlineSeconds", "op": "default", "path": ["spec", "activeDeadlineSeconds"], "value": config.job.activeDeadlineSeconds.max} if {
	applies_pod
	job_controlled
}

# The class the mutation sets (pod/) differs from the object's own.
priority_class_changes if object.get(k8s.pod_spec, "priorityClassName", "") != config.priorityClassName

patch contains {"setting": "priority", "op": "remove", "path": array.concat(k8s.pod_path, ["priority"])} if {
	applies
	priority_class_changes
	"priority" in object.keys(k8s.pod_spec)
}

patch contains {"setting": "preemptionPolicy", "op": "remove", "path": array.concat(k8s.pod_path, ["preemptionPolicy"])} if {
	applies
	priority_class_changes
	"preemptionPolicy" in object.keys(k8s.pod_spec)
}
