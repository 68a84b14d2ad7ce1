package flowforge.mutate_test

import data.flowforge.lib.fixtures
import data.flowforge.mutate

pod_path(rest) := array.concat(["spec", "template", "spec"], rest)

test_runtime_class_defaults_to_gvisor if {
	ops(fixtures.job, "runtimeClassName") == {mutate.default_op("runtimeClassName", pod_path(["runtimeClassName"]), "gvisor")}
}

test_pod_settings_are_enforced if {
	ops(fixtures.job, "automountServiceAccountToken") == {mutate.set_op("automountServiceAccountToken", pod_path(["automountServiceAccountToken"]), false)}
	ops(fixtures.job, "enableServiceLinks") == {mutate.set_op("enableServiceLinks", pod_path(["enableServiceLinks"]), false)}
	ops(fixtures.job, "priorityClassName") == {mutate.set_op("priorityClassName", pod_path(["priorityClassName"]), "flowforge-worker")}
	ops(fixtures.job, "restartPolicy") == {mutate.set_op("restartPolicy", pod_path(["restartPolicy"]), "Never")}
}

test_pod_security_context_defaults if {
	ops(fixtures.job, "podSecurityContext.runAsNonRoot") == {mutate.default_op("podSecurityContext.runAsNonRoot", pod_path(["securityContext", "runAsNonRoot"]), true)}
	ops(fixtures.job, "podSecurityContext.runAsUser") == {mutate.default_op("podSecurityContext.runAsUser", pod_path(["securityContext", "runAsUser"]), 1000)}
	ops(fixtures.job, "podSecurityContext.runAsGroup") == {mutate.default_op("podSecurityContext.runAsGroup", pod_path(["securityContext", "runAsGroup"]), 1000)}
	ops(fixtures.job, "podSecurityContext.fsGroup") == {mutate.default_op("podSecurityContext.fsGroup", pod_path(["securityContext", "fsGroup"]), 1000)}
}

test_seccomp_localhost_by_default if {
	some op in ops(fixtures.job, "podSecurityContext.seccompProfile")
	op.value == {"type": "Localhost", "localhostProfile": "claude-worker.json"}
	op.op == "set"
}

test_seccomp_runtime_default_where_namespace_says_so if {
	inp := fixtures.job_input_in(fixtures.job, {"flowforge.io/seccomp": "runtime-default"})
	some op in mutate.patch with input as inp
	op.setting == "podSecurityContext.seccompProfile"
	op.value == {"type": "RuntimeDefault"}
}

test_apparmor_runtime_default if {
	some op in ops(fixtures.job, "podSecurityContext.appArmorProfile")
	op.value == {"type": "RuntimeDefault"}
}

test_unconfined_profiles_are_left_for_validation if {
	job := fixtures.job_with({"spec": {"template": {"spec": {"securityContext": {
		"seccompProfile": {"type": "Unconfined"},
		"appArmorProfile": {"type": "Unconfined"},
	}}}}})
	count(ops(job, "podSecurityContext.seccompProfile")) == 0
	count(ops(job, "podSecurityContext.appArmorProfile")) == 0
}

test_legacy_apparmor_annotations_leave_the_fields_alone if {
	job := fixtures.job_with({"spec": {"template": {"metadata": {"annotations": {
		"container.apparmor.security.beta.kubernetes.io/worker": "unconfined",
	}}}}})
	count(ops(job, "podSecurityContext.appArmorProfile")) == 0
}
