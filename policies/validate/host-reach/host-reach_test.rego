package flowforge.validate.host_reach_test

import data.flowforge.validate.testing as t

worker := "/spec/template/spec/containers/0"

test_probe_hosts_denied if {
	obj := t.job([
		t.set(concat("", [worker, "/livenessProbe"]), {"httpGet": {"host": "169.254.169.254", "path": "/latest/meta-data", "port": 80}}),
		t.set(concat("", [worker, "/readinessProbe"]), {"tcpSocket": {"host": "10.0.0.1", "port": 10250}}),
		t.set(concat("", [worker, "/startupProbe"]), {"httpGet": {"host": "node.local", "port": 80}}),
	])
	t.job_deny(obj) == {
		{
			"msg": "container \"worker\": httpGet.host \"169.254.169.254\" is dialled from the node's network; leave it unset (the pod's own IP)",
			"field": "spec.template.spec.containers[0].livenessProbe.httpGet.host",
		},
		{
			"msg": "container \"worker\": tcpSocket.host \"10.0.0.1\" is dialled from the node's network; leave it unset (the pod's own IP)",
			"field": "spec.template.spec.containers[0].readinessProbe.tcpSocket.host",
		},
		{
			"msg": "container \"worker\": httpGet.host \"node.local\" is dialled from the node's network; leave it unset (the pod's own IP)",
			"field": "spec.template.spec.containers[0].startupProbe.httpGet.host",
		},
	}
}

test_lifecycle_hosts_denied_in_every_container_kind if {
	obj := t.pod([
		t.set("/spec/containers/0/lifecycle", {"preStop": {"httpGet": {"host": "kubernetes.default", "port": 443}}}),
		t.set("/spec/initContainers", [t.container({
			"name": "proxy", "restartPolicy": "Always",
			"lifecycle": {"postStart": {"tcpSocket": {"host": "127.0.0.1", "port": 22}}},
		})]),
	])
	t.fields(t.pod_deny(obj)) == {
		"spec.containers[0].lifecycle.preStop.httpGet.host",
		"spec.initContainers[0].lifecycle.postStart.tcpSocket.host",
	}
}

test_probes_without_host_admitted if {
	obj := t.job([
		t.set(concat("", [worker, "/livenessProbe"]), {"httpGet": {"path": "/healthz", "port": 8080}}),
		t.set(concat("", [worker, "/readinessProbe"]), {"tcpSocket": {"host": "", "port": 8080}}),
		t.set(concat("", [worker, "/startupProbe"]), {"exec": {"command": ["true"]}}),
		t.set(concat("", [worker, "/lifecycle"]), {"preStop": {"sleep": {"seconds": 5}}}),
	])
	count(t.job_deny(obj)) == 0
}

test_selinux_type_outside_the_list_denied if {
	obj := t.job([t.set("/spec/template/spec/securityContext/seLinuxOptions", {"type": "spc_t"})])
	t.job_deny(obj) == {{
		"msg": "SELinux type \"spc_t\" is not allowed (allowed: container_t, container_init_t, container_kvm_t, container_engine_t)",
		"field": "spec.template.spec.securityContext.seLinuxOptions.type",
	}}
	unconfined := t.job([t.set(concat("", [worker, "/securityContext/seLinuxOptions"]), {"type": "unconfined_t"})])
	t.fields(t.job_deny(unconfined)) == {"spec.template.spec.containers[0].securityContext.seLinuxOptions.type"}
}

test_selinux_user_and_role_denied if {
	obj := t.pod([t.set("/spec/containers/0/securityContext/seLinuxOptions", {"user": "system_u", "role": "system_r", "type": "container_t"})])
	t.pod_deny(obj) == {
		{"msg": "SELinux user \"system_u\" is not allowed: leave it unset", "field": "spec.containers[0].securityContext.seLinuxOptions.user"},
		{"msg": "SELinux role \"system_r\" is not allowed: leave it unset", "field": "spec.containers[0].securityContext.seLinuxOptions.role"},
	}
}

test_selinux_within_the_list_admitted if {
	obj := t.job([
		t.set("/spec/template/spec/securityContext/seLinuxOptions", {"type": "container_t", "level": "s0:c123,c456"}),
		t.set(concat("", [worker, "/securityContext/seLinuxOptions"]), {"type": "container_init_t"}),
	])
	count(t.job_deny(obj)) == 0
}
