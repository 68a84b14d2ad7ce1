package flowforge.validate.priority_class_test

import data.flowforge.validate.testing as t

test_policy_class_is_admitted if {
	count(t.job_deny(t.job([]))) == 0
	count(t.pod_deny(t.pod([]))) == 0
}

test_other_or_missing_class_is_denied if {
	"spec.template.spec.priorityClassName" in t.fields(t.job_deny(t.job([t.set("/spec/template/spec/priorityClassName", "system-cluster-critical")])))
	"spec.template.spec.priorityClassName" in t.fields(t.job_deny(t.job([t.remove("/spec/template/spec/priorityClassName")])))
	"spec.priorityClassName" in t.fields(t.pod_deny(t.pod([t.set("/spec/priorityClassName", "high")])))
	"spec.priorityClassName" in t.fields(t.pod_deny(t.pod([t.remove("/spec/priorityClassName")])))
}
