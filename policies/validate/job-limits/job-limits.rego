# Job deadline and retries.
#
# Jobs only. Denies:
#   spec.activeDeadlineSeconds missing (the mutation always sets it, so
#     absence means it did not run) or above config.job.activeDeadlineSeconds.max;
#   the timeout annotation (config.annotations.timeout) when it is not a
#     number of seconds or a Go duration, below 1 second, or above the
#     maximum (field metadata.annotations[flowforge.io/timeout]);
#   spec.backoffLimit above config.job.backoffLimit.max, unless the Job
#     retries per index (backoffLimitPerIndex, bounded in job-lifecycle/):
#     the API server then defaults backoffLimit to MaxInt32, which is not a
#     choice of the user's.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

max_deadline := config.job.activeDeadlineSeconds.max

# A Go duration ("1h30m", "90s", "1.5h"). Checked before parsing, so that
# parsing never fails.
duration_pattern := `^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`

# timeout_seconds: the timeout annotation in seconds, as the mutation reads
# it; undefined when it is unparsable.
timeout_seconds := to_number(raw) if {
	raw := k8s.annotations[timeout_annotation]
	regex.match(`^[0-9]+$`, raw)
}

timeout_seconds := round(time.parse_duration_ns(raw) / 1000000000) if {
	raw := k8s.annotations[timeout_annotation]
	regex.match(duration_pattern, raw)
}

violation contains {
	"msg": sprintf("spec.activeDeadlineSeconds is required (at most %d)", [max_deadline]),
	"field": "spec.activeDeadlineSeconds",
} if {
	applies
	k8s.is_job
	object.get(k8s.obj, ["spec", "activeDeadlineSeconds"], null) == null
}

violation contains {
	"msg": sprintf("spec.activeDeadlineSeconds %v is above the maximum %d", [deadline, max_deadline]),
	"field": "spec.activeDeadlineSeconds",
} if {
	applies
	k8s.is_job
	deadline := k8s.obj.spec.activeDeadlineSeconds
	deadline > max_deadline
}

violation contains {
	"msg": sprintf("timeout %q is neither a number of seconds nor a duration like \"90m\"", [raw]),
	"field": annotation_field(timeout_annotation),
} if {
	applies
	k8s.is_job
	raw := k8s.annotations[timeout_annotation]
	not timeout_seconds
}

violation contains {
	"msg": sprintf("timeout %q is above the maximum of %d seconds", [k8s.annotations[timeout_annotation], max_deadline]),
	"field": annotation_field(timeout_annotation),
} if {
	applies
	k8s.is_job
	timeout_seconds > max_deadline
}

violation contains {
	"msg": sprintf("timeout %q is less than 1 second", [k8s.annotations[timeout_annotation]]),
	"field": annotation_field(timeout_annotation),
} if {
	applies
	k8s.is_job
	timeout_seconds < 1
}

violation contains {
	"msg": sprintf("spec.backoffLimit %v is above the maximum %d", [limit, config.job.backoffLimit.max]),
	"field": "spec.backoffLimit",
} if {
	applies
	k8s.is_job
	limit := k8s.obj.spec.backoffLimit
	limit > config.job.backoffLimit.max
	object.get(k8s.obj, ["spec", "backoffLimitPerIndex"], null) == null
}
