package flowforge.mutate_test

import data.flowforge.lib.fixtures
import data.flowforge.mutate

ops(job, setting) := {op | some op in mutate.patch with input as fixtures.job_input(job); op.setting == setting}

test_only_labelled_jobs_on_create if {
	labelled := mutate.patch with input as fixtures.job_input(fixtures.job)
	count(labelled) > 0
	unlabelled_job := json.patch(fixtures.job, [{"op": "remove", "path": "/metadata/labels/app"}])
	unlabelled := mutate.patch with input as fixtures.job_input(unlabelled_job)
	count(unlabelled) == 0
	update := mutate.patch with input as fixtures.update_input(fixtures.job_kind, fixtures.job, fixtures.job)
	count(update) == 0

	# Labelled Pods are hardened too (pod-lifecycle/); unlabelled ones are not.
	pod_obj := {"metadata": {"labels": {"app": "flowforge"}}, "spec": {"containers": [{"name": "c"}]}}
	pod := mutate.patch with input as fixtures.pod_input(pod_obj)
	count(pod) > 0
	unlabelled_pod := mutate.patch with input as fixtures.pod_input({"metadata": {}, "spec": pod_obj.spec})
	count(unlabelled_pod) == 0
}

test_every_op_is_well_formed if {
	all := mutate.patch with input as fixtures.job_input(fixtures.job)
	every op in all {
		op.op in {"set", "default", "merge", "union", "add", "copy"}
		is_string(op.setting)
		is_array(op.path)
	}
}
