package flowforge.validate.pod_deadline_test

import data.flowforge.validate.testing as t

test_pod_as_hardened_is_admitted if {
	count(t.pod_deny(t.pod([]))) == 0
}

test_pod_without_deadline_is_denied if {
	d := t.pod_deny(t.pod([t.remove("/spec/activeDeadlineSeconds")]))
	"spec.activeDeadlineSeconds" in t.fields(d)
}

test_pod_deadline_above_maximum_is_denied if {
	d := t.pod_deny(t.pod([t.set("/spec/activeDeadlineSeconds", 14401)]))
	"spec.activeDeadlineSeconds" in t.fields(d)
	count(t.pod_deny(t.pod([t.set("/spec/activeDeadlineSeconds", 14400)]))) == 0
}

test_job_template_deadline_above_maximum_is_denied if {
	d := t.job_deny(t.job([t.set("/spec/template/spec/activeDeadlineSeconds", 20000)]))
	"spec.template.spec.activeDeadlineSeconds" in t.fields(d)
	count(t.job_deny(t.job([t.set("/spec/template/spec/activeDeadlineSeconds", 600)]))) == 0
}

test_job_template_needs_no_pod_deadline if {
	count(t.job_deny(t.job([]))) == 0
}

test_old_pod_without_deadline_stays_updatable if {
	old := t.pod([t.remove("/spec/activeDeadlineSeconds")])
	new := json.patch(old, [t.set("/metadata/finalizers", [])])
	count(t.pod_update_deny(old, new, "")) == 0
}
