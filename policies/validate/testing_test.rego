# Helpers for the validation tests: evaluate deny and warn for an object,
# and build variations of the hardened fixtures with JSON patches.
package flowforge.validate.testing

import data.flowforge.lib.fixtures
import data.flowforge.validate

job_deny(obj) := r if {
	r := validate.deny with input as fixtures.job_input(obj)
}

job_deny_in(obj, namespace_labels) := r if {
	r := validate.deny with input as fixtures.job_input_in(obj, namespace_labels)
}

job_warn(obj) := r if {
	r := validate.warn with input as fixtures.job_input(obj)
}

pod_deny(obj) := r if {
	r := validate.deny with input as fixtures.pod_input(obj)
}

pod_deny_in(obj, namespace_labels) := r if {
	r := validate.deny with input as fixtures.pod_input_in(obj, namespace_labels)
}

pod_warn(obj) := r if {
	r := validate.warn with input as fixtures.pod_input(obj)
}

job_update_deny(old, new) := r if {
	r := validate.deny with input as fixtures.job_update_input(old, new)
}

job_update_warn(old, new) := r if {
	r := validate.warn with input as fixtures.job_update_input(old, new)
}

pod_update_deny(old, new, subresource) := r if {
	r := validate.deny with input as fixtures.pod_update_input(old, new, subresource)
}

fields(results) := {r.field | some r in results}

# job and pod: the hardened fixtures with JSON patch operations applied.
job(ops) := json.patch(fixtures.hardened_job, ops)

pod(ops) := json.patch(fixtures.pod, ops)

# Shorthands for JSON patch operations.
set(path, value) := {"op": "add", "path": path, "value": value}

remove(path) := {"op": "remove", "path": path}

# container: a further hardened container (an init container, a sidecar, a
# second container): the worker container with the medium profile's helper
# sizes, as the mutation leaves it, deep-merged with overrides.
container(overrides) := object.union(
	object.union(fixtures.hardened_job.spec.template.spec.containers[0], {"resources": helper_resources}),
	overrides,
)

helper_resources := {
	"limits": {"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "1Gi"},
	"requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "128Mi"},
}
