package flowforge.validate.privilege_escalation_test

import data.flowforge.validate.testing as t

test_privilege_escalation_denied if {
	obj := t.job([t.set("/spec/template/spec/containers/0/securityContext/allowPrivilegeEscalation", true)])
	t.job_deny(obj) == {{
		"msg": "container \"worker\" must not allow privilege escalation",
		"field": "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
	}}
}

test_privilege_escalation_in_ephemeral_container_denied if {
	debug := {"name": "debug", "image": "ghcr.io/flowforge/debug:1.0.0", "securityContext": {"allowPrivilegeEscalation": true}}
	obj := t.pod([t.set("/spec/ephemeralContainers", [debug])])
	"spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation" in t.fields(t.pod_deny(obj))
}

test_privilege_escalation_unset_denied if {
	obj := t.pod([t.remove("/spec/containers/0/securityContext/allowPrivilegeEscalation")])
	t.pod_deny(obj) == {{
		"msg": "container \"worker\" must set allowPrivilegeEscalation: false (the default is true)",
		"field": "spec.containers[0].securityContext.allowPrivilegeEscalation",
	}}
}

test_no_privilege_escalation_admitted if {
	count(t.pod_deny(t.pod([t.set("/spec/containers/0/securityContext/allowPrivilegeEscalation", false)]))) == 0
}
