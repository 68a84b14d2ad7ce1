package flowforge.mutate_test

import data.flowforge.lib.fixtures

two_containers := fixtures.job_with({"spec": {"template": {"spec": {
	"initContainers": [{"name": "clone", "image": "ghcr.io/flowforge/git:1.0.0"}],
	"containers": [
		{"name": "worker", "image": "ghcr.io/flowforge/claude-worker:1.0.0"},
		{"name": "proxy", "image": "ghcr.io/flowforge/proxy:1.0.0", "securityContext": {
			"seccompProfile": {"type": "RuntimeDefault"},
			"appArmorProfile": {"type": "Localhost", "localhostProfile": "x"},
		}},
	],
}}}})

paths(job, setting) := {op.path | some op in ops(job, setting)}

test_every_container_is_hardened if {
	paths(two_containers, "container.securityContext.privileged") == {
		["spec", "template", "spec", "initContainers", 0, "securityContext", "privileged"],
		["spec", "template", "spec", "containers", 0, "securityContext", "privileged"],
		["spec", "template", "spec", "containers", 1, "securityContext", "privileged"],
	}
	count(paths(two_containers, "container.securityContext.allowPrivilegeEscalation")) == 3
	count(paths(two_containers, "container.securityContext.runAsNonRoot")) == 3
	count(paths(two_containers, "container.securityContext.readOnlyRootFilesystem")) == 3
}

test_capabilities_drop_all if {
	some op in ops(fixtures.job, "container.securityContext.capabilities.drop")
	op.op == "union"
	op.value == ["ALL"]
}

test_privileged_is_a_default_not_an_override if {
	some op in ops(fixtures.job, "container.securityContext.privileged")
	op.op == "default"
	op.value == false
}

test_container_profiles_follow_the_pod if {
	some op in ops(two_containers, "container.securityContext.seccompProfile")
	op.path == ["spec", "template", "spec", "containers", 1, "securityContext", "seccompProfile"]
	op.value.type == "Localhost"
	some aa in ops(two_containers, "container.securityContext.appArmorProfile")
	aa.value == {"type": "RuntimeDefault"}
}

test_containers_without_profiles_inherit if {
	count(ops(fixtures.job, "container.securityContext.seccompProfile")) == 0
}

test_privileged_containers_keep_escalation_unset if {
	job := fixtures.job_with({"spec": {"template": {"spec": {"containers": [{
		"name": "worker",
		"image": "ghcr.io/flowforge/claude-worker:1.0.0",
		"securityContext": {"privileged": true},
	}]}}}})
	count(ops(job, "container.securityContext.allowPrivilegeEscalation")) == 0
	count(ops(job, "container.securityContext.runAsNonRoot")) == 1
}
