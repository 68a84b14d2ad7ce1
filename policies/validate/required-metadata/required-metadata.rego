# Required labels.
#
# Denies an object without each label in config.requiredLabels (job-id,
# user-id), or with it empty (field metadata.labels[job-id]): the
# controller, the export and the per-job git credentials key on them.
#
# Warns when a Job has no repository annotation
# (config.annotations.repository): nothing breaks, but nobody can tell
# what the agent worked on.
#
# The required labels are a shape rule (violation, cached): they test only
# whether a value is there, which the masked views keep. The warning is an
# identity rule, evaluated on every request, so that identity_warning has a
# rule for validate.rego's union to read.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

violation contains {
	"msg": sprintf("label %s is required", [name]),
	"field": label_field(name),
} if {
	applies
	some name in config.requiredLabels
	object.get(k8s.labels, name, "") == ""
}

identity_warning contains {
	"msg": sprintf("the Job has no %s annotation: nothing records which repository it works on", [config.annotations.repository]),
	"field": annotation_field(config.annotations.repository),
} if {
	applies
	k8s.is_job
	object.get(k8s.annotations, config.annotations.repository, "") == ""
}
