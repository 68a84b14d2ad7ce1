package flowforge.validate.seccomp_test

import data.flowforge.validate.testing as t

test_unconfined_pod_seccomp_denied if {
	obj := t.job([t.set("/spec/template/spec/securityContext/seccompProfile", {"type": "Unconfined"})])
	t.job_deny(obj) == {{
		"msg": "the pod's seccomp profile must not be Unconfined",
		"field": "spec.template.spec.securityContext.seccompProfile.type",
	}}
}

test_unconfined_container_seccomp_denied if {
	obj := t.job([t.set("/spec/template/spec/initContainers", [t.container({
		"name": "clone",
		"securityContext": {"seccompProfile": {"type": "Unconfined"}},
	})])])
	t.job_deny(obj) == {{
		"msg": "container \"clone\"'s seccomp profile must not be Unconfined",
		"field": "spec.template.spec.initContainers[0].securityContext.seccompProfile.type",
	}}
}

test_missing_seccomp_denied if {
	obj := t.pod([t.remove("/spec/securityContext/seccompProfile")])
	t.pod_deny(obj) == {{
		"msg": "container \"worker\" has no seccomp profile: set securityContext.seccompProfile on the pod or the container",
		"field": "spec.containers[0].securityContext.seccompProfile",
	}}
}

test_confined_profiles_admitted if {
	runtime_default := t.job([t.set("/spec/template/spec/securityContext/seccompProfile", {"type": "RuntimeDefault"})])
	count(t.job_deny(runtime_default)) == 0
	container_only := t.pod([
		t.remove("/spec/securityContext/seccompProfile"),
		t.set("/spec/containers/0/securityContext/seccompProfile", {"type": "RuntimeDefault"}),
	])
	count(t.pod_deny(container_only)) == 0
}
