# CronJobs.
#
# FlowForge Jobs are one-shot: a job-id names one Job (identity/), and its
# user-id names the requester who created it. A CronJob breaks both: the
# cronjob controller creates every Job, as itself, under the one job-id its
# template carries. So FlowForge refuses CronJobs up front, when they are
# written, rather than letting each scheduled Job be refused later:
#   - a CronJob whose jobTemplate or whose own metadata carries the selector
#     label (its Jobs would be FlowForge Jobs);
#   - any CronJob in a managed namespace (its Jobs would have to be FlowForge
#     Jobs there, see managed-namespace/).
# Recurring agent work is submitted by a trusted submitter (the backend),
# which gives each run its own job-id. UPDATE ratchets like every rule, so a
# CronJob admitted before this rule can still be suspended or deleted.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

is_cronjob if k8s.kind == "CronJob"

cronjob_template_labels := object.get(k8s.obj, ["spec", "jobTemplate", "metadata", "labels"], {})

cronjob_template_selected if cronjob_template_labels[config.selector.label] == config.selector.value

cronjob_reason := "FlowForge Jobs are one-shot: a job-id names one Job created by its owner, and a CronJob's Jobs all share its template's job-id and are created by the cronjob controller; submit each run as its own Job through a trusted submitter instead"

violation contains {
	"msg": sprintf("a CronJob may not create FlowForge Jobs (label %s=%s): %s", [config.selector.label, config.selector.value, cronjob_reason]),
	"field": sprintf("spec.jobTemplate.metadata.labels[%s]", [config.selector.label]),
} if {
	is_cronjob
	cronjob_template_selected
}

violation contains {
	"msg": sprintf("a CronJob labelled %s=%s is a FlowForge CronJob, which is not allowed: %s", [config.selector.label, config.selector.value, cronjob_reason]),
	"field": label_field(config.selector.label),
} if {
	is_cronjob
	k8s.selected
}

violation contains {
	"msg": sprintf("CronJobs are not allowed in a FlowForge namespace (%s=%s): %s", [config.managedNamespaceLabel.key, config.managedNamespaceLabel.value, cronjob_reason]),
	"field": "spec.jobTemplate",
} if {
	is_cronjob
	k8s.managed_namespace
	not k8s.selected
	not cronjob_template_selected
}
