package flowforge.validate.read_only_root_filesystem_test

import data.flowforge.validate.testing as t

test_writable_root_filesystem_denied if {
	obj := t.pod([t.set("/spec/containers/0/securityContext/readOnlyRootFilesystem", false)])
	t.pod_deny(obj) == {{
		"msg": "container \"worker\" must set readOnlyRootFilesystem: true",
		"field": "spec.containers[0].securityContext.readOnlyRootFilesystem",
	}}
	unset := t.pod([t.remove("/spec/containers/0/securityContext/readOnlyRootFilesystem")])
	t.fields(t.pod_deny(unset)) == {"spec.containers[0].securityContext.readOnlyRootFilesystem"}
}

test_read_only_root_filesystem_admitted if {
	count(t.pod_deny(t.pod([t.set("/spec/containers/0/securityContext/readOnlyRootFilesystem", true)]))) == 0
}
