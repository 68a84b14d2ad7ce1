package flowforge.validate.job_limits_test

import data.flowforge.validate
import data.flowforge.validate.testing as t

timeout(value) := t.job([t.set("/metadata/annotations/flowforge.io~1timeout", value)])

test_missing_deadline_denied if {
	obj := t.job([t.remove("/spec/activeDeadlineSeconds")])
	t.job_deny(obj) == {{"msg": "spec.activeDeadlineSeconds is required (at most 14400)", "field": "spec.activeDeadlineSeconds"}}
}

test_deadline_above_maximum_denied if {
	obj := t.job([t.set("/spec/activeDeadlineSeconds", 86400)])
	t.job_deny(obj) == {{"msg": "spec.activeDeadlineSeconds 86400 is above the maximum 14400", "field": "spec.activeDeadlineSeconds"}}
}

test_deadline_at_maximum_admitted if {
	count(t.job_deny(t.job([t.set("/spec/activeDeadlineSeconds", 14400)]))) == 0
}

test_unparsable_timeout_denied if {
	t.job_deny(timeout("soon")) == {{
		"msg": "timeout \"soon\" is neither a number of seconds nor a duration like \"90m\"",
		"field": "metadata.annotations[flowforge.io/timeout]",
	}}
	t.fields(t.job_deny(timeout("5x"))) == {"metadata.annotations[flowforge.io/timeout]"}
	t.fields(t.job_deny(timeout(""))) == {"metadata.annotations[flowforge.io/timeout]"}
}

test_timeout_above_maximum_denied if {
	t.job_deny(timeout("5h")) == {{
		"msg": "timeout \"5h\" is above the maximum of 14400 seconds",
		"field": "metadata.annotations[flowforge.io/timeout]",
	}}
	t.fields(t.job_deny(timeout("14401"))) == {"metadata.annotations[flowforge.io/timeout]"}
}

test_timeout_below_one_second_denied if {
	t.job_deny(timeout("0")) == {{"msg": "timeout \"0\" is less than 1 second", "field": "metadata.annotations[flowforge.io/timeout]"}}
	t.fields(t.job_deny(timeout("-10m"))) == {"metadata.annotations[flowforge.io/timeout]"}
	t.fields(t.job_deny(timeout("100ms"))) == {"metadata.annotations[flowforge.io/timeout]"}
}

test_timeouts_within_maximum_admitted if {
	count(t.job_deny(timeout("1800"))) == 0
	count(t.job_deny(timeout("4h"))) == 0
	count(t.job_deny(timeout("1h30m"))) == 0
	count(t.job_deny(timeout("1.5h"))) == 0
}

test_timeout_seconds if {
	validate.timeout_seconds == 5400 with input.request.object.metadata.annotations as {"flowforge.io/timeout": "1h30m"}
	validate.timeout_seconds == 90 with input.request.object.metadata.annotations as {"flowforge.io/timeout": "90"}
	not validate.timeout_seconds with input.request.object.metadata.annotations as {"flowforge.io/timeout": "1 hour"}
}

test_backoff_limit_above_maximum_denied if {
	obj := t.job([t.set("/spec/backoffLimit", 100)])
	t.job_deny(obj) == {{"msg": "spec.backoffLimit 100 is above the maximum 5", "field": "spec.backoffLimit"}}
	count(t.job_deny(t.job([t.set("/spec/backoffLimit", 5)]))) == 0
}

test_job_limits_do_not_apply_to_pods if {
	obj := t.pod([
		t.set("/metadata/annotations/flowforge.io~1timeout", "soon"),
		t.set("/spec/activeDeadlineSeconds", 999999),
	])

	# Only the pod's own deadline rule (pod-deadline/) speaks: no timeout
	# annotation or Job deadline rule.
	t.pod_deny(obj) == {{"msg": "spec.activeDeadlineSeconds 999999 is above the maximum 14400 for a pod's own deadline", "field": "spec.activeDeadlineSeconds"}}
}
