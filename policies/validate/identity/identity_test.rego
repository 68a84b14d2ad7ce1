package flowforge.validate.identity_test

import data.flowforge.lib.fixtures
import data.flowforge.validate
import data.flowforge.validate.testing as t

# create_as: a CREATE of obj sent by user (with groups), with the given
# job-id claims.
create_as(obj, user, groups, claims) := object.union(fixtures.job_input(obj), {
	"request": {"userInfo": {"username": user, "groups": groups}},
	"claims": {"jobID": claims},
})

deny_as(obj, user, groups) := r if {
	r := validate.deny with input as create_as(obj, user, groups, [])
}

deny_with_claims(claims) := r if {
	r := validate.deny with input as create_as(fixtures.hardened_job, "u1", [], claims)
}

test_owner_admitted if {
	count(deny_as(fixtures.hardened_job, "u1", ["system:authenticated"])) == 0
}

test_other_user_id_denied if {
	deny_as(fixtures.hardened_job, "bob", ["system:authenticated"]) == {{
		"msg": "user-id \"u1\" is not the requester: \"bob\" may only create Jobs with user-id \"bob\" (or be a trusted submitter in policy data identity.trustedSubmitters)",
		"field": "metadata.labels[user-id]",
	}}
}

test_unsafe_username_is_told_its_user_id if {
	denials := deny_as(fixtures.hardened_job, "bob@example.com", [])
	t.fields(denials) == {"metadata.labels[user-id]"}
	some d in denials
	contains(d.msg, sprintf("user-id %q", [concat("", ["id.", substring(crypto.sha256("bob@example.com"), 0, 16)])]))
}

test_service_account_owner_admitted if {
	obj := t.job([t.set("/metadata/labels/user-id", "sa.ci.runner")])
	count(deny_as(obj, "system:serviceaccount:ci:runner", ["system:serviceaccounts"])) == 0
	t.fields(deny_as(obj, "system:serviceaccount:ci:other", ["system:serviceaccounts"])) == {"metadata.labels[user-id]"}
}

test_trusted_group_admitted_with_any_user_id if {
	count(deny_as(fixtures.hardened_job, "flowforge-admin", ["system:masters", "system:authenticated"])) == 0
}

test_trusted_user_admitted_with_any_user_id if {
	backend := "system:serviceaccount:flowforge-system:flowforge-backend"
	trusted := {"users": [backend], "groups": []}
	count(deny_as(fixtures.hardened_job, backend, ["system:serviceaccounts"])) == 0 with data.flowforge.config.identity.trustedSubmitters as trusted
	t.fields(deny_as(fixtures.hardened_job, "flowforge-admin", ["system:masters"])) == {"metadata.labels[user-id]"} with data.flowforge.config.identity.trustedSubmitters as trusted
}

test_missing_user_id_is_required_metadatas_business if {
	obj := t.job([t.remove("/metadata/labels/user-id")])
	denials := deny_as(obj, "bob", [])
	t.fields(denials) == {"metadata.labels[user-id]"}
	count(denials) == 1
	some d in denials
	not contains(d.msg, "not the requester")
}

test_update_by_another_user_is_not_a_claim if {
	old := fixtures.hardened_job
	new := t.job([t.set("/metadata/finalizers", [])])
	req := object.union(fixtures.job_update_input(old, new), {"request": {"userInfo": {"username": "system:serviceaccount:flowforge-system:flowforge-controller"}}})
	count(validate.deny) == 0 with input as req
}

test_pod_created_by_the_job_controller_admitted if {
	req := object.union(fixtures.pod_input(fixtures.pod), {"request": {"userInfo": {"username": "system:serviceaccount:kube-system:job-controller"}}})
	count(validate.deny) == 0 with input as req
}

test_unlabelled_job_ignored if {
	obj := t.job([t.remove("/metadata/labels/app")])
	count(deny_as(obj, "bob", [])) == 0
}

test_job_id_held_by_another_job_denied if {
	deny_with_claims([{"name": "other", "uid": "uid-1", "source": "cluster"}]) == {{
		"msg": "job-id \"abc\" belongs to another Job: Job \"other\" (uid uid-1) exists; a job id names one Job, choose a new one",
		"field": "metadata.labels[job-id]",
	}}
}

test_job_id_in_the_history_denied_even_under_the_same_name if {
	deny_with_claims([{"name": "claude-job-abc", "uid": "uid-0", "source": "history"}]) == {{
		"msg": "job-id \"abc\" belongs to another Job: Job \"claude-job-abc\" (uid uid-0) is in the history; a job id names one Job, choose a new one",
		"field": "metadata.labels[job-id]",
	}}
}

test_retried_create_of_the_same_job_admitted if {
	count(deny_with_claims([{"name": "claude-job-abc", "uid": "uid-0", "source": "cluster"}])) == 0
}

test_every_holder_is_named if {
	denials := deny_with_claims([
		{"name": "claude-job-abc", "uid": "uid-0", "source": "cluster"},
		{"name": "x", "uid": "uid-1", "source": "cluster"},
		{"name": "y", "uid": "uid-2", "source": "history"},
	])
	count(denials) == 2
	t.fields(denials) == {"metadata.labels[job-id]"}
}

test_unknown_claims_fail_closed if {
	req := object.remove(fixtures.job_input(fixtures.hardened_job), ["claims"])
	validate.deny == {{
		"msg": "FlowForge could not check whether another Job claims this job-id, so the Job is denied",
		"field": "metadata.labels[job-id]",
	}} with input as req
}

test_unknown_claims_fail_closed_for_a_pod if {
	req := object.remove(fixtures.pod_input(fixtures.pod), ["claims"])
	validate.deny == {{
		"msg": "FlowForge could not check which Job holds this job-id, so the Pod is denied",
		"field": "metadata.labels[job-id]",
	}} with input as req
}

# pod_create_as: a Pod CREATE sent by user, owned by the Job of owner_uid,
# with the given job-id claims.
pod_create_as(user, owner_uid, claims) := r if {
	pod := json.patch(fixtures.pod, [t.set("/metadata/ownerReferences", [{"apiVersion": "batch/v1", "kind": "Job", "name": "claude-job-abc", "uid": owner_uid, "controller": true}])])
	req := object.union(fixtures.pod_input(pod), {"request": {"userInfo": {"username": user}}, "claims": {"jobID": claims}})
	r := validate.deny with input as req
}

job_controller := "system:serviceaccount:kube-system:job-controller"

holder_abc := {"name": "claude-job-abc", "uid": "uid-abc", "source": "cluster"}

test_pod_of_the_holding_job_admitted if {
	count(pod_create_as(job_controller, "uid-abc", [holder_abc])) == 0
	count(pod_create_as("system:kube-controller-manager", "uid-abc", [holder_abc])) == 0
}

test_pod_with_a_fresh_job_id_admitted if {
	count(pod_create_as("u1", "uid-abc", [])) == 0
}

test_pod_borrowing_a_jobs_id_denied if {
	# Created directly, even with a forged owner reference.
	pod_create_as("u1", "uid-abc", [holder_abc]) == {{
		"msg": "job-id \"abc\" belongs to Job \"claude-job-abc\": only the Job controller may create Pods with it, for that Job",
		"field": "metadata.labels[job-id]",
	}}

	# By the Job controller, for another Job.
	t.fields(pod_create_as(job_controller, "uid-other", [holder_abc])) == {"metadata.labels[job-id]"}

	# For a Job that is only in the history.
	t.fields(pod_create_as(job_controller, "uid-abc", [object.union(holder_abc, {"source": "history"})])) == {"metadata.labels[job-id]"}

	# By another controller (a ReplicaSet's pods).
	t.fields(pod_create_as("system:serviceaccount:kube-system:replicaset-controller", "uid-abc", [holder_abc])) == {"metadata.labels[job-id]"}
}

test_pod_without_owner_reference_denied if {
	req := object.union(fixtures.pod_input(fixtures.pod), {"request": {"userInfo": {"username": job_controller}}, "claims": {"jobID": [holder_abc]}})
	t.fields(validate.deny) == {"metadata.labels[job-id]"} with input as req
}

test_pod_update_is_not_a_claim if {
	req := object.union(fixtures.pod_update_input(fixtures.pod, fixtures.pod, ""), {"claims": {"jobID": [holder_abc]}})
	count(validate.deny) == 0 with input as req
}
