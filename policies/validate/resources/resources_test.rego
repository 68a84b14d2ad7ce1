package flowforge.validate.resources_test

import data.flowforge.validate.testing as t

test_missing_limits_denied if {
	obj := t.pod([t.remove("/spec/containers/0/resources/limits")])
	t.pod_deny(obj) == {
		{"msg": "container \"worker\" has no cpu limit", "field": "spec.containers[0].resources.limits.cpu"},
		{"msg": "container \"worker\" has no memory limit", "field": "spec.containers[0].resources.limits.memory"},
		{"msg": "container \"worker\" has no ephemeral-storage limit", "field": "spec.containers[0].resources.limits.ephemeral-storage"},
	}
}

test_missing_limit_in_init_container_denied if {
	obj := t.pod([t.set("/spec/initContainers", [object.remove(t.container({"name": "clone"}), ["resources"])])])
	t.fields(t.pod_deny(obj)) == {
		"spec.initContainers[0].resources.limits.cpu",
		"spec.initContainers[0].resources.limits.memory",
		"spec.initContainers[0].resources.limits.ephemeral-storage",
	}
}

test_limits_and_requests_above_profile_denied if {
	obj := t.job([
		t.set("/spec/template/spec/containers/0/resources/limits/memory", "16Gi"),
		t.set("/spec/template/spec/containers/0/resources/requests/cpu", "3"),
	])
	t.job_deny(obj) == {
		{
			"msg": "container \"worker\": memory limits 16Gi is above the medium profile's limit 4Gi",
			"field": "spec.template.spec.containers[0].resources.limits.memory",
		},
		{
			"msg": "container \"worker\": cpu requests 3 is above the medium profile's limit 2",
			"field": "spec.template.spec.containers[0].resources.requests.cpu",
		},
		# And the pod as a whole (validate/pod-resources).
		{
			"msg": "the pod's memory limits (its containers, init containers and sidecars, as the scheduler adds them up) is 16384Mi, above the medium profile's pod maximum 6Gi",
			"field": "spec.template.spec.resources.limits.memory",
		},
	}
}

test_profile_annotation_sets_the_maximum if {
	large := t.job([
		t.set("/metadata/annotations/flowforge.io~1profile", "large"),
		t.set("/spec/template/spec/containers/0/resources/limits", {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "20Gi"}),
	])
	count(t.job_deny(large)) == 0
	small := json.patch(large, [t.set("/metadata/annotations/flowforge.io~1profile", "small")])
	t.fields(t.job_deny(small)) == {
		"spec.template.spec.containers[0].resources.limits.cpu",
		"spec.template.spec.containers[0].resources.limits.memory",
		"spec.template.spec.containers[0].resources.limits.ephemeral-storage",
		# And the pod as a whole (validate/pod-resources).
		"spec.template.spec.resources.limits.cpu",
		"spec.template.spec.resources.limits.memory",
		"spec.template.spec.resources.limits.ephemeral-storage",
	}

	# A Pod is checked against the profile it carries.
	pod := t.pod([
		t.set("/metadata/annotations/flowforge.io~1profile", "small"),
		t.set("/spec/containers/0/resources/limits", {"cpu": "1500m", "memory": "2Gi", "ephemeral-storage": "4Gi"}),
	])
	t.fields(t.pod_deny(pod)) == {"spec.containers[0].resources.limits.cpu"}
}

test_unknown_profile_denied if {
	obj := t.job([
		t.set("/metadata/annotations/flowforge.io~1profile", "huge"),
		t.set("/spec/template/spec/containers/0/resources/limits/cpu", "8"),
	])
	t.job_deny(obj) == {
		{"msg": "unknown resource profile \"huge\" (profiles: large, medium, small)", "field": "metadata.annotations[flowforge.io/profile]"},
		{
			"msg": "container \"worker\": cpu limits 8 is above the medium profile's limit 2",
			"field": "spec.template.spec.containers[0].resources.limits.cpu",
		},
		{
			"msg": "the pod's cpu limits (its containers, init containers and sidecars, as the scheduler adds them up) is 8000m, above the medium profile's pod maximum 3",
			"field": "spec.template.spec.resources.limits.cpu",
		},
	}
}

test_resources_within_profile_admitted if {
	obj := t.job([t.set("/spec/template/spec/containers/0/resources", {
		"limits": {"cpu": "1500m", "memory": "3Gi", "ephemeral-storage": "10Gi"},
		"requests": {"cpu": "1", "memory": "3Gi", "ephemeral-storage": "1Gi"},
	})])
	count(t.job_deny(obj)) == 0
}
