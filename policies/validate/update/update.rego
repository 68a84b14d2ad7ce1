# Updates that weaken an admitted object (update_violation).
#
# UPDATE only, for a Job or Pod whose old version carried the selector
# label; compares the old object with the new one. Denies:
#   removing or changing the app=flowforge label (field metadata.labels[app]),
#     which would take the object out of FlowForge's hands;
#   changing or removing a required label (job-id, user-id) that was set;
#   removing or changing the policy-revision annotation;
#   raising or removing spec.activeDeadlineSeconds, spec.ttlSecondsAfterFinished
#     or spec.backoffLimit (lowering is allowed: the controller lowers the
#     deadline to cancel a Job);
#   with the export on: setting spec.ttlSecondsAfterFinished on a Job that
#     had none (the built-in TTL controller would delete the Job, and its
#     pods' logs, before the export; a Job admitted before FlowForge owned
#     deletion keeps its value and may lower it), and raising or removing
#     the TTL annotation (config.annotations.ttlSecondsAfterFinished);
#   changing a hardened pod field the old object had (runtimeClassName,
#     securityContext, automountServiceAccountToken, priorityClassName), a
#     node-selector entry removed or changed, a toleration removed, a
#     container's securityContext or resources changed (containers are
#     matched by kind and name).
# Anything else may change: finalizers (the controller removes its export
# finalizer), annotations (a cancel request), a lower deadline or TTL,
# suspend.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

old_labels := object.get(k8s.old_obj, ["metadata", "labels"], {})

old_annotations := object.get(k8s.old_obj, ["metadata", "annotations"], {})

old_pod_spec := object.get(k8s.old_obj, k8s.pod_path, {})

update_applies if {
	k8s.operation == "UPDATE"
	workload
	has_old_object
	old_labels[config.selector.label] == config.selector.value
}

update_violation contains {
	"msg": sprintf("the label %s=%s cannot be removed or changed", [config.selector.label, config.selector.value]),
	"field": label_field(config.selector.label),
} if {
	update_applies
	not k8s.selected
}

update_violation contains {
	"msg": sprintf("the label %s cannot be removed or changed (it was %q)", [name, old]),
	"field": label_field(name),
} if {
	update_applies
	some name in config.requiredLabels
	old := old_labels[name]
	object.get(k8s.labels, name, null) != old
}

update_violation contains {
	"msg": sprintf("the annotation %s records the policy that hardened this object and cannot be removed or changed", [key]),
	"field": annotation_field(key),
} if {
	update_applies
	key := config.annotations.policyRevision
	old := old_annotations[key]
	object.get(k8s.annotations, key, null) != old
}

# Limits that an update may lower but not raise or remove.
lowerable := ["activeDeadlineSeconds", "ttlSecondsAfterFinished", "backoffLimit"]

update_violation contains {
	"msg": sprintf("spec.%s cannot be removed (it was %v)", [name, old]),
	"field": sprintf("spec.%s", [name]),
} if {
	update_applies
	some name in lowerable
	old := k8s.old_obj.spec[name]
	object.get(k8s.obj, ["spec", name], null) == null
}

update_violation contains {
	"msg": sprintf("spec.%s cannot be raised from %v to %v, only lowered", [name, old, new]),
	"field": sprintf("spec.%s", [name]),
} if {
	update_applies
	some name in lowerable
	old := k8s.old_obj.spec[name]
	new := k8s.obj.spec[name]
	new > old
}

update_violation contains {
	"msg": sprintf("spec.ttlSecondsAfterFinished cannot be set: FlowForge deletes a finished Job itself once its logs are exported; lower the annotation %s instead", [config.annotations.ttlSecondsAfterFinished]),
	"field": "spec.ttlSecondsAfterFinished",
} if {
	update_applies
	config.export.enabled
	not "ttlSecondsAfterFinished" in object.keys(object.get(k8s.old_obj, "spec", {}))
	"ttlSecondsAfterFinished" in object.keys(object.get(k8s.obj, "spec", {}))
}

update_violation contains {
	"msg": sprintf("the annotation %s cannot be removed (it was %q)", [key, old]),
	"field": annotation_field(key),
} if {
	update_applies
	key := config.annotations.ttlSecondsAfterFinished
	old := old_annotations[key]
	not k8s.annotations[key]
}

update_violation contains {
	"msg": sprintf("the annotation %s cannot be raised from %s to %s, only lowered", [key, old, new]),
	"field": annotation_field(key),
} if {
	update_applies
	key := config.annotations.ttlSecondsAfterFinished
	old := old_annotations[key]
	new := k8s.annotations[key]
	regex.match(`^[0-9]+$`, old)
	regex.match(`^[0-9]+$`, new)
	to_number(new) > to_number(old)
}

hardened_pod_fields := ["runtimeClassName", "securityContext", "automountServiceAccountToken", "priorityClassName"]

update_violation contains {
	"msg": sprintf("%s was hardened and cannot be changed", [name]),
	"field": sprintf("%s.%s", [k8s.pod_field, name]),
} if {
	update_applies
	some name in hardened_pod_fields
	old := old_pod_spec[name]
	object.get(k8s.pod_spec, name, null) != old
}

update_violation contains {
	"msg": sprintf("the node selector %s=%s cannot be removed or changed", [key, old]),
	"field": sprintf("%s.nodeSelector[%s]", [k8s.pod_field, key]),
} if {
	update_applies
	some key, old in object.get(old_pod_spec, "nodeSelector", {})
	object.get(k8s.pod_spec, ["nodeSelector", key], null) != old
}

update_violation contains {
	"msg": sprintf("the toleration for %q cannot be removed", [object.get(toleration, "key", "")]),
	"field": sprintf("%s.tolerations", [k8s.pod_field]),
} if {
	update_applies
	some toleration in object.get(old_pod_spec, "tolerations", [])
	not toleration in object.get(k8s.pod_spec, "tolerations", [])
}

update_violation contains {
	"msg": sprintf("container %q: %s was hardened and cannot be changed", [ctr.name, part]),
	"field": sprintf("%s.%s", [ctr.field, part]),
} if {
	update_applies
	some ctr in k8s.containers
	some old_ctr in object.get(old_pod_spec, ctr.kind, [])
	old_ctr.name == ctr.name
	some part in ["securityContext", "resources"]
	old := old_ctr[part]
	object.get(ctr.container, part, null) != old
}
