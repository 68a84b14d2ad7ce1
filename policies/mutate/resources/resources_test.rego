package flowforge.mutate_test

import data.flowforge.lib.fixtures

resource_value(job, setting) := op.value if {
	some op in ops(job, setting)
	op.path[3] == "containers"
	op.path[4] == 0
}

test_default_profile_is_medium if {
	resource_value(fixtures.job, "resources.requests.cpu") == "500m"
	resource_value(fixtures.job, "resources.limits.cpu") == "2"
	resource_value(fixtures.job, "resources.limits.memory") == "4Gi"
	resource_value(fixtures.job, "resources.limits.ephemeral-storage") == "10Gi"
}

test_profile_annotation_selects_profile if {
	job := fixtures.job_with({"metadata": {"annotations": {"flowforge.io/profile": "large"}}})
	resource_value(job, "resources.limits.memory") == "8Gi"
	resource_value(job, "resources.requests.cpu") == "1"
}

test_unknown_profile_falls_back_to_default if {
	job := fixtures.job_with({"metadata": {"annotations": {"flowforge.io/profile": "huge"}}})
	resource_value(job, "resources.limits.memory") == "4Gi"
}

test_request_never_exceeds_users_limit if {
	job := fixtures.job_with({"spec": {"template": {"spec": {"containers": [{
		"name": "worker",
		"image": "ghcr.io/flowforge/claude-worker:1.0.0",
		"resources": {"limits": {"cpu": "200m"}},
	}]}}}})
	resource_value(job, "resources.requests.cpu") == "200m"
	resource_value(job, "resources.requests.memory") == "1Gi"
}

test_resources_are_defaults if {
	every op in ops(fixtures.job, "resources.limits.cpu") {
		op.op == "default"
	}
}

test_request_above_the_profile_gets_no_default_limit if {
	job := fixtures.job_with({"spec": {"template": {"spec": {"containers": [{
		"name": "worker",
		"image": "ghcr.io/flowforge/claude-worker:1.0.0",
		"resources": {"requests": {"cpu": "3"}},
	}]}}}})
	not resource_value(job, "resources.limits.cpu")
	resource_value(job, "resources.limits.memory") == "4Gi"
}

helper_value(job, setting, kind, index) := op.value if {
	some op in ops(job, setting)
	op.path[3] == kind
	op.path[4] == index
}

test_helpers_get_the_helper_sizes if {
	job := fixtures.job_with({"spec": {"template": {"spec": {
		"containers": [
			{"name": "worker", "image": "ghcr.io/flowforge/claude-worker:1.0.0"},
			{"name": "preview", "image": "ghcr.io/flowforge/x:1"},
		],
		"initContainers": [{"name": "proxy", "image": "ghcr.io/flowforge/proxy:1.0.0", "restartPolicy": "Always"}],
	}}}})
	helper_value(job, "resources.limits.cpu", "containers", 0) == "2"
	helper_value(job, "resources.limits.cpu", "containers", 1) == "500m"
	helper_value(job, "resources.requests.memory", "containers", 1) == "128Mi"
	helper_value(job, "resources.limits.memory", "initContainers", 0) == "512Mi"
	helper_value(job, "resources.limits.ephemeral-storage", "initContainers", 0) == "1Gi"
}

test_helper_request_above_its_default_limit_is_its_limit if {
	job := fixtures.job_with({"spec": {"template": {"spec": {"initContainers": [{
		"name": "clone",
		"image": "ghcr.io/flowforge/git:1.0.0",
		"resources": {"requests": {"cpu": "1500m", "memory": "64Mi"}},
	}]}}}})
	helper_value(job, "resources.limits.cpu", "initContainers", 0) == "1500m"
	helper_value(job, "resources.limits.memory", "initContainers", 0) == "512Mi"
}
