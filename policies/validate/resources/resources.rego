# Resource limits.
#
# The resource profile is the object's profile annotation
# (config.annotations.profile; the mutation copies a Job's onto its pod
# template, so pods carry it), else config.resources.defaultProfile.
# Denies:
#   an unknown profile name (field metadata.annotations[flowforge.io/profile]);
#     limits are then checked against the default profile, as the mutation
#     sized them;
#   a workload container without a cpu, memory or ephemeral-storage limit
#     (field containers[i].resources.limits.cpu): the mutation sets them on
#     every Job, so only a Pod created directly can lack one;
#   a limit or request above the profile's limit (field
#     containers[i].resources.requests.memory): values are not clamped, so
#     nobody gets less than they asked for without being told.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s
import data.flowforge.lib.quantity

limited_resources := ["cpu", "memory", "ephemeral-storage"]

requested_profile := object.get(k8s.annotations, profile_annotation, config.resources.defaultProfile)

profile_name := requested_profile if config.resources.profiles[requested_profile]

profile_name := config.resources.defaultProfile if not config.resources.profiles[requested_profile]

profile_limits := config.resources.profiles[profile_name].limits

violation contains {
	"msg": sprintf("unknown resource profile %q (profiles: %s)", [requested_profile, joined(sort(object.keys(config.resources.profiles)))]),
	"field": annotation_field(profile_annotation),
} if {
	applies
	not config.resources.profiles[requested_profile]
}

violation contains {
	"msg": sprintf("container %q has no %s limit", [ctr.name, res]),
	"field": sprintf("%s.resources.limits.%s", [ctr.field, res]),
} if {
	applies
	some ctr in workload_containers
	some res in limited_resources
	object.get(ctr.container, ["resources", "limits", res], null) == null
}

violation contains {
	"msg": sprintf("container %q: %s %s %v is above the %s profile's limit %v", [ctr.name, res, kind, amount, profile_name, profile_limits[res]]),
	"field": sprintf("%s.resources.%s.%s", [ctr.field, kind, res]),
} if {
	applies
	some ctr in workload_containers
	some kind in ["limits", "requests"]
	some res in limited_resources
	amount := ctr.container.resources[kind][res]
	not quantity.le(amount, profile_limits[res])
}
