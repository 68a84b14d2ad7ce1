package flowforge.validate.exported_test

import data.flowforge.lib.fixtures
import data.flowforge.validate
import data.flowforge.validate.testing as t

field := "metadata.labels[flowforge.io/exported]"

template_field := "spec.template.metadata.labels[flowforge.io/exported]"

controller := "system:serviceaccount:flowforge-system:flowforge-controller"

exported_deny(results) := {r | some r in results; r.field in {field, template_field}}

labelled(obj) := json.patch(obj, [t.set("/metadata/labels/flowforge.io~1exported", "Succeeded.1764600000")])

update_by(kind_input, user, groups) := object.union(kind_input, {"request": {"userInfo": {"username": user, "groups": groups}}})

job_update_deny_by(old, new, user, groups) := r if {
	r := validate.deny with input as update_by(fixtures.job_update_input(old, new), user, groups)
}

pod_update_deny_by(old, new, user, groups) := r if {
	r := validate.deny with input as update_by(fixtures.pod_update_input(old, new, ""), user, groups)
}

test_hardened_objects_admitted if {
	count(exported_deny(t.job_deny(fixtures.hardened_job))) == 0
	count(exported_deny(t.pod_deny(fixtures.pod))) == 0
}

test_created_with_the_label_denied if {
	exported_deny(t.job_deny(labelled(fixtures.hardened_job))) == {{
		"msg": "the label flowforge.io/exported is set by the FlowForge controller once the Job is exported; it cannot be set on create",
		"field": field,
	}}
	t.fields(exported_deny(t.pod_deny(labelled(fixtures.pod)))) == {field}
	template := t.job([t.set("/spec/template/metadata/labels/flowforge.io~1exported", "x")])
	t.fields(exported_deny(t.job_deny(template))) == {template_field}
}

test_created_with_the_label_denied_even_for_the_controller if {
	req := update_by(fixtures.job_input(labelled(fixtures.hardened_job)), controller, [])
	t.fields(exported_deny(validate.deny)) == {field} with input as req
}

test_controller_labels_job_and_pod if {
	count(exported_deny(job_update_deny_by(fixtures.hardened_job, labelled(fixtures.hardened_job), controller, ["system:serviceaccounts"]))) == 0
	count(exported_deny(pod_update_deny_by(fixtures.pod, labelled(fixtures.pod), controller, []))) == 0
}

test_controller_group_member_may_label if {
	count(exported_deny(job_update_deny_by(fixtures.hardened_job, labelled(fixtures.hardened_job), "ops", ["flowforge:exporters"]))) == 0 with data.flowforge.config.export.controllers.groups as ["flowforge:exporters"]
}

test_others_may_not_set_change_or_remove if {
	denied := {{"msg": "only the FlowForge controller (policy data export.controllers) may set, change or remove the label flowforge.io/exported", "field": field}}
	exported_deny(job_update_deny_by(fixtures.hardened_job, labelled(fixtures.hardened_job), "u1", ["system:authenticated"])) == denied
	exported_deny(job_update_deny_by(labelled(fixtures.hardened_job), fixtures.hardened_job, "u1", [])) == denied
	changed := json.patch(fixtures.hardened_job, [t.set("/metadata/labels/flowforge.io~1exported", "Failed.1")])
	exported_deny(job_update_deny_by(labelled(fixtures.hardened_job), changed, "system:kube-controller-manager", [])) == denied
	exported_deny(pod_update_deny_by(fixtures.pod, labelled(fixtures.pod), "system:serviceaccount:kube-system:job-controller", [])) == denied
	exported_deny(job_update_deny_by(fixtures.hardened_job, labelled(fixtures.hardened_job), "admin", ["system:masters"])) == denied
}

test_unchanged_label_is_not_checked if {
	count(exported_deny(job_update_deny_by(labelled(fixtures.hardened_job), labelled(fixtures.hardened_job), "u1", []))) == 0
}

test_template_label_update_denied_for_everyone if {
	template := t.job([t.set("/spec/template/metadata/labels/flowforge.io~1exported", "x")])
	t.fields(exported_deny(job_update_deny_by(fixtures.hardened_job, template, controller, []))) == {template_field}
}

test_without_export_nothing_is_checked if {
	count(exported_deny(t.job_deny(labelled(fixtures.hardened_job)))) == 0 with data.flowforge.config.export.enabled as false
	count(exported_deny(job_update_deny_by(fixtures.hardened_job, labelled(fixtures.hardened_job), "u1", []))) == 0 with data.flowforge.config.export.enabled as false
}
