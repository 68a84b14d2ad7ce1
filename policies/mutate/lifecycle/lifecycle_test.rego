package flowforge.mutate_test

import data.flowforge.lib.fixtures
import data.flowforge.mutate

grace_path := ["spec", "template", "spec", "terminationGracePeriodSeconds"]

test_grace_period_default if {
	ops(fixtures.job, "terminationGracePeriodSeconds") == {mutate.default_op("terminationGracePeriodSeconds", grace_path, 30)}
}

test_grace_period_api_server_default_counts_as_unset if {
	defaulted := fixtures.job_with({"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 30}}}})
	ops(defaulted, "terminationGracePeriodSeconds") == {
		mutate.default_op("terminationGracePeriodSeconds", grace_path, 10),
		mutate.set_op("terminationGracePeriodSeconds", grace_path, 10),
	} with data.flowforge.config.job.terminationGracePeriodSeconds.default as 10

	# A user's own value stays (validation bounds it).
	own := fixtures.job_with({"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 45}}}})
	ops(own, "terminationGracePeriodSeconds") == {mutate.default_op("terminationGracePeriodSeconds", grace_path, 10)} with data.flowforge.config.job.terminationGracePeriodSeconds.default as 10
}

test_backoff_limit_per_index_left_alone if {
	# Sent without backoffLimit: the API server has already set MaxInt32.
	defaulted := fixtures.job_with({"spec": {"completionMode": "Indexed", "completions": 4, "backoffLimitPerIndex": 1, "backoffLimit": 2147483647}})
	count(ops(defaulted, "backoffLimit")) == 0

	# Offline (no API server defaults): left unset too.
	offline := fixtures.job_with({"spec": {"completionMode": "Indexed", "completions": 4, "backoffLimitPerIndex": 1}})
	count(ops(offline, "backoffLimit")) == 0

	# Without backoffLimitPerIndex the API server's 6 is still replaced.
	ops(fixtures.job_with({"spec": {"backoffLimit": 6}}), "backoffLimit") == {mutate.set_op("backoffLimit", ["spec", "backoffLimit"], 2)}
}
