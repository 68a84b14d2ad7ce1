package flowforge.mutate_test

import data.flowforge.lib.fixtures
import data.flowforge.mutate

# bare_pod: a labelled Pod as a user writes it, with no hardening.
bare_pod := {
	"apiVersion": "v1",
	"kind": "Pod",
	"metadata": {
		"name": "agent",
		"namespace": "agents",
		"labels": {"app": "flowforge", "job-id": "abc", "user-id": "u1"},
	},
	"spec": {"containers": [{"name": "worker", "image": "ghcr.io/flowforge/claude-worker:1.0.0"}]},
}

pod_ops(pod, setting) := {op | some op in mutate.patch with input as fixtures.pod_input(pod); op.setting == setting}

job_owner := {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u", "controller": true}

test_bare_pod_gets_the_default_deadline if {
	pod_ops(bare_pod, "pod.activeDeadlineSeconds") == {mutate.default_op("pod.activeDeadlineSeconds", ["spec", "activeDeadlineSeconds"], 3600)}
}

test_bare_pod_deadline_from_its_timeout_annotation if {
	pod := json.patch(bare_pod, [{"op": "add", "path": "/metadata/annotations", "value": {"flowforge.io/timeout": "30m"}}])
	pod_ops(pod, "pod.activeDeadlineSeconds") == {mutate.set_op("pod.activeDeadlineSeconds", ["spec", "activeDeadlineSeconds"], 1800)}
}

test_job_controlled_pod_gets_the_maximum_as_a_backstop if {
	pod := json.patch(bare_pod, [{"op": "add", "path": "/metadata/ownerReferences", "value": [job_owner]}])
	pod_ops(pod, "pod.activeDeadlineSeconds") == {mutate.default_op("pod.activeDeadlineSeconds", ["spec", "activeDeadlineSeconds"], 14400)}
}

test_other_owners_are_not_job_controlled if {
	rs := object.union(job_owner, {"apiVersion": "apps/v1", "kind": "ReplicaSet"})
	not_controller := object.union(job_owner, {"controller": false})
	every owner in [rs, not_controller] {
		pod := json.patch(bare_pod, [{"op": "add", "path": "/metadata/ownerReferences", "value": [owner]}])
		pod_ops(pod, "pod.activeDeadlineSeconds") == {mutate.default_op("pod.activeDeadlineSeconds", ["spec", "activeDeadlineSeconds"], 3600)}
	}
}

test_pod_gets_the_pod_level_hardening_at_its_own_paths if {
	pod_ops(bare_pod, "runtimeClassName") == {mutate.default_op("runtimeClassName", ["spec", "runtimeClassName"], "gvisor")}
	pod_ops(bare_pod, "priorityClassName") == {mutate.set_op("priorityClassName", ["spec", "priorityClassName"], "flowforge-worker")}
	pod_ops(bare_pod, "restartPolicy") == {mutate.set_op("restartPolicy", ["spec", "restartPolicy"], "Never")}
	pod_ops(bare_pod, "nodeSelector") == {mutate.merge_op("nodeSelector", ["spec", "nodeSelector"], {"flowforge.io/sandbox": "gvisor"})}
	count(pod_ops(bare_pod, "container.securityContext.readOnlyRootFilesystem")) == 1
	count(pod_ops(bare_pod, "resources.limits.cpu")) == 1
	count(pod_ops(bare_pod, "volume.flowforge-tmp")) == 1
	some op in pod_ops(bare_pod, "podAnnotations")
	op.path == ["metadata", "annotations"]
}

test_job_level_settings_never_touch_a_pod if {
	all := mutate.patch with input as fixtures.pod_input(bare_pod)
	job_only := {"activeDeadlineSeconds", "ttlSecondsAfterFinished", "backoffLimit", "podFailurePolicy", "podReplacementPolicy", "finalizers", "podFinalizers", "podLabels"}
	every op in all {
		not op.setting in job_only
	}
}

test_pod_deadline_is_not_set_on_jobs if {
	count(ops(fixtures.job, "pod.activeDeadlineSeconds")) == 0
}

test_stale_priority_is_removed_when_the_class_changes if {
	pod := json.patch(bare_pod, [
		{"op": "add", "path": "/spec/priority", "value": 0},
		{"op": "add", "path": "/spec/preemptionPolicy", "value": "PreemptLowerPriority"},
	])
	pod_ops(pod, "priority") == {{"setting": "priority", "op": "remove", "path": ["spec", "priority"]}}
	pod_ops(pod, "preemptionPolicy") == {{"setting": "preemptionPolicy", "op": "remove", "path": ["spec", "preemptionPolicy"]}}
}

test_priority_is_kept_when_the_class_is_already_the_policys if {
	pod := json.patch(bare_pod, [
		{"op": "add", "path": "/spec/priority", "value": 1000},
		{"op": "add", "path": "/spec/priorityClassName", "value": "flowforge-worker"},
	])
	count(pod_ops(pod, "priority")) == 0
	count(pod_ops(pod, "preemptionPolicy")) == 0
	count(pod_ops(bare_pod, "priority")) == 0
}

test_unlabelled_pod_and_pod_update_are_not_mutated if {
	unlabelled := json.patch(bare_pod, [{"op": "remove", "path": "/metadata/labels/app"}])
	unlabelled_ops := mutate.patch with input as fixtures.pod_input(unlabelled)
	count(unlabelled_ops) == 0
	update_ops := mutate.patch with input as fixtures.update_input(fixtures.pod_kind, bare_pod, bare_pod)
	count(update_ops) == 0
}

test_legacy_apparmor_annotations_on_a_pod_leave_the_fields_alone if {
	pod := json.patch(bare_pod, [{"op": "add", "path": "/metadata/annotations", "value": {"container.apparmor.security.beta.kubernetes.io/worker": "unconfined"}}])
	count(pod_ops(pod, "podSecurityContext.appArmorProfile")) == 0
	count(pod_ops(bare_pod, "podSecurityContext.appArmorProfile")) == 1
}

test_stale_priority_is_removed_from_a_job_template_too if {
	job := json.patch(fixtures.job, [
		{"op": "add", "path": "/spec/template/spec/priorityClassName", "value": "system-cluster-critical"},
		{"op": "add", "path": "/spec/template/spec/priority", "value": 2000000000},
	])
	ops(job, "priority") == {{"setting": "priority", "op": "remove", "path": ["spec", "template", "spec", "priority"]}}
	count(ops(job, "preemptionPolicy")) == 0
}
