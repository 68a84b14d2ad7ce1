# METADATA
# title: FlowForge hardening (mutation)
# description: |
#   data.flowforge.mutate.patch is the set of settings a Job or Pod labelled
#   app=flowforge must have. Rego decides what; the Go engine applies the
#   set to the Job with the operation each entry names, in a fixed order,
#   and answers the API server with a JSON patch. Applying the result a
#   second time changes nothing.
#
#   Each entry is an object:
#     setting  stable name, used for the flowforge_mutations_total metric
#     op       "set"      the value is enforced
#              "default"  the value is set only where the path is absent
#              "merge"    object: the policy's keys are set, other keys kept
#              "union"    array: each element is appended unless present
#              "add"      array of objects: the value is appended unless an
#                         element has the same value at "key"
#              "remove"   the object key at the path is deleted where it is
#                         present (no value; nothing is created); no other
#                         entry may write that path or inside it
#              "copy"     object: merges the entries of the object at
#                         "from" (as admitted) whose keys the value lists;
#                         the decision names keys, never this Job's values
#     path     JSON path from the Job's root: strings and array indexes
#     value    the value (none for "remove"; the keys for "copy")
#     key      for "add": the field that identifies an element
#     from     for "copy": the JSON path of the source object
#
#   Explicitly unsafe user values (privileged: true, runAsUser: 0, an
#   Unconfined profile, a forbidden capability) are left as they are: the
#   validating policy denies them with their field path, rather than the
#   mutation quietly turning them into something the user did not ask for.
package flowforge.mutate

import data.flowforge.lib.k8s

# applies: labelled Jobs and labelled Pods, on CREATE. The pod-level rules
# (pod/, containers/, volumes/, resources/, scheduling/) use it and harden a
# Job's pod template and a Pod's spec alike (k8s.pod_path), so a Pod that no
# hardened Job created (a bare Pod, a ReplicaSet's, a StatefulSet's) gets the
# same hardening. Rules about the Job object itself use applies_job, rules
# only for Pods applies_pod.
applies if {
	hardened_kind
	k8s.selected
	k8s.operation == "CREATE"
}

hardened_kind if k8s.is_job

hardened_kind if k8s.is_pod

# applies_job: labelled Jobs on CREATE (the Job's own fields: deadline, TTL,
# retries, finalizers).
applies_job if {
	applies
	k8s.is_job
}

# applies_pod: labelled Pods on CREATE (see pod-lifecycle/).
applies_pod if {
	applies
	k8s.is_pod
}

# Constructors of the entries, for the tests. The patch rules write their
# objects out literally: in OPA a function call per entry costs more than
# building the whole entry.
set_op(setting, path, value) := {"setting": setting, "op": "set", "path": path, "value": value}

default_op(setting, path, value) := {"setting": setting, "op": "default", "path": path, "value": value}

merge_op(setting, path, value) := {"setting": setting, "op": "merge", "path": path, "value": value}

union_op(setting, path, value) := {"setting": setting, "op": "union", "path": path, "value": value}

add_op(setting, path, key, value) := {"setting": setting, "op": "add", "path": path, "key": key, "value": value}

# workload_containers: the containers a Job's pods run (ephemeral containers
# are added to running pods, never through a Job).
workload_containers contains ctr if {
	some ctr in k8s.containers
	ctr.kind != "ephemeralContainers"
}
