# Cancellation: who asked, as the API server authenticated them, and
# whether they may.
#
# A cancel request is the annotations config.identity.cancelAnnotations
# (requested-by, requested-at, reason) on a labelled Job; the FlowForge
# controller acts on it and records requested-by in the history as the
# canceller. Denies:
#   CREATE or UPDATE that records a requester other than the requester of
#     the request itself (input.request.userInfo.username), so the record
#     is never a free-text claim, unless the requester is a trusted
#     submitter (config.identity.trustedSubmitters), who acts on behalf of
#     users as it does when it creates their Jobs; field
#     metadata.annotations[<requested-by>];
#   UPDATE that adds a cancel request when the requester is neither the
#     Job's owner (their user id is the Job's user-id label, see
#     lib/identity.rego) nor listed in config.identity.cancellers (users or
#     groups); field metadata.annotations[<requested-at>];
#   UPDATE that changes, adds to or withdraws a cancel request once one is
#     recorded (requested-at is set); field metadata.annotations[<the key>].
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.identity
import data.flowforge.lib.k8s

cancel_annotations := config.identity.cancelAnnotations

cancel_keys := {cancel_annotations.requestedBy, cancel_annotations.requestedAt, cancel_annotations.reason}

cancel_requester_text(recorded) := sprintf("%s must name the requester %q (from the request's authenticated user), not %q; clients set it to their own username (kubectl auth whoami), only trusted submitters may name another user", [
	cancel_annotations.requestedBy, identity.username, recorded,
])

identity_violation contains {
	"msg": cancel_requester_text(recorded),
	"field": annotation_field(cancel_annotations.requestedBy),
} if {
	recorded := k8s.annotations[cancel_annotations.requestedBy]
	applies
	k8s.is_job
	k8s.operation == "CREATE"
	recorded != identity.username
	not trusted_submitter
}

cancel_update if {
	update_applies
	k8s.is_job
}

# A request is recorded once requested-at is set: the controller acts on it.
cancel_recorded if old_annotations[cancel_annotations.requestedAt]

cancel_changed contains key if {
	cancel_update
	some key in cancel_keys
	object.get(k8s.annotations, key, null) != object.get(old_annotations, key, null)
}

cancel_owner if {
	old_owner := old_labels[config.identity.userIDLabel]
	old_owner == identity.requester_user_id
}

may_cancel if cancel_owner

may_cancel if identity.member(config.identity.cancellers)

update_violation contains {
	"msg": sprintf("a cancel request is recorded and cannot be changed or withdrawn (%s was %q)", [key, object.get(old_annotations, key, "")]),
	"field": annotation_field(key),
} if {
	cancel_recorded
	some key in cancel_changed
}

update_violation contains {
	"msg": cancel_requester_text(recorded),
	"field": annotation_field(cancel_annotations.requestedBy),
} if {
	not cancel_recorded
	count(cancel_changed) > 0
	recorded := object.get(k8s.annotations, cancel_annotations.requestedBy, "")
	recorded != identity.username
	not trusted_submitter
}

update_violation contains {
	"msg": sprintf("%q may not cancel this Job: only its owner (%s %q) or the cancellers in policy data identity.cancellers may", [
		identity.username, config.identity.userIDLabel, object.get(old_labels, config.identity.userIDLabel, ""),
	]),
	"field": annotation_field(cancel_annotations.requestedAt),
} if {
	not cancel_recorded
	count(cancel_changed) > 0
	not may_cancel
}
