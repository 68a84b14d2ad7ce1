package flowforge.validate.host_ports_test

import data.flowforge.validate.testing as t

test_host_port_denied if {
	obj := t.job([t.set("/spec/template/spec/containers/0/ports", [
		{"containerPort": 8080},
		{"containerPort": 22, "hostPort": 2222},
	])])
	t.job_deny(obj) == {{
		"msg": "container \"worker\" must not bind port 2222 on the node (hostPort)",
		"field": "spec.template.spec.containers[0].ports[1].hostPort",
	}}
}

test_host_port_in_init_container_denied if {
	obj := t.pod([t.set("/spec/initContainers", [t.container({"name": "init", "ports": [{"containerPort": 80, "hostPort": 80}]})])])
	t.fields(t.pod_deny(obj)) == {"spec.initContainers[0].ports[0].hostPort"}
}

test_container_ports_admitted if {
	obj := t.job([t.set("/spec/template/spec/containers/0/ports", [
		{"containerPort": 8080},
		{"containerPort": 9090, "hostPort": 0},
	])])
	count(t.job_deny(obj)) == 0
}
