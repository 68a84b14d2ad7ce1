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

ttl_key := "flowforge.io/ttl-seconds-after-finished"

ttl_set(value) := mutate.set_op("ttlSecondsAfterFinished", ["metadata", "annotations", ttl_key], value)

ttl_remove := {"setting": "ttlSecondsAfterFinished", "op": "remove", "path": ["spec", "ttlSecondsAfterFinished"]}

ttl_warnings(job) := {w | some w in mutate.warn with input as fixtures.job_input(job); contains(w, "ttl")}

test_ttl_default_goes_to_the_annotation if {
	ops(fixtures.job, "ttlSecondsAfterFinished") == {ttl_set("3600")}
	count(ttl_warnings(fixtures.job)) == 0
}

test_ttl_from_spec_moved_to_the_annotation if {
	short := fixtures.job_with({"spec": {"ttlSecondsAfterFinished": 1}})
	ops(short, "ttlSecondsAfterFinished") == {ttl_set("1"), ttl_remove}
	ttl_warnings(short) == {"spec.ttlSecondsAfterFinished: FlowForge deletes the Job itself once its logs are exported; the TTL (1 s) was moved to the annotation flowforge.io/ttl-seconds-after-finished"}
	zero := fixtures.job_with({"spec": {"ttlSecondsAfterFinished": 0}})
	ops(zero, "ttlSecondsAfterFinished") == {ttl_set("0"), ttl_remove}
}

test_ttl_from_spec_clamped if {
	long := fixtures.job_with({"spec": {"ttlSecondsAfterFinished": 999999}})
	ops(long, "ttlSecondsAfterFinished") == {ttl_set("86400"), ttl_remove}
	ttl_warnings(long) == {"spec.ttlSecondsAfterFinished: 999999 is above the maximum; the annotation flowforge.io/ttl-seconds-after-finished was set to 86400"}
}

test_ttl_null_in_spec_is_removed_and_defaulted if {
	job := fixtures.job_with({"spec": {"ttlSecondsAfterFinished": null}})
	ops(job, "ttlSecondsAfterFinished") == {ttl_set("3600"), ttl_remove}
}

test_ttl_annotation_kept_or_clamped if {
	own := fixtures.job_with({"metadata": {"annotations": {ttl_key: "120"}}})
	ops(own, "ttlSecondsAfterFinished") == {ttl_set("120")}
	count(ttl_warnings(own)) == 0

	long := fixtures.job_with({"metadata": {"annotations": {ttl_key: "100000"}}})
	ops(long, "ttlSecondsAfterFinished") == {ttl_set("86400")}
	ttl_warnings(long) == {"metadata.annotations[flowforge.io/ttl-seconds-after-finished]: 100000 is above the maximum and was set to 86400"}
}

test_ttl_annotation_wins_over_spec if {
	both := fixtures.job_with({"metadata": {"annotations": {ttl_key: "60"}}, "spec": {"ttlSecondsAfterFinished": 5}})
	ops(both, "ttlSecondsAfterFinished") == {ttl_set("60"), ttl_remove}
}

test_ttl_malformed_annotation_left_for_validation if {
	bad := fixtures.job_with({"metadata": {"annotations": {ttl_key: "1h"}}, "spec": {"ttlSecondsAfterFinished": 5}})
	ops(bad, "ttlSecondsAfterFinished") == {ttl_remove}
}

test_ttl_without_export_uses_the_builtin_controller if {
	ops(fixtures.job, "ttlSecondsAfterFinished") == {mutate.default_op("ttlSecondsAfterFinished", ["spec", "ttlSecondsAfterFinished"], 3600)} with data.flowforge.config.export.enabled as false
	long := fixtures.job_with({"spec": {"ttlSecondsAfterFinished": 999999}})
	some op in ops(long, "ttlSecondsAfterFinished") with data.flowforge.config.export.enabled as false
	op == mutate.set_op("ttlSecondsAfterFinished", ["spec", "ttlSecondsAfterFinished"], 86400)
	ttl_warnings(long) == {"spec.ttlSecondsAfterFinished: 999999 is above the maximum and was set to 86400"} with data.flowforge.config.export.enabled as false
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
	op.op == "copy"
	op.from == ["metadata", "labels"]
	op.value == ["app", "component", "job-id", "user-id"]
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
