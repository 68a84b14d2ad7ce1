package flowforge.mutate_test

import data.flowforge.lib.fixtures
import data.flowforge.mutate

ops(job, setting) := {op | some op in mutate.patch with input as fixtures.job_input(job); op.setting == setting}

test_only_labelled_jobs_on_create if {
	count(mutate.patch with input as fixtures.job_input(fixtures.job)) > 0
	unlabelled := json.patch(fixtures.job, [{"op": "remove", "path": "/metadata/labels/app"}])
	count(mutate.patch with input as fixtures.job_input(unlabelled)) == 0
	update := fixtures.update_input(fixtures.job_kind, fixtures.job, fixtures.job)
	count(mutate.patch with input as update) == 0
	pod := {"metadata": {"labels": {"app": "flowforge"}}, "spec": {"containers": [{"name": "c"}]}}
	count(mutate.patch with input as fixtures.pod_input(pod)) == 0
}

test_every_op_is_well_formed if {
	every op in mutate.patch with input as fixtures.job_input(fixtures.job) {
		op.op in {"set", "default", "merge", "union", "add"}
		is_string(op.setting)
		is_array(op.path)
	}
}
