package flowforge.validate.service_account_token_test

import data.flowforge.validate.testing as t

# What the ServiceAccount admission plugin injects into a Pod that does not
# set automountServiceAccountToken: false.
kube_api_access := {"name": "kube-api-access-x1y2z", "projected": {"sources": [
	{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
	{"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
	{"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
]}}

test_projected_token_denied if {
	obj := t.job([t.set("/spec/template/spec/volumes/-", kube_api_access)])
	t.job_deny(obj) == {{
		"msg": "volume \"kube-api-access-x1y2z\" must not project a service-account token",
		"field": "spec.template.spec.volumes[2].projected.sources[0].serviceAccountToken",
	}}
}

test_injected_token_on_pod_denied if {
	obj := t.pod([
		t.remove("/spec/automountServiceAccountToken"),
		t.set("/spec/volumes/-", kube_api_access),
	])
	t.fields(t.pod_deny(obj)) == {
		"spec.automountServiceAccountToken",
		"spec.volumes[2].projected.sources[0].serviceAccountToken",
	}
}

test_automount_not_false_denied if {
	explicit := t.pod([t.set("/spec/automountServiceAccountToken", true)])
	t.pod_deny(explicit) == {{
		"msg": "automountServiceAccountToken must be false: FlowForge workloads get no Kubernetes API token",
		"field": "spec.automountServiceAccountToken",
	}}
	unset := t.job([t.remove("/spec/template/spec/automountServiceAccountToken")])
	t.fields(t.job_deny(unset)) == {"spec.template.spec.automountServiceAccountToken"}
}

test_projected_volume_without_token_admitted if {
	obj := t.job([t.set("/spec/template/spec/volumes/-", {"name": "info", "projected": {"sources": [
		{"configMap": {"name": "settings"}},
		{"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
	]}})])
	count(t.job_deny(obj)) == 0
}
