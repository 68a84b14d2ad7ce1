package flowforge.validate.scratch_mounts_test

import data.flowforge.lib.fixtures
import data.flowforge.validate.testing as t

test_read_only_scratch_mount_warned if {
	obj := t.job([t.set("/spec/template/spec/containers/0/volumeMounts/0/readOnly", true)])
	count(t.job_deny(obj)) == 0
	{
		"msg": "container \"worker\" mounts /tmp read-only: with a read-only root filesystem it has nowhere to write there",
		"field": "spec.template.spec.containers[0].volumeMounts[0].readOnly",
	} in t.job_warn(obj)
}

test_writable_scratch_and_other_read_only_mounts_not_warned if {
	obj := t.pod([
		t.set("/spec/containers/0/volumeMounts/1/readOnly", false),
		t.set("/spec/containers/0/volumeMounts/-", {"name": "cfg", "mountPath": "/etc/flowforge", "readOnly": true}),
		t.set("/spec/volumes/-", {"name": "cfg", "configMap": {"name": "settings"}}),
	])
	t.pod_warn(obj) == t.pod_warn(fixtures.pod)
	count(t.pod_deny(obj)) == 0
}
