# METADATA
# title: FlowForge validation
# description: |
#   data.flowforge.validate.deny is the set of reasons a Job or Pod is
#   refused, each {"msg": string, "field": string}; field is a kubectl-style
#   path such as spec.template.spec.containers[0].securityContext.privileged.
#   data.flowforge.validate.warn has the same shape and never blocks.
#
#   The mutating webhooks run first, so a Job or a labelled Pod is validated
#   as hardened (a Pod by the pod-level rules, see mutate/pod-lifecycle).
#
#   Each folder under validate/ adds to the partial sets:
#     violation         what is wrong with the object's shape (read on
#                       the masked view: never compares a masked value)
#     warning           what is worth knowing but must not block
#     identity_violation, identity_warning
#                       the same, for rules that compare the object's
#                       identity (ids, names, secret names, requester)
#     update_violation  UPDATE only: what the change from the old object to
#                       the new one weakens
#     connect_violation CONNECT only (pods/exec, ...): see interactive-access/
#
#   CREATE denies every violation and identity_violation. UPDATE ratchets: it denies only the
#   violations the old object did not already have, plus update_violation.
#   An object admitted under an older policy stays updatable (a controller
#   removing a finalizer, say), and no update can add a weakness.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

# workload: the kinds FlowForge validates; every other kind yields nothing.
workload if k8s.is_job

workload if k8s.is_pod

# applies: a labelled Job or Pod. Rules about the object's contents use
# this; only the managed-namespace rule looks at unlabelled objects.
applies if {
	workload
	k8s.selected
}

# The decision is served as two queries (see docs/policies.md, "Identity
# and shape"):
#   shape_deny, shape_warn       CREATE's violations and warnings that
#                                depend only on the object's shape; the
#                                engine caches them, keyed on the masked
#                                views of data.flowforge.config.cache.
#   identity_deny, identity_warn the rules that compare this object's
#                                identity (identity_violation,
#                                identity_warning: its ids, names, secret
#                                names, requester, namespace), and every
#                                UPDATE and CONNECT: evaluated on every
#                                request, never cached.
# deny and warn are their union, what the webhook answers.
deny contains v if some v in shape_deny

deny contains v if some v in identity_deny

warn contains w if some w in shape_warn

warn contains w if some w in identity_warn

shape_deny contains v if {
	k8s.operation == "CREATE"
	some v in violation
}

shape_warn contains w if {
	k8s.operation == "CREATE"
	some w in warning
}

# identity_deny and identity_warn run on every request. Their bodies test
# input.request.operation itself, not k8s.operation, so that OPA's rule
# index picks the operation's bodies without evaluating the others.
identity_deny contains v if {
	input.request.operation == "CREATE"
	some v in identity_violation
}

identity_deny contains v if {
	input.request.operation == "UPDATE"
	some v in (all_violations - old_violations)
}

identity_deny contains v if {
	input.request.operation == "UPDATE"
	some v in update_violation
}

# CONNECT (pods/exec, attach, portforward, proxy) has rules of its own
# (interactive-access/): the object rules never see a connect request.
identity_deny contains v if {
	input.request.operation == "CONNECT"
	some v in connect_violation
}

identity_warn contains w if {
	input.request.operation == "CREATE"
	some w in identity_warning
}

identity_warn contains w if {
	input.request.operation == "UPDATE"
	some w in (all_warnings - old_warnings)
}

all_violations := violation | identity_violation

all_warnings := warning | identity_warning

# The old object's violations and warnings: the same rules, evaluated with
# the old object in place of the new one.
has_old_object if is_object(k8s.old_obj)

old_violations := v if {
	has_old_object
	v := all_violations with input.request.object as input.request.oldObject
}

old_violations := set() if not has_old_object

old_warnings := w if {
	has_old_object
	w := all_warnings with input.request.object as input.request.oldObject
}

old_warnings := set() if not has_old_object

# Helpers shared by the rule folders.

# pod_meta_field renders the pod metadata's path for messages.
pod_meta_field := "spec.template.metadata" if k8s.is_job

pod_meta_field := "metadata" if k8s.is_pod

pod_annotations := object.get(k8s.obj, array.concat(k8s.pod_meta_path, ["annotations"]), {})

pod_security_context := object.get(k8s.pod_spec, "securityContext", {})

security_context(ctr) := object.get(ctr.container, "securityContext", {})

# workload_containers: the containers a pod runs as its workload (ephemeral
# containers are denied on their own).
workload_containers contains ctr if {
	some ctr in k8s.containers
	ctr.kind != "ephemeralContainers"
}

# joined renders ["a", "b"] as "a, b" for messages.
joined(values) := concat(", ", [sprintf("%v", [v]) | some v in values])

annotation_field(key) := k8s.label_field("annotations", key)

label_field(key) := k8s.label_field("labels", key)

# The configured annotation names.
profile_annotation := config.annotations.profile

timeout_annotation := config.annotations.timeout
