package flowforge.validate.proc_mount_test

import data.flowforge.validate.testing as t

test_unmasked_proc_mount_denied if {
	obj := t.job([t.set("/spec/template/spec/containers/0/securityContext/procMount", "Unmasked")])
	t.job_deny(obj) == {{
		"msg": "container \"worker\" must not use procMount Unmasked",
		"field": "spec.template.spec.containers[0].securityContext.procMount",
	}}
}

test_default_proc_mount_admitted if {
	count(t.job_deny(t.job([t.set("/spec/template/spec/containers/0/securityContext/procMount", "Default")]))) == 0
}
