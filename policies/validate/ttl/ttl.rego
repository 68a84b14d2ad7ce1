# TTL after finishing, when FlowForge deletes finished Jobs itself.
#
# Jobs only, with config.export.enabled. The mutation records the TTL in
# the annotation config.annotations.ttlSecondsAfterFinished and removes
# spec.ttlSecondsAfterFinished, so that the built-in TTL controller never
# deletes a Job (and so its pods' logs, on the node) before the FlowForge
# controller has exported it. Denies:
#   the annotation when it is not a whole number of seconds, or above
#     config.job.ttlSecondsAfterFinished.max (CREATE and UPDATE; field
#     metadata.annotations[flowforge.io/ttl-seconds-after-finished]);
#   spec.ttlSecondsAfterFinished on CREATE: the mutation always moves it,
#     so its presence means the mutation did not run.
# Setting spec.ttlSecondsAfterFinished on a later UPDATE, and raising or
# removing the annotation, are update_violations (validate/update).
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

ttl_annotation := config.annotations.ttlSecondsAfterFinished

max_ttl := config.job.ttlSecondsAfterFinished.max

violation contains {
	"msg": sprintf("%q is not a whole number of seconds (at most %d)", [raw, max_ttl]),
	"field": annotation_field(ttl_annotation),
} if {
	applies
	k8s.is_job
	config.export.enabled
	raw := k8s.annotations[ttl_annotation]
	not regex.match(`^[0-9]+$`, raw)
}

violation contains {
	"msg": sprintf("%s seconds is above the maximum of %d", [raw, max_ttl]),
	"field": annotation_field(ttl_annotation),
} if {
	applies
	k8s.is_job
	config.export.enabled
	raw := k8s.annotations[ttl_annotation]
	regex.match(`^[0-9]+$`, raw)
	to_number(raw) > max_ttl
}

violation contains {
	"msg": sprintf("spec.ttlSecondsAfterFinished is not allowed: FlowForge deletes a finished Job itself once its logs are exported; set the annotation %s (seconds, at most %d) instead", [ttl_annotation, max_ttl]),
	"field": "spec.ttlSecondsAfterFinished",
} if {
	applies
	k8s.is_job
	k8s.operation == "CREATE"
	config.export.enabled
	"ttlSecondsAfterFinished" in object.keys(object.get(k8s.obj, "spec", {}))
}
