# Placement: a labelled pod runs in the sandbox pool, where the scheduler
# puts it.
#
# Denies, on a Job's pod template or a Pod (field under spec):
#   nodeName: it binds the pod to a node without the scheduler, so neither
#     the sandbox node selector nor the taints are checked (on a direct Pod
#     the API server rejects it for a pod bound by the scheduler only on
#     UPDATE; on CREATE it is the caller's choice, and ours to refuse);
#   schedulerName outside config.scheduling.allowedSchedulers: another
#     scheduler need not honour the node selector;
#   a toleration wider than each of config.scheduling.tolerations and
#     config.scheduling.allowedTolerations (another key, Exists where the
#     entry is Equal, another value, or another or no effect where the
#     entry names one): above all an Exists toleration without a key (it
#     tolerates every taint, NoExecute ones too);
#   a node selector without the sandbox entries, or with another value for
#     them (the mutation merges them into every Job, so only a Pod created
#     directly can lack them);
#   required node affinity that contradicts the sandbox node selector
#     (a term that excludes the sandbox value of its key: NotIn it,
#     DoesNotExist, In without it, Gt/Lt) or that names nodes with
#     matchFields (a chosen node, for example next to a victim).
# Preferred affinity only weighs nodes the selector already allows, and
# is left alone.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

scheduling := config.scheduling

violation contains {
	"msg": sprintf("nodeName %q binds the pod to a node without the scheduler; the sandbox pool is chosen by the node selector", [k8s.pod_spec.nodeName]),
	"field": sprintf("%s.nodeName", [k8s.pod_field]),
} if {
	applies
	object.get(k8s.pod_spec, "nodeName", "") != ""
}

violation contains {
	"msg": sprintf("schedulerName %q is not allowed (allowed: %s)", [name, joined(scheduling.allowedSchedulers)]),
	"field": sprintf("%s.schedulerName", [k8s.pod_field]),
} if {
	applies
	name := object.get(k8s.pod_spec, "schedulerName", "")
	name != ""
	not name in scheduling.allowedSchedulers
}

# toleration_key: a toleration as the scheduler reads it (operator Equal
# and empty value and effect when unset); tolerationSeconds does not widen
# what is tolerated.
toleration_key(tol) := {
	"key": object.get(tol, "key", ""),
	"operator": object.get(tol, "operator", "Equal"),
	"value": object.get(tol, "value", ""),
	"effect": object.get(tol, "effect", ""),
}

allowed_toleration_keys contains toleration_key(tol) if {
	some tol in array.concat(scheduling.tolerations, scheduling.allowedTolerations)
}

# within(tol, allowed): every taint tol tolerates, allowed tolerates too.
within(tol, allowed) if {
	tol.key == allowed.key
	tolerated_values(tol, allowed)
	allowed.effect in {"", tol.effect}
}

tolerated_values(_, allowed) if allowed.operator == "Exists"

tolerated_values(tol, allowed) if {
	allowed.operator == "Equal"
	tol.operator == "Equal"
	tol.value == allowed.value
}

allowed_toleration(tol) if {
	some allowed in allowed_toleration_keys
	within(toleration_key(tol), allowed)
}

violation contains {
	"msg": sprintf("toleration %s tolerates every taint: name the taint's key and effect", [json.marshal(tol)]),
	"field": sprintf("%s.tolerations[%d]", [k8s.pod_field, i]),
} if {
	applies
	some i, tol in object.get(k8s.pod_spec, "tolerations", [])
	toleration_key(tol).key == ""
}

violation contains {
	"msg": sprintf("toleration %s is not allowed: a pod tolerates only the sandbox taint and %s", [json.marshal(tol), joined([k.key | some k in scheduling.allowedTolerations])]),
	"field": sprintf("%s.tolerations[%d]", [k8s.pod_field, i]),
} if {
	applies
	some i, tol in object.get(k8s.pod_spec, "tolerations", [])
	toleration_key(tol).key != ""
	not allowed_toleration(tol)
}

violation contains {
	"msg": sprintf("the node selector must keep %s=%s (the sandbox pool)", [key, value]),
	"field": sprintf("%s.nodeSelector[%s]", [k8s.pod_field, key]),
} if {
	applies
	some key, value in scheduling.nodeSelector
	object.get(k8s.pod_spec, ["nodeSelector", key], null) != value
}

required_terms contains [i, term] if {
	some i, term in object.get(k8s.pod_spec, ["affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"], [])
}

affinity_field := sprintf("%s.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms", [k8s.pod_field])

# excludes(expr, value): a node whose label has the value does not match.
excludes(expr, value) if {
	expr.operator == "In"
	not value in object.get(expr, "values", [])
}

excludes(expr, value) if {
	expr.operator == "NotIn"
	value in object.get(expr, "values", [])
}

excludes(expr, _) if expr.operator in {"DoesNotExist", "Gt", "Lt"}

violation contains {
	"msg": sprintf("node affinity %s %s contradicts the sandbox node selector %s=%s", [expr.key, expr.operator, expr.key, scheduling.nodeSelector[expr.key]]),
	"field": sprintf("%s[%d].matchExpressions[%d]", [affinity_field, i, j]),
} if {
	applies
	some [i, term] in required_terms
	some j, expr in object.get(term, "matchExpressions", [])
	excludes(expr, scheduling.nodeSelector[expr.key])
}

violation contains {
	"msg": "node affinity must not name nodes (matchFields): the scheduler picks a node in the sandbox pool",
	"field": sprintf("%s[%d].matchFields[%d]", [affinity_field, i, j]),
} if {
	applies
	some [i, term] in required_terms
	some j, _ in object.get(term, "matchFields", [])
}
