package flowforge.validate.job_lifecycle_test

import data.flowforge.lib.fixtures
import data.flowforge.validate.testing as t

test_grace_period_above_maximum_denied if {
	t.job_deny(t.job([t.set("/spec/template/spec/terminationGracePeriodSeconds", 3600)])) == {{
		"msg": "terminationGracePeriodSeconds 3600 is above the maximum 120",
		"field": "spec.template.spec.terminationGracePeriodSeconds",
	}}
	t.fields(t.pod_deny(t.pod([t.set("/spec/terminationGracePeriodSeconds", 121)]))) == {"spec.terminationGracePeriodSeconds"}
	count(t.job_deny(t.job([t.set("/spec/template/spec/terminationGracePeriodSeconds", 120)]))) == 0
}

test_probe_grace_period_above_maximum_denied if {
	probe := {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 86400}
	obj := t.job([t.set("/spec/template/spec/containers/0/livenessProbe", probe)])
	t.job_deny(obj) == {{
		"msg": "container \"worker\": livenessProbe terminationGracePeriodSeconds 86400 is above the maximum 120",
		"field": "spec.template.spec.containers[0].livenessProbe.terminationGracePeriodSeconds",
	}}
}

test_managed_by_other_controller_denied if {
	t.job_deny(t.job([t.set("/spec/managedBy", "example.com/runaway")])) == {{
		"msg": "spec.managedBy \"example.com/runaway\" is not allowed (allowed: kubernetes.io/job-controller): only the Job controller honours the deadline and the TTL",
		"field": "spec.managedBy",
	}}
	count(t.job_deny(t.job([t.set("/spec/managedBy", "kubernetes.io/job-controller")]))) == 0
}

test_manual_selector_denied if {
	t.job_deny(t.job([t.set("/spec/manualSelector", true)])) == {{
		"msg": "spec.manualSelector: true is not allowed: the Job's pods must be the ones its generated selector finds",
		"field": "spec.manualSelector",
	}}
	count(t.job_deny(t.job([t.set("/spec/manualSelector", false)]))) == 0
	allowed := t.job_deny(t.job([t.set("/spec/manualSelector", true)])) with data.flowforge.config.job.allowManualSelector as true
	count(allowed) == 0
}

test_parallelism_and_completions_bounded if {
	obj := t.job([t.set("/spec/parallelism", 50), t.set("/spec/completions", 1000)])
	t.job_deny(obj) == {
		{"msg": "spec.parallelism 50 is above the maximum 8", "field": "spec.parallelism"},
		{"msg": "spec.completions 1000 is above the maximum 32", "field": "spec.completions"},
	}
	count(t.job_deny(t.job([t.set("/spec/parallelism", 8), t.set("/spec/completions", 32)]))) == 0
}

test_scale_up_on_update_denied if {
	old := t.job([t.set("/spec/parallelism", 2)])
	new := json.patch(old, [t.set("/spec/parallelism", 64)])
	t.fields(t.job_update_deny(old, new)) == {"spec.parallelism"}
	count(t.job_update_deny(old, json.patch(old, [t.set("/spec/parallelism", 8)]))) == 0

	# Admitted above the maximum under an older policy: it may scale down
	# or stay, not up.
	legacy := t.job([t.set("/spec/parallelism", 50)])
	count(t.job_update_deny(legacy, json.patch(legacy, [t.set("/spec/parallelism", 20)]))) == 0
	count(t.job_update_deny(legacy, json.patch(legacy, [t.set("/spec/suspend", true)]))) == 0
	t.job_update_deny(legacy, json.patch(legacy, [t.set("/spec/parallelism", 51)])) == {{"msg": "spec.parallelism 51 is above the maximum 8", "field": "spec.parallelism"}}
}

test_backoff_limit_per_index_bounded if {
	indexed := [t.set("/spec/completionMode", "Indexed"), t.set("/spec/completions", 4)]

	# The API server's default backoffLimit next to backoffLimitPerIndex
	# (MaxInt32) is not the user's choice: admitted.
	ok := t.job(array.concat(indexed, [t.set("/spec/backoffLimitPerIndex", 1), t.set("/spec/backoffLimit", 2147483647)]))
	count(t.job_deny(ok)) == 0
	high := t.job(array.concat(indexed, [t.set("/spec/backoffLimitPerIndex", 100)]))
	t.job_deny(high) == {{"msg": "spec.backoffLimitPerIndex 100 is above the maximum 5", "field": "spec.backoffLimitPerIndex"}}
}

test_pod_failure_policy_ignoring_failures_denied if {
	rules := [
		{"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [0]}},
		{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}, {"type": "ConfigIssue", "status": "True"}]},
		{"action": "Count", "onExitCodes": {"operator": "In", "values": [1]}},
		{"action": "FailJob", "onPodConditions": [{"type": "ConfigIssue"}]},
	]
	obj := t.job([t.set("/spec/podFailurePolicy", {"rules": rules})])
	t.job_deny(obj) == {
		{
			"msg": "a podFailurePolicy rule must not Ignore exit codes: ignored failures never count against backoffLimit",
			"field": "spec.podFailurePolicy.rules[0].onExitCodes",
		},
		{
			"msg": "a podFailurePolicy rule may Ignore only DisruptionTarget, not \"ConfigIssue\": ignored failures never count against backoffLimit",
			"field": "spec.podFailurePolicy.rules[1].onPodConditions[1].type",
		},
	}
}

test_hardened_pod_failure_policy_admitted if {
	count(t.job_deny(fixtures.hardened_job)) == 0
	own := t.job([t.set("/spec/podFailurePolicy", {"rules": [
		{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
		{"action": "Count", "onPodConditions": [{"type": "DisruptionTarget"}]},
		{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
	]})])
	count(t.job_deny(own)) == 0
}
