package flowforge.validate.volume_types_test

import data.flowforge.validate.testing as t

test_host_path_denied if {
	obj := t.job([t.set("/spec/template/spec/volumes/-", {"name": "node", "hostPath": {"path": "/var/run"}})])
	t.job_deny(obj) == {{
		"msg": "volume \"node\" must not mount a path of the node (hostPath)",
		"field": "spec.template.spec.volumes[2].hostPath",
	}}
}

test_host_path_on_pod_denied if {
	obj := t.pod([t.set("/spec/volumes/0", {"name": "node", "hostPath": {"path": "/"}})])
	t.fields(t.pod_deny(obj)) == {"spec.volumes[0].hostPath"}
}

test_other_volume_types_denied if {
	obj := t.job([
		t.set("/spec/template/spec/volumes/-", {"name": "repo", "gitRepo": {"repository": "https://example.com/x.git"}}),
		t.set("/spec/template/spec/volumes/-", {"name": "share", "nfs": {"server": "10.0.0.1", "path": "/"}}),
	])
	t.fields(t.job_deny(obj)) == {"spec.template.spec.volumes[2].gitRepo", "spec.template.spec.volumes[3].nfs"}
	some d in t.job_deny(obj)
	d.field == "spec.template.spec.volumes[2].gitRepo"
	startswith(d.msg, "volume \"repo\" has type gitRepo, which is not allowed (allowed: configMap, csi,")
}

test_allowed_volume_types_admitted if {
	obj := t.job([
		t.set("/spec/template/spec/volumes/-", {"name": "cfg", "configMap": {"name": "settings"}}),
		t.set("/spec/template/spec/volumes/-", {"name": "data", "persistentVolumeClaim": {"claimName": "cache"}}),
		t.set("/spec/template/spec/volumes/-", {"name": "info", "downwardAPI": {"items": []}}),
		t.set("/spec/template/spec/volumes/-", {"name": "key", "secret": {"secretName": "claude-secret"}}),
		t.set("/spec/template/spec/volumes/-", {"name": "none", "hostPath": null, "emptyDir": {}}),
	])
	count(t.job_deny(obj)) == 0
}
