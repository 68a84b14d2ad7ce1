package flowforge.validate.host_namespaces_test

import data.flowforge.validate.testing as t

test_host_namespaces_denied if {
	obj := t.job([
		t.set("/spec/template/spec/hostNetwork", true),
		t.set("/spec/template/spec/hostPID", true),
		t.set("/spec/template/spec/hostIPC", true),
	])
	t.job_deny(obj) == {
		{"msg": "the pod must not use the node's network namespace (hostNetwork: true)", "field": "spec.template.spec.hostNetwork"},
		{"msg": "the pod must not use the node's process namespace (hostPID: true)", "field": "spec.template.spec.hostPID"},
		{"msg": "the pod must not use the node's IPC namespace (hostIPC: true)", "field": "spec.template.spec.hostIPC"},
	}
}

test_host_network_on_pod_denied if {
	t.fields(t.pod_deny(t.pod([t.set("/spec/hostNetwork", true)]))) == {"spec.hostNetwork"}
}

test_host_namespaces_false_admitted if {
	obj := t.job([
		t.set("/spec/template/spec/hostNetwork", false),
		t.set("/spec/template/spec/hostPID", false),
		t.set("/spec/template/spec/hostIPC", false),
	])
	count(t.job_deny(obj)) == 0
}
