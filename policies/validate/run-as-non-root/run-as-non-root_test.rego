package flowforge.validate.run_as_non_root_test

import data.flowforge.validate.testing as t

test_pod_root_user_and_group_denied if {
	obj := t.job([
		t.set("/spec/template/spec/securityContext/runAsUser", 0),
		t.set("/spec/template/spec/securityContext/runAsGroup", 0),
		t.set("/spec/template/spec/securityContext/fsGroup", 0),
		t.set("/spec/template/spec/securityContext/supplementalGroups", [1000, 0]),
	])
	t.job_deny(obj) == {
		{"msg": "the pod must not run as user 0 (root)", "field": "spec.template.spec.securityContext.runAsUser"},
		{"msg": "the pod must not run with group 0 (root)", "field": "spec.template.spec.securityContext.runAsGroup"},
		{"msg": "the pod must not use fsGroup 0 (root)", "field": "spec.template.spec.securityContext.fsGroup"},
		{"msg": "the pod must not add group 0 (root) to supplementalGroups", "field": "spec.template.spec.securityContext.supplementalGroups[1]"},
	}
}

test_container_root_user_and_group_denied if {
	obj := t.job([
		t.set("/spec/template/spec/containers/0/securityContext/runAsUser", 0),
		t.set("/spec/template/spec/containers/0/securityContext/runAsGroup", 0),
	])
	t.job_deny(obj) == {
		{"msg": "container \"worker\" must not run as user 0 (root)", "field": "spec.template.spec.containers[0].securityContext.runAsUser"},
		{"msg": "container \"worker\" must not run with group 0 (root)", "field": "spec.template.spec.containers[0].securityContext.runAsGroup"},
	}
}

test_run_as_non_root_false_denied if {
	obj := t.job([
		t.set("/spec/template/spec/securityContext/runAsNonRoot", false),
		t.set("/spec/template/spec/containers/0/securityContext/runAsNonRoot", false),
	])
	t.job_deny(obj) == {
		{"msg": "the pod must not set runAsNonRoot: false", "field": "spec.template.spec.securityContext.runAsNonRoot"},
		{"msg": "container \"worker\" must not set runAsNonRoot: false", "field": "spec.template.spec.containers[0].securityContext.runAsNonRoot"},
	}
}

test_pod_run_as_non_root_false_also_fails_an_unset_container if {
	obj := t.pod([
		t.set("/spec/securityContext/runAsNonRoot", false),
		t.remove("/spec/containers/0/securityContext/runAsNonRoot"),
	])
	t.fields(t.pod_deny(obj)) == {"spec.securityContext.runAsNonRoot", "spec.containers[0].securityContext.runAsNonRoot"}
}

test_run_as_non_root_missing_denied if {
	obj := t.pod([
		t.remove("/spec/securityContext/runAsNonRoot"),
		t.remove("/spec/containers/0/securityContext/runAsNonRoot"),
	])
	t.pod_deny(obj) == {{
		"msg": "container \"worker\" must run as non-root: set runAsNonRoot: true on the pod or the container",
		"field": "spec.containers[0].securityContext.runAsNonRoot",
	}}
}

test_run_as_non_root_on_pod_or_container_admitted if {
	pod_level := t.pod([t.remove("/spec/containers/0/securityContext/runAsNonRoot")])
	count(t.pod_deny(pod_level)) == 0
	container_level := t.pod([t.remove("/spec/securityContext/runAsNonRoot")])
	count(t.pod_deny(container_level)) == 0
}

test_non_root_ids_admitted if {
	obj := t.job([
		t.set("/spec/template/spec/containers/0/securityContext/runAsUser", 2000),
		t.set("/spec/template/spec/containers/0/securityContext/runAsGroup", 2000),
		t.set("/spec/template/spec/securityContext/supplementalGroups", [1000, 2000]),
	])
	count(t.job_deny(obj)) == 0
}
