# The exported label: only the FlowForge controller sets it.
#
# With config.export.enabled, the controller labels a Job and its pods with
# config.export.exportedLabel once the Job is exported and every pod has
# ended (its value: the Job's phase and the Unix time it finished). Its
# cache leaves such objects out, so that finished Jobs cost it nothing
# while they wait for their TTL, and it deletes them at the end of their
# TTL from a list of the labelled ones. The label must therefore be the
# controller's word: an object that carried it otherwise would be hidden
# from the controller before its export. Denies:
#   CREATE of a Job or Pod with the label, or of a Job whose pod template
#     has it (its pods would be created with it), whoever asks: nothing is
#     exported before it exists (CREATE only, so it never counts against
#     the controller's UPDATE; a shape rule, cached: it reads no value that
#     names the Job);
#   UPDATE that adds, changes or removes the label, unless the requester is
#     one of config.export.controllers (users or groups); field
#     metadata.labels[<label>];
#   UPDATE that adds, changes or removes it in a Job's pod template
#     (mutable while the Job is suspended), whoever asks.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.identity
import data.flowforge.lib.k8s

exported_label := config.export.exportedLabel

exported_template_labels(obj) := object.get(obj, ["spec", "template", "metadata", "labels"], {})

exported_refusal := sprintf("the label %s is set by the FlowForge controller once the Job is exported; it cannot be set on create", [exported_label])

violation contains {"msg": exported_refusal, "field": label_field(exported_label)} if {
	config.export.enabled
	_ = k8s.labels[exported_label]
	applies
	k8s.operation == "CREATE"
}

violation contains {"msg": exported_refusal, "field": sprintf("spec.template.metadata.labels[%s]", [exported_label])} if {
	config.export.enabled
	k8s.is_job
	_ = exported_template_labels(k8s.obj)[exported_label]
	applies
	k8s.operation == "CREATE"
}

update_violation contains {
	"msg": sprintf("only the FlowForge controller (policy data export.controllers) may set, change or remove the label %s", [exported_label]),
	"field": label_field(exported_label),
} if {
	update_applies
	config.export.enabled
	object.get(k8s.labels, exported_label, null) != object.get(old_labels, exported_label, null)
	not identity.member(config.export.controllers)
}

update_violation contains {
	"msg": sprintf("the label %s cannot be set, changed or removed in the pod template", [exported_label]),
	"field": sprintf("spec.template.metadata.labels[%s]", [exported_label]),
} if {
	update_applies
	config.export.enabled
	k8s.is_job
	object.get(exported_template_labels(k8s.obj), exported_label, null) != object.get(exported_template_labels(k8s.old_obj), exported_label, null)
}
