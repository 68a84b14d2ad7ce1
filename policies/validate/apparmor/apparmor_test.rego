package flowforge.validate.apparmor_test

import data.flowforge.lib.fixtures
import data.flowforge.validate.testing as t

test_unconfined_pod_apparmor_denied if {
	obj := t.job([t.set("/spec/template/spec/securityContext/appArmorProfile", {"type": "Unconfined"})])
	t.job_deny(obj) == {{
		"msg": "the pod's AppArmor profile must not be Unconfined",
		"field": "spec.template.spec.securityContext.appArmorProfile.type",
	}}
}

test_unconfined_container_apparmor_denied if {
	obj := t.pod([t.set("/spec/containers/0/securityContext/appArmorProfile", {"type": "Unconfined"})])
	t.pod_deny(obj) == {{
		"msg": "container \"worker\"'s AppArmor profile must not be Unconfined",
		"field": "spec.containers[0].securityContext.appArmorProfile.type",
	}}
}

test_unconfined_apparmor_annotation_denied if {
	key := "container.apparmor.security.beta.kubernetes.io/worker"
	obj := t.job([t.set("/spec/template/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1worker", "unconfined")])
	t.job_deny(obj) == {{
		"msg": sprintf("container \"worker\" must not run unconfined by AppArmor (annotation %s)", [key]),
		"field": sprintf("spec.template.metadata.annotations[%s]", [key]),
	}}
	pod := t.pod([t.set("/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1worker", "unconfined")])
	t.fields(t.pod_deny(pod)) == {sprintf("metadata.annotations[%s]", [key])}
}

test_apparmor_annotation_on_the_job_itself_is_not_the_pods if {
	obj := t.job([t.set("/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1worker", "unconfined")])
	count(t.job_deny(obj)) == 0
}

test_confined_apparmor_admitted_and_annotation_warned if {
	key := "container.apparmor.security.beta.kubernetes.io/worker"
	obj := t.job([
		t.set("/spec/template/spec/containers/0/securityContext/appArmorProfile", {"type": "Localhost", "localhostProfile": "k8s-worker"}),
		t.set("/spec/template/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1worker", "runtime/default"),
	])
	count(t.job_deny(obj)) == 0
	warnings := t.job_warn(obj)
	{
		"msg": sprintf("annotation %s is deprecated: use securityContext.appArmorProfile", [key]),
		"field": sprintf("spec.template.metadata.annotations[%s]", [key]),
	} in warnings
	not sprintf("spec.template.metadata.annotations[%s]", [key]) in t.fields(t.job_warn(fixtures.hardened_job))
}
