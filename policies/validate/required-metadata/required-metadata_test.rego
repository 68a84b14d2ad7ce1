package flowforge.validate.required_metadata_test

import data.flowforge.lib.fixtures
import data.flowforge.validate.testing as t

test_missing_labels_denied if {
	obj := t.job([t.remove("/metadata/labels/job-id"), t.set("/metadata/labels/user-id", "")])
	t.job_deny(obj) == {
		{"msg": "label job-id is required", "field": "metadata.labels[job-id]"},
		{"msg": "label user-id is required", "field": "metadata.labels[user-id]"},
		# The own git-credentials Secret is now another job's.
		{
			"msg": "secret \"git-credentials-abc\" holds another job's git credentials (this object has no job-id label)",
			"field": "spec.template.spec.containers[0].env[2].valueFrom.secretKeyRef.name",
		},
	}
}

test_missing_label_on_pod_denied if {
	t.fields(t.pod_deny(t.pod([t.remove("/metadata/labels/user-id")]))) == {"metadata.labels[user-id]"}
}

test_labels_present_admitted if {
	fixtures.hardened_job.metadata.labels["user-id"] == "u1"
	count(t.job_deny(fixtures.hardened_job)) == 0
}

test_missing_repository_warned if {
	obj := t.job([t.remove("/metadata/annotations/flowforge.io~1repository")])
	count(t.job_deny(obj)) == 0
	{
		"msg": "the Job has no flowforge.io/repository annotation: nothing records which repository it works on",
		"field": "metadata.annotations[flowforge.io/repository]",
	} in t.job_warn(obj)
	not "metadata.annotations[flowforge.io/repository]" in t.fields(t.job_warn(fixtures.hardened_job))

	# Pods do not carry it.
	not "metadata.annotations[flowforge.io/repository]" in t.fields(t.pod_warn(fixtures.pod))
}
