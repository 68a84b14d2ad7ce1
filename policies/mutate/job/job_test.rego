package flowforge.mutate_test

import data.flowforge.lib.fixtures
import data.flowforge.mutate

test_deadline_default if {
	ops(fixtures.job, "activeDeadlineSeconds") == {mutate.default_op("activeDeadlineSeconds", ["spec", "activeDeadlineSeconds"], 3600)}
}

test_deadline_from_timeout_seconds if {
	job := fixtures.job_with({"metadata": {"annotations": {"flowforge.io/timeout": "1800"}}})
	ops(job, "activeDeadlineSeconds") == {mutate.set_op("activeDeadlineSeconds", ["spec", "activeDeadlineSeconds"], 1800)}
}

test_deadline_from_timeout_duration if {
	job := fixtures.job_with({"metadata": {"annotations": {"flowforge.io/timeout": "1h30m"}}})
	ops(job, "activeDeadlineSeconds") == {mutate.set_op("activeDeadlineSeconds", ["spec", "activeDeadlineSeconds"], 5400)}
}

test_unparsable_timeout_gets_default_deadline if {
	job := fixtures.job_with({"metadata": {"annotations": {"flowforge.io/timeout": "soon"}}})
	ops(job, "activeDeadlineSeconds") == {mutate.default_op("activeDeadlineSeconds", ["spec", "activeDeadlineSeconds"], 3600)}
}

test_ttl_default_and_clamp if {
	ops(fixtures.job, "ttlSecondsAfterFinished") == {mutate.default_op("ttlSecondsAfterFinished", ["spec", "ttlSecondsAfterFinished"], 3600)}
	long := fixtures.job_with({"spec": {"ttlSecondsAfterFinished": 999999}})
	some op in ops(long, "ttlSecondsAfterFinished")
	op == mutate.set_op("ttlSecondsAfterFinished", ["spec", "ttlSecondsAfterFinished"], 86400)
	warnings := mutate.warn with input as fixtures.job_input(long)
	count(warnings) == 1
}

test_retry_policy if {
	ops(fixtures.job, "podReplacementPolicy") == {mutate.set_op("podReplacementPolicy", ["spec", "podReplacementPolicy"], "Failed")}
	ops(fixtures.job, "backoffLimit") == {mutate.set_op("backoffLimit", ["spec", "backoffLimit"], 2)}
	api_defaulted := fixtures.job_with({"spec": {"backoffLimit": 6}})
	ops(api_defaulted, "backoffLimit") == {mutate.set_op("backoffLimit", ["spec", "backoffLimit"], 2)}
	user_set := fixtures.job_with({"spec": {"backoffLimit": 1}})
	count(ops(user_set, "backoffLimit")) == 0
	some op in ops(fixtures.job, "podFailurePolicy")
	op.value.rules[0] == {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2, 126, 127]}}
	op.value.rules[1].action == "Ignore"
}

test_pod_labels_propagate if {
	some op in ops(fixtures.job, "podLabels")
	op.path == ["spec", "template", "metadata", "labels"]
	op.value == {"app": "flowforge", "component": "worker", "job-id": "abc", "user-id": "u1"}
}

test_export_finalizers if {
	some op in ops(fixtures.job, "finalizers")
	op.value == ["flowforge.io/export"]
	some pod_op in ops(fixtures.job, "podFinalizers")
	pod_op.path == ["spec", "template", "metadata", "finalizers"]
}

test_revision_annotation if {
	revs := ops(fixtures.job, "policyRevision")
	count(revs) == 2
	every op in revs {
		op.value == "test-rev"
	}
}

test_profile_recorded_on_pods if {
	job := fixtures.job_with({"metadata": {"annotations": {"flowforge.io/profile": "small"}}})
	ops(job, "podAnnotations") == {mutate.merge_op(
		"podAnnotations",
		["spec", "template", "metadata", "annotations"],
		{"flowforge.io/profile": "small"},
	)}
}
