package flowforge.validate.runtime_class_test

import data.flowforge.validate.testing as t

test_other_runtime_class_denied if {
	obj := t.job([t.set("/spec/template/spec/runtimeClassName", "runc")])
	t.job_deny(obj) == {{
		"msg": "runtimeClassName \"runc\" is not allowed (allowed: gvisor)",
		"field": "spec.template.spec.runtimeClassName",
	}}
	empty := t.pod([t.set("/spec/runtimeClassName", "")])
	t.fields(t.pod_deny(empty)) == {"spec.runtimeClassName"}
}

test_missing_runtime_class_denied if {
	pod := t.pod([t.remove("/spec/runtimeClassName")])
	t.pod_deny(pod) == {{
		"msg": "runtimeClassName is required (allowed: gvisor)",
		"field": "spec.runtimeClassName",
	}}
	job := t.job([t.remove("/spec/template/spec/runtimeClassName")])
	t.fields(t.job_deny(job)) == {"spec.template.spec.runtimeClassName"}
}

test_gvisor_admitted if {
	count(t.pod_deny(t.pod([t.set("/spec/runtimeClassName", "gvisor")]))) == 0
}
