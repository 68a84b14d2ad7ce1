# The pod's resources as a whole, as the scheduler sees them.
#
# A profile's `limits` bound each container (validate/resources); its `pod`
# entry bounds the pod: N containers no longer get N times the profile.
# The pod's value of a resource, for requests and for limits alike, is what
# k8s.io/component-helpers' PodRequests/PodLimits compute (the scheduler's
# view): the larger of
#   the sum over spec.containers plus every native sidecar (an init
#     container with restartPolicy Always, which runs beside them), and
#   for each init container in order, itself plus the sidecars started
#     before it;
# pod overhead (set by the RuntimeClass, not the user) is left out. The
# pod-level spec.resources, where set, is checked on its own too.
#
# Denies:
#   a pod total above the profile's pod maximum (field
#     <pod spec>.resources.<requests|limits>.<resource>, where a pod-level
#     value would go, or where it is);
#   an extended resource (anything but cpu, memory and ephemeral-storage:
#     GPUs, hugepages, vendor devices) the profile does not grant in
#     extendedResources (field containers[i].resources.limits.<name>), and a
#     granted one above the profile's pod maximum for it;
#   DRA claims: a pod resourceClaims entry that names a ResourceClaim
#     (shared with other pods) or a ResourceClaimTemplate outside the
#     profile's resourceClaimTemplates, and a container's resources.claims
#     when the profile grants none.
package flowforge.validate

import data.flowforge.lib.k8s
import data.flowforge.lib.quantity

pod_profile := data.flowforge.config.resources.profiles[profile_name]

standard_resources := {"cpu", "memory", "ephemeral-storage"}

# milli: a quantity in thousandths, as a whole number, so that sums of
# "100m" stay exact.
milli(q) := round(quantity.value(q) * 1000)

amount(c, kind, res) := milli(c.resources[kind][res])

amount(c, kind, res) := 0 if not c.resources[kind][res]

sidecar(c) if c.restartPolicy == "Always"

init_containers := object.get(k8s.pod_spec, "initContainers", [])

# sidecars_before(i, kind, res): the sidecars started before init container i.
sidecars_before(i, kind, res) := sum([amount(c, kind, res) | some j, c in init_containers; j < i; sidecar(c)])

running_total(kind, res) := sum([amount(c, kind, res) | some c in object.get(k8s.pod_spec, "containers", [])]) + sidecars_before(count(init_containers), kind, res)

init_totals(kind, res) := [(sidecars_before(i, kind, res) + amount(c, kind, res)) | some i, c in init_containers]

pod_total(kind, res) := max(array.concat([running_total(kind, res)], init_totals(kind, res)))

# resource_names: every resource a container or the pod names.
resource_names contains res if {
	some ctr in workload_containers
	some kind in ["requests", "limits"]
	some res, _ in object.get(ctr.container, ["resources", kind], {})
}

resource_names contains res if {
	some kind in ["requests", "limits"]
	some res, _ in object.get(k8s.pod_spec, ["resources", kind], {})
}

pod_maximum(res) := pod_profile.pod[res] if res in standard_resources

pod_maximum(res) := pod_profile.extendedResources[res] if not res in standard_resources

pod_resources_field(kind, res) := sprintf("%s.resources.%s.%s", [k8s.pod_field, kind, res])

# shown renders a number of thousandths for messages.
shown("cpu", m) := sprintf("%dm", [m])

shown(res, m) := sprintf("%dMi", [m / 1048576000]) if {
	res != "cpu"
	m % 1048576000 == 0
}

shown(res, m) := sprintf("%v", [m / 1000]) if {
	res != "cpu"
	m % 1048576000 != 0
}

violation contains {
	"msg": sprintf(
		"the pod's %s %s (its containers, init containers and sidecars, as the scheduler adds them up) is %s, above the %s profile's pod maximum %v",
		[res, kind, shown(res, total), profile_name, pod_maximum(res)],
	),
	"field": pod_resources_field(kind, res),
} if {
	applies
	some res in resource_names
	some kind in ["requests", "limits"]
	total := pod_total(kind, res)
	total > milli(pod_maximum(res))
}

violation contains {
	"msg": sprintf("the pod-level %s %s %v is above the %s profile's pod maximum %v", [res, kind, value, profile_name, pod_maximum(res)]),
	"field": pod_resources_field(kind, res),
} if {
	applies
	some kind in ["requests", "limits"]
	some res, value in object.get(k8s.pod_spec, ["resources", kind], {})
	not quantity.le(value, pod_maximum(res))
}

violation contains {
	"msg": sprintf("container %q: the %s profile grants no %s (extended resources it grants: %s)", [ctr.name, profile_name, res, granted_extended]),
	"field": sprintf("%s.resources.%s.%s", [ctr.field, kind, res]),
} if {
	applies
	some ctr in workload_containers
	some kind in ["requests", "limits"]
	some res, _ in object.get(ctr.container, ["resources", kind], {})
	not res in standard_resources
	not pod_profile.extendedResources[res]
}

violation contains {
	"msg": sprintf("the %s profile grants no %s (extended resources it grants: %s)", [profile_name, res, granted_extended]),
	"field": pod_resources_field(kind, res),
} if {
	applies
	some kind in ["requests", "limits"]
	some res, _ in object.get(k8s.pod_spec, ["resources", kind], {})
	not res in standard_resources
	not pod_profile.extendedResources[res]
}

granted_extended := joined(sort(object.keys(pod_profile.extendedResources))) if count(pod_profile.extendedResources) > 0

granted_extended := "none" if count(pod_profile.extendedResources) == 0

granted_claims := joined(pod_profile.resourceClaimTemplates) if count(pod_profile.resourceClaimTemplates) > 0

granted_claims := "none" if count(pod_profile.resourceClaimTemplates) == 0

violation contains {
	"msg": sprintf("resource claim %q names the ResourceClaim %q: only claims from the %s profile's templates (%s) are allowed", [object.get(claim, "name", ""), claim.resourceClaimName, profile_name, granted_claims]),
	"field": sprintf("%s.resourceClaims[%d].resourceClaimName", [k8s.pod_field, i]),
} if {
	applies
	some i, claim in object.get(k8s.pod_spec, "resourceClaims", [])
	object.get(claim, "resourceClaimName", "") != ""
}

violation contains {
	"msg": sprintf("resource claim %q: the %s profile grants no ResourceClaimTemplate %q (granted: %s)", [object.get(claim, "name", ""), profile_name, template, granted_claims]),
	"field": sprintf("%s.resourceClaims[%d].resourceClaimTemplateName", [k8s.pod_field, i]),
} if {
	applies
	some i, claim in object.get(k8s.pod_spec, "resourceClaims", [])
	template := object.get(claim, "resourceClaimTemplateName", "")
	template != ""
	not template in pod_profile.resourceClaimTemplates
}

violation contains {
	"msg": sprintf("container %q: the %s profile grants no resource claims", [ctr.name, profile_name]),
	"field": sprintf("%s.resources.claims[%d]", [ctr.field, j]),
} if {
	applies
	count(pod_profile.resourceClaimTemplates) == 0
	some ctr in workload_containers
	some j, _ in object.get(ctr.container, ["resources", "claims"], [])
}
