package flowforge.validate.capabilities_test

import data.flowforge.validate.testing as t

test_capability_outside_allowlist_denied if {
	obj := t.job([t.set("/spec/template/spec/containers/0/securityContext/capabilities/add", ["NET_BIND_SERVICE", "SYS_ADMIN"])])
	t.job_deny(obj) == {{
		"msg": "container \"worker\" must not add capability SYS_ADMIN (allowed: NET_BIND_SERVICE)",
		"field": "spec.template.spec.containers[0].securityContext.capabilities.add[1]",
	}}
}

test_capability_spellings_denied if {
	obj := t.job([t.set("/spec/template/spec/containers/0/securityContext/capabilities/add", ["CAP_SYS_PTRACE", "net_raw", "ALL"])])
	t.fields(t.job_deny(obj)) == {
		"spec.template.spec.containers[0].securityContext.capabilities.add[0]",
		"spec.template.spec.containers[0].securityContext.capabilities.add[1]",
		"spec.template.spec.containers[0].securityContext.capabilities.add[2]",
	}
}

test_capability_in_sidecar_denied if {
	obj := t.job([t.set("/spec/template/spec/initContainers", [t.container({
		"name": "proxy",
		"restartPolicy": "Always",
		"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}},
	})])])
	t.fields(t.job_deny(obj)) == {"spec.template.spec.initContainers[0].securityContext.capabilities.add[0]"}
}

test_allowed_capability_admitted if {
	obj := t.job([t.set("/spec/template/spec/containers/0/securityContext/capabilities/add", ["NET_BIND_SERVICE", "CAP_NET_BIND_SERVICE"])])
	count(t.job_deny(obj)) == 0
}

test_capabilities_not_dropped_denied if {
	obj := t.pod([t.set("/spec/containers/0/securityContext/capabilities/drop", ["NET_RAW"])])
	t.pod_deny(obj) == {{
		"msg": "container \"worker\" must drop all capabilities (capabilities.drop: [ALL])",
		"field": "spec.containers[0].securityContext.capabilities.drop",
	}}
	no_capabilities := t.pod([t.remove("/spec/containers/0/securityContext/capabilities")])
	t.fields(t.pod_deny(no_capabilities)) == {"spec.containers[0].securityContext.capabilities.drop"}
}
