package flowforge.validate.ttl_test

import data.flowforge.lib.fixtures
import data.flowforge.validate.testing as t

key := "flowforge.io/ttl-seconds-after-finished"

field := "metadata.annotations[flowforge.io/ttl-seconds-after-finished]"

annotated(value) := t.job([t.set("/metadata/annotations/flowforge.io~1ttl-seconds-after-finished", value)])

ttl_deny(job) := {v | some v in t.job_deny(job); v.field in {field, "spec.ttlSecondsAfterFinished"}}

test_hardened_ttl_admitted if {
	fixtures.hardened_job.metadata.annotations[key] == "3600"
	count(ttl_deny(fixtures.hardened_job)) == 0
	count(ttl_deny(annotated("0"))) == 0
	count(ttl_deny(annotated("86400"))) == 0
}

test_malformed_annotation_denied if {
	ttl_deny(annotated("1h")) == {{"msg": "\"1h\" is not a whole number of seconds (at most 86400)", "field": field}}
	t.fields(ttl_deny(annotated("-1"))) == {field}
	t.fields(ttl_deny(annotated(""))) == {field}
	t.fields(ttl_deny(annotated("1.5"))) == {field}
}

test_annotation_above_max_denied if {
	ttl_deny(annotated("86401")) == {{"msg": "86401 seconds is above the maximum of 86400", "field": field}}
	t.fields(ttl_deny(annotated("99999999999999999999"))) == {field}
}

test_spec_ttl_on_create_denied if {
	job := t.job([t.set("/spec/ttlSecondsAfterFinished", 60)])
	ttl_deny(job) == {{
		"msg": "spec.ttlSecondsAfterFinished is not allowed: FlowForge deletes a finished Job itself once its logs are exported; set the annotation flowforge.io/ttl-seconds-after-finished (seconds, at most 86400) instead",
		"field": "spec.ttlSecondsAfterFinished",
	}}
}

test_without_export_nothing_is_checked if {
	count(ttl_deny(annotated("1h"))) == 0 with data.flowforge.config.export.enabled as false
	count(ttl_deny(t.job([t.set("/spec/ttlSecondsAfterFinished", 60)]))) == 0 with data.flowforge.config.export.enabled as false
}
