package flowforge.validate.managed_namespace_test

import data.flowforge.lib.fixtures
import data.flowforge.validate.testing as t

managed := {"flowforge.io/managed": "true"}

test_unlabelled_job_in_managed_namespace_denied if {
	obj := json.patch(fixtures.job, [t.remove("/metadata/labels/app")])
	t.job_deny_in(obj, managed) == {{
		"msg": "namespace \"agents\" is managed by FlowForge: every Job and Pod in it requires the label app=flowforge",
		"field": "metadata.labels[app]",
	}}
}

test_mislabelled_pod_in_managed_namespace_denied if {
	obj := t.pod([t.set("/metadata/labels/app", "other")])
	t.fields(t.pod_deny_in(obj, managed)) == {"metadata.labels[app]"}
}

test_unlabelled_objects_elsewhere_admitted if {
	obj := json.patch(fixtures.job, [t.remove("/metadata/labels/app")])
	count(t.job_deny_in(obj, {"flowforge.io/managed": "false"})) == 0
	count(t.job_deny(obj)) == 0
}

test_labelled_objects_in_managed_namespace_admitted if {
	count(t.job_deny_in(fixtures.hardened_job, managed)) == 0
	count(t.pod_deny_in(fixtures.pod, managed)) == 0
}
