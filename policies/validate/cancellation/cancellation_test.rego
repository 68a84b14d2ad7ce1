package flowforge.validate.cancellation_test

import data.flowforge.lib.fixtures
import data.flowforge.validate
import data.flowforge.validate.testing as t

cancel_request(by) := {
	"flowforge.io/cancel-requested-by": by,
	"flowforge.io/cancel-requested-at": "2026-12-01T10:00:00Z",
	"flowforge.io/cancel-reason": "not needed",
}

cancelled(by) := json.patch(fixtures.hardened_job, [t.set("/metadata/annotations", object.union(fixtures.hardened_job.metadata.annotations, cancel_request(by)))])

update_as(old, new, user, groups) := r if {
	req := object.union(fixtures.job_update_input(old, new), {"request": {"userInfo": {"username": user, "groups": groups}}})
	r := validate.deny with input as req
}

test_owner_cancels if {
	count(update_as(fixtures.hardened_job, cancelled("u1"), "u1", ["system:authenticated"])) == 0
}

test_canceller_group_cancels if {
	count(update_as(fixtures.hardened_job, cancelled("ops-1"), "ops-1", ["system:masters"])) == 0
}

test_canceller_user_cancels if {
	count(update_as(fixtures.hardened_job, cancelled("backend"), "backend", [])) == 0 with data.flowforge.config.identity.cancellers as {"users": ["backend"]}
}

test_non_owner_may_not_cancel if {
	update_as(fixtures.hardened_job, cancelled("bob"), "bob", ["system:authenticated"]) == {{
		"msg": "\"bob\" may not cancel this Job: only its owner (user-id \"u1\") or the cancellers in policy data identity.cancellers may",
		"field": "metadata.annotations[flowforge.io/cancel-requested-at]",
	}}
}

test_recorded_requester_must_be_the_requester if {
	update_as(fixtures.hardened_job, cancelled("someone-else"), "u1", []) == {{
		"msg": "flowforge.io/cancel-requested-by must name the requester \"u1\" (from the request's authenticated user), not \"someone-else\"; clients set it to their own username (kubectl auth whoami), only trusted submitters may name another user",
		"field": "metadata.annotations[flowforge.io/cancel-requested-by]",
	}}
}

test_cancel_without_requester_denied if {
	new := json.patch(cancelled("u1"), [t.remove("/metadata/annotations/flowforge.io~1cancel-requested-by")])
	t.fields(update_as(fixtures.hardened_job, new, "u1", [])) == {"metadata.annotations[flowforge.io/cancel-requested-by]"}
}

test_non_owner_recording_the_owner_denied_twice if {
	t.fields(update_as(fixtures.hardened_job, cancelled("u1"), "bob", [])) == {
		"metadata.annotations[flowforge.io/cancel-requested-by]",
		"metadata.annotations[flowforge.io/cancel-requested-at]",
	}
}

test_recorded_request_is_immutable if {
	old := cancelled("u1")
	rewritten := json.patch(old, [t.set("/metadata/annotations/flowforge.io~1cancel-requested-by", "ops-1")])
	update_as(old, rewritten, "ops-1", ["system:masters"]) == {{
		"msg": "a cancel request is recorded and cannot be changed or withdrawn (flowforge.io/cancel-requested-by was \"u1\")",
		"field": "metadata.annotations[flowforge.io/cancel-requested-by]",
	}}
	withdrawn := json.patch(old, [t.remove("/metadata/annotations/flowforge.io~1cancel-requested-at")])
	t.fields(update_as(old, withdrawn, "u1", [])) == {"metadata.annotations[flowforge.io/cancel-requested-at]"}
}

test_other_updates_of_a_cancelled_job_admitted if {
	old := cancelled("u1")
	new := json.patch(old, [t.set("/metadata/finalizers", []), t.set("/spec/activeDeadlineSeconds", 10)])
	count(update_as(old, new, "system:serviceaccount:flowforge-system:flowforge-controller", [])) == 0
}

test_create_records_only_the_creator if {
	t.fields(t.job_deny(cancelled("bob"))) == {"metadata.annotations[flowforge.io/cancel-requested-by]"}
	count(t.job_deny(cancelled("u1"))) == 0
}

test_trusted_submitter_cancels_on_behalf_of_a_user if {
	count(update_as(fixtures.hardened_job, cancelled("u1"), "flowforge-admin", ["system:masters"])) == 0
	backend := "system:serviceaccount:flowforge-system:flowforge-backend"
	count(update_as(fixtures.hardened_job, cancelled("u1"), backend, [])) == 0 with data.flowforge.config.identity.trustedSubmitters as {"users": [backend]}
		with data.flowforge.config.identity.cancellers as {"users": [backend]}
}

test_trusted_submitter_must_still_be_a_canceller if {
	backend := "system:serviceaccount:flowforge-system:flowforge-backend"
	t.fields(update_as(fixtures.hardened_job, cancelled("u1"), backend, [])) == {"metadata.annotations[flowforge.io/cancel-requested-at]"} with data.flowforge.config.identity.trustedSubmitters as {"users": [backend]}
}

test_request_completed_in_two_steps if {
	# A reason first, then the request itself: not yet recorded, so the
	# second step is a new request, checked as such.
	reason_only := json.patch(fixtures.hardened_job, [t.set("/metadata/annotations/flowforge.io~1cancel-reason", "soon")])
	t.fields(update_as(fixtures.hardened_job, reason_only, "u1", [])) == {"metadata.annotations[flowforge.io/cancel-requested-by]"}
	by_only := json.patch(fixtures.hardened_job, [t.set("/metadata/annotations/flowforge.io~1cancel-requested-by", "u1")])
	count(update_as(fixtures.hardened_job, by_only, "u1", [])) == 0
	count(update_as(by_only, cancelled("u1"), "u1", [])) == 0
	t.fields(update_as(by_only, cancelled("u1"), "bob", [])) == {
		"metadata.annotations[flowforge.io/cancel-requested-by]",
		"metadata.annotations[flowforge.io/cancel-requested-at]",
	}
}
