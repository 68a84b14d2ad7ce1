package flowforge.validate.cronjob_test

import data.flowforge.lib.fixtures
import data.flowforge.validate

cronjob_kind := {"group": "batch", "version": "v1", "kind": "CronJob"}

cronjob(cron_labels, template_labels) := {
	"apiVersion": "batch/v1",
	"kind": "CronJob",
	"metadata": {"name": "nightly", "namespace": "agents", "labels": cron_labels},
	"spec": {
		"schedule": "0 3 * * *",
		"jobTemplate": {
			"metadata": {"labels": template_labels},
			"spec": fixtures.job.spec,
		},
	},
}

deny_in(obj, namespace_labels) := d if {
	inp := object.union(fixtures.job_input_in(obj, namespace_labels), {"request": {"kind": cronjob_kind}})
	d := validate.deny with input as inp
}

managed := {"flowforge.io/managed": "true"}

labelled := {"app": "flowforge", "job-id": "abc", "user-id": "u1"}

test_any_cronjob_in_a_managed_namespace_is_denied if {
	d := deny_in(cronjob({}, {"team": "x"}), managed)
	{v.field | some v in d} == {"spec.jobTemplate"}
	some v in d
	contains(v.msg, "not allowed in a FlowForge namespace")
}

test_labelled_template_is_denied_anywhere if {
	d := deny_in(cronjob({}, labelled), {})
	{v.field | some v in d} == {"spec.jobTemplate.metadata.labels[app]"}
	some v in d
	contains(v.msg, "one-shot")
}

test_labelled_template_in_a_managed_namespace_is_named_once if {
	d := deny_in(cronjob({}, labelled), managed)
	{v.field | some v in d} == {"spec.jobTemplate.metadata.labels[app]"}
}

test_labelled_cronjob_is_denied if {
	d := deny_in(cronjob({"app": "flowforge"}, {}), {})
	{v.field | some v in d} == {"metadata.labels[app]"}
}

test_other_cronjobs_are_not_ours if {
	count(deny_in(cronjob({}, {}), {})) == 0
	count(deny_in(cronjob({"team": "x"}, {"team": "x"}), {})) == 0
}

test_a_cronjob_admitted_before_stays_updatable if {
	old := cronjob({}, labelled)
	new := json.patch(old, [{"op": "add", "path": "/spec/suspend", "value": true}])
	inp := object.union(fixtures.update_input(cronjob_kind, old, new), {"namespace": {"labels": managed}})
	d := validate.deny with input as inp
	count(d) == 0
}
