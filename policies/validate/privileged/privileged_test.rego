package flowforge.validate.privileged_test

import data.flowforge.lib.fixtures
import data.flowforge.validate.testing as t

test_privileged_container_denied if {
	obj := t.job([t.set("/spec/template/spec/containers/0/securityContext/privileged", true)])
	t.job_deny(obj) == {{
		"msg": "container \"worker\" must not be privileged",
		"field": "spec.template.spec.containers[0].securityContext.privileged",
	}}
}

test_privileged_init_container_and_sidecar_denied if {
	obj := t.job([t.set("/spec/template/spec/initContainers", [
		t.container({"name": "clone"}),
		t.container({"name": "proxy", "restartPolicy": "Always", "securityContext": {"privileged": true}}),
	])])
	t.fields(t.job_deny(obj)) == {"spec.template.spec.initContainers[1].securityContext.privileged"}
}

test_privileged_pod_container_denied if {
	obj := t.pod([t.set("/spec/containers/-", t.container({"name": "second", "securityContext": {"privileged": true}}))])
	t.fields(t.pod_deny(obj)) == {"spec.containers[1].securityContext.privileged"}
}

test_unprivileged_containers_admitted if {
	fixtures.hardened_job.spec.template.spec.containers[0].securityContext.privileged == false
	count(t.job_deny(fixtures.hardened_job)) == 0
	obj := t.job([t.remove("/spec/template/spec/containers/0/securityContext/privileged")])
	count(t.job_deny(obj)) == 0
}

test_host_process_denied if {
	obj := t.job([
		t.set("/spec/template/spec/containers/0/securityContext/windowsOptions", {"hostProcess": true}),
		t.set("/spec/template/spec/securityContext/windowsOptions", {"hostProcess": true}),
	])
	t.job_deny(obj) == {
		{
			"msg": "container \"worker\" must not be a host-process container",
			"field": "spec.template.spec.containers[0].securityContext.windowsOptions.hostProcess",
		},
		{
			"msg": "the pod must not run host-process containers",
			"field": "spec.template.spec.securityContext.windowsOptions.hostProcess",
		},
	}
	not_host_process := t.job([t.set("/spec/template/spec/securityContext/windowsOptions", {"hostProcess": false})])
	count(t.job_deny(not_host_process)) == 0
}
