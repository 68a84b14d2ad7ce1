# Resource requests and limits.
#
# Every container gets cpu, memory and ephemeral-storage requests and
# limits from the Job's resource profile (annotation flowforge.io/profile,
# else the default profile): the agent's container (the first of
# spec.containers) the profile's requests and limits, every other container
# (init containers, native sidecars, further containers) the profile's
# helper sizes, so that a pod with sidecars stays within the profile's pod
# maximum (validate/pod-resources). A user's own values are kept; values
# above the profile's limits are denied by validation, not clamped.
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

# sizing: the defaults of one container.
sizing(ctr) := profile if agent_container(ctr)

sizing(ctr) := profile.helper if not agent_container(ctr)

agent_container(ctr) if {
	ctr.kind == "containers"
	ctr.index == 0
}

# A request above the profile's limit gets no default limit: the API server
# would refuse a limit below the request with a message about a field the
# user never set, while validation names the request itself. A request
# above the container's default limit (a helper's) but within the profile
# gets itself as the limit.
patch contains {"setting": sprintf("resources.limits.%s", [res]), "op": "default", "path": array.concat(ctr.path, ["resources", "limits", res]), "value": default_limit(ctr, res)} if {
	applies
	some ctr in workload_containers
	some res in resource_names
}

default_limit(ctr, res) := sizing(ctr).limits[res] if not ctr.container.resources.requests[res]

default_limit(ctr, res) := sizing(ctr).limits[res] if {
	quantity.le(ctr.container.resources.requests[res], sizing(ctr).limits[res])
}

default_limit(ctr, res) := request if {
	request := ctr.container.resources.requests[res]
	not quantity.le(request, sizing(ctr).limits[res])
	quantity.le(request, profile.limits[res])
}

# The default request is the container's sizing, and never more than the
# container's own limit.
patch contains {"setting": sprintf("resources.requests.%s", [res]), "op": "default", "path": array.concat(ctr.path, ["resources", "requests", res]), "value": sizing(ctr).requests[res]} if {
	applies
	some ctr in workload_containers
	some res in resource_names
	not ctr.container.resources.limits[res]
}

patch contains {"setting": sprintf("resources.requests.%s", [res]), "op": "default", "path": array.concat(ctr.path, ["resources", "requests", res]), "value": quantity.min(sizing(ctr).requests[res], limit)} if {
	applies
	some ctr in workload_containers
	some res in resource_names
	limit := ctr.container.resources.limits[res]
}
