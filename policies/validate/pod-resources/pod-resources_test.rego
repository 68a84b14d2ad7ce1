package flowforge.validate.pod_resources_test

import data.flowforge.validate
import data.flowforge.validate.testing as t

sized(name, cpu, memory) := t.container({
	"name": name,
	"resources": {
		"limits": {"cpu": cpu, "memory": memory, "ephemeral-storage": "1Gi"},
		"requests": {"cpu": cpu, "memory": memory, "ephemeral-storage": "1Gi"},
	},
})

replace(path, value) := {"op": "replace", "path": path, "value": value}

test_n_containers_do_not_get_n_times_the_profile if {
	# Three containers at the profile's per-container maximum.
	obj := t.job([t.set("/spec/template/spec/containers", [sized("a", "2", "4Gi"), sized("b", "2", "4Gi"), sized("c", "2", "4Gi")])])
	t.job_deny(obj) == {
		{
			"msg": "the pod's cpu limits (its containers, init containers and sidecars, as the scheduler adds them up) is 6000m, above the medium profile's pod maximum 3",
			"field": "spec.template.spec.resources.limits.cpu",
		},
		{
			"msg": "the pod's cpu requests (its containers, init containers and sidecars, as the scheduler adds them up) is 6000m, above the medium profile's pod maximum 3",
			"field": "spec.template.spec.resources.requests.cpu",
		},
		{
			"msg": "the pod's memory limits (its containers, init containers and sidecars, as the scheduler adds them up) is 12288Mi, above the medium profile's pod maximum 6Gi",
			"field": "spec.template.spec.resources.limits.memory",
		},
		{
			"msg": "the pod's memory requests (its containers, init containers and sidecars, as the scheduler adds them up) is 12288Mi, above the medium profile's pod maximum 6Gi",
			"field": "spec.template.spec.resources.requests.memory",
		},
	}
}

test_sidecars_count_with_the_containers if {
	# 2 + 1 (sidecar) = 3 is within the medium pod maximum; a second
	# sidecar takes the pod to 3.5.
	one := t.job([
		replace("/spec/template/spec/containers/0", sized("worker", "2", "4Gi")),
		t.set("/spec/template/spec/initContainers", [object.union(sized("proxy", "1", "1Gi"), {"restartPolicy": "Always"})]),
	])
	count(t.job_deny(one)) == 0
	two := json.patch(one, [t.set("/spec/template/spec/initContainers/-", object.union(sized("cache", "500m", "256Mi"), {"restartPolicy": "Always"}))])
	t.fields(t.job_deny(two)) == {"spec.template.spec.resources.limits.cpu", "spec.template.spec.resources.requests.cpu"}
}

test_init_containers_count_with_the_sidecars_before_them if {
	# The init container runs alone before the worker: max(2, 2) is fine.
	alone := t.pod([
		replace("/spec/containers/0", sized("worker", "2", "1Gi")),
		t.set("/spec/initContainers", [sized("clone", "2", "1Gi")]),
	])
	validate.pod_total("limits", "cpu") == 2000 with input as {"request": {"kind": {"kind": "Pod"}, "object": alone}}
	count(t.pod_deny(alone)) == 0

	# After a sidecar of 1.5 it runs beside it: 2 + 1.5 = 3.5.
	after_sidecar := t.pod([
		replace("/spec/containers/0", sized("worker", "1", "1Gi")),
		t.set("/spec/initContainers", [
			object.union(sized("proxy", "1500m", "1Gi"), {"restartPolicy": "Always"}),
			sized("clone", "2", "1Gi"),
		]),
	])
	validate.pod_total("limits", "cpu") == 3500 with input as {"request": {"kind": {"kind": "Pod"}, "object": after_sidecar}}
	t.fields(t.pod_deny(after_sidecar)) == {"spec.resources.limits.cpu", "spec.resources.requests.cpu"}
}

test_pod_level_resources_bounded if {
	obj := t.job([t.set("/spec/template/spec/resources", {"limits": {"cpu": "8", "memory": "2Gi"}})])
	t.job_deny(obj) == {{
		"msg": "the pod-level cpu limits 8 is above the medium profile's pod maximum 3",
		"field": "spec.template.spec.resources.limits.cpu",
	}}
	count(t.job_deny(t.job([t.set("/spec/template/spec/resources", {"limits": {"cpu": "3", "memory": "6Gi"}})]))) == 0
}

test_extended_resources_denied_unless_granted if {
	gpu := t.job([
		t.set("/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu", "1"),
		t.set("/spec/template/spec/containers/0/resources/requests/hugepages-2Mi", "64Mi"),
	])
	t.job_deny(gpu) == {
		{
			"msg": "container \"worker\": the medium profile grants no nvidia.com/gpu (extended resources it grants: none)",
			"field": "spec.template.spec.containers[0].resources.limits.nvidia.com/gpu",
		},
		{
			"msg": "container \"worker\": the medium profile grants no hugepages-2Mi (extended resources it grants: none)",
			"field": "spec.template.spec.containers[0].resources.requests.hugepages-2Mi",
		},
	}
	pod_level := t.job([t.set("/spec/template/spec/resources", {"limits": {"hugepages-1Gi": "1Gi"}})])
	t.fields(t.job_deny(pod_level)) == {"spec.template.spec.resources.limits.hugepages-1Gi"}
}

test_granted_extended_resources_bounded_per_pod if {
	two := t.job([
		t.set("/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu", "1"),
		t.set("/spec/template/spec/containers/-", object.union(sized("second", "500m", "256Mi"), {"resources": {"limits": {"nvidia.com/gpu": "1"}}})),
	])
	denials := t.job_deny(two) with data.flowforge.config.resources.profiles.medium.extendedResources as {"nvidia.com/gpu": "1"}
	denials == {{
		"msg": "the pod's nvidia.com/gpu limits (its containers, init containers and sidecars, as the scheduler adds them up) is 2, above the medium profile's pod maximum 1",
		"field": "spec.template.spec.resources.limits.nvidia.com/gpu",
	}}
	one := t.job([t.set("/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu", "1")])
	none := t.job_deny(one) with data.flowforge.config.resources.profiles.medium.extendedResources as {"nvidia.com/gpu": "1"}
	count(none) == 0
}

test_resource_claims_denied_unless_granted if {
	obj := t.job([
		t.set("/spec/template/spec/resourceClaims", [
			{"name": "gpu", "resourceClaimTemplateName": "a100"},
			{"name": "shared", "resourceClaimName": "someone-elses-gpu"},
		]),
		t.set("/spec/template/spec/containers/0/resources/claims", [{"name": "gpu"}]),
	])
	t.job_deny(obj) == {
		{
			"msg": "resource claim \"gpu\": the medium profile grants no ResourceClaimTemplate \"a100\" (granted: none)",
			"field": "spec.template.spec.resourceClaims[0].resourceClaimTemplateName",
		},
		{
			"msg": "resource claim \"shared\" names the ResourceClaim \"someone-elses-gpu\": only claims from the medium profile's templates (none) are allowed",
			"field": "spec.template.spec.resourceClaims[1].resourceClaimName",
		},
		{
			"msg": "container \"worker\": the medium profile grants no resource claims",
			"field": "spec.template.spec.containers[0].resources.claims[0]",
		},
	}
}

test_granted_resource_claim_admitted if {
	obj := t.job([
		t.set("/spec/template/spec/resourceClaims", [{"name": "gpu", "resourceClaimTemplateName": "a100"}]),
		t.set("/spec/template/spec/containers/0/resources/claims", [{"name": "gpu"}]),
	])
	denials := t.job_deny(obj) with data.flowforge.config.resources.profiles.medium.resourceClaimTemplates as ["a100"]
	count(denials) == 0
}

test_shown if {
	validate.shown("cpu", 1500) == "1500m"
	validate.shown("memory", 1048576000) == "1Mi"
	validate.shown("memory", 1000) == "1"
}
