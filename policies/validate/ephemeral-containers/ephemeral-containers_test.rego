package flowforge.validate.ephemeral_containers_test

import data.flowforge.lib.fixtures
import data.flowforge.validate.testing as t

debug := {
	"name": "debugger",
	"image": "ghcr.io/flowforge/debug:1.0.0",
	"targetContainerName": "worker",
	"securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
}

test_kubectl_debug_denied if {
	new := t.pod([t.set("/spec/ephemeralContainers", [debug])])
	t.pod_update_deny(fixtures.pod, new, "ephemeralcontainers") == {{
		"msg": "ephemeral container \"debugger\" is not allowed: FlowForge pods cannot be debugged in place",
		"field": "spec.ephemeralContainers[0]",
	}}
}

test_ephemeral_container_on_create_denied if {
	obj := t.pod([t.set("/spec/ephemeralContainers", [debug])])
	t.fields(t.pod_deny(obj)) == {"spec.ephemeralContainers[0]"}
}

test_pod_update_without_ephemeral_containers_admitted if {
	new := t.pod([t.set("/spec/ephemeralContainers", [])])
	count(t.pod_update_deny(fixtures.pod, new, "ephemeralcontainers")) == 0
}
