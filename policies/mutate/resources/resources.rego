# Resource requests and limits.
#
# Every container gets cpu, memory and ephemeral-storage requests and
# limits from the Job's resource profile (annotation flowforge.io/profile,
# else the default profile). A user's own values are kept; values above the
# profile's limits are denied by validation, not clamped.
package flowforge.mutate

import data.flowforge.config
import data.flowforge.lib.k8s
import data.flowforge.lib.quantity

resource_names := ["cpu", "memory", "ephemeral-storage"]

requested_profile := object.get(k8s.annotations, config.annotations.profile, config.resources.defaultProfile)

# profile_name: the requested profile if it exists, else the default (an
# unknown profile is also denied by validation).
profile_name := requested_profile if config.resources.profiles[requested_profile]

profile_name := config.resources.defaultProfile if not config.resources.profiles[requested_profile]

profile := config.resources.profiles[profile_name]

# A request above the profile's limit gets no default limit: the API server
# would refuse a limit below the request with a message about a field the
# user never set, while validation names the request itself.
patch contains {"setting": sprintf("resources.limits.%s", [res]), "op": "default", "path": array.concat(ctr.path, ["resources", "limits", res]), "value": profile.limits[res]} if {
	applies
	some ctr in workload_containers
	some res in resource_names
	not ctr.container.resources.requests[res]
}

patch contains {"setting": sprintf("resources.limits.%s", [res]), "op": "default", "path": array.concat(ctr.path, ["resources", "limits", res]), "value": profile.limits[res]} if {
	applies
	some ctr in workload_containers
	some res in resource_names
	units.parse(ctr.container.resources.requests[res]) <= units.parse(profile.limits[res])
}

# The default request is the profile's, and never more than the
# container's own limit.
patch contains {"setting": sprintf("resources.requests.%s", [res]), "op": "default", "path": array.concat(ctr.path, ["resources", "requests", res]), "value": profile.requests[res]} if {
	applies
	some ctr in workload_containers
	some res in resource_names
	not ctr.container.resources.limits[res]
}

patch contains {"setting": sprintf("resources.requests.%s", [res]), "op": "default", "path": array.concat(ctr.path, ["resources", "requests", res]), "value": quantity.min(profile.requests[res], limit)} if {
	applies
	some ctr in workload_containers
	some res in resource_names
	limit := ctr.container.resources.limits[res]
}
