# Identity: the user-id and job-id labels bound to the requester.
#
# CREATE only: a Job's or Pod's labels cannot change afterwards (see
# update/), and an UPDATE is not a claim. Denies:
#   a user-id label that is not the requester's user id
#     (data.flowforge.lib.identity.user_id), unless the requester is a
#     trusted submitter (config.identity.trustedSubmitters: users or
#     groups); field metadata.labels[user-id];
#   a job-id that another Job in the namespace already claims: a Job that
#     exists under another name, or one recorded in the history
#     (input.claims.jobID, gathered by the webhook from its local caches
#     before evaluation; see docs/policies.md); a retried create of the same
#     Job (same name) while it exists is not a second claim, the API server
#     answers it with AlreadyExists; field metadata.labels[job-id];
#   a Job whose claims the webhook could not gather (no input.claims): the
#     check fails closed;
#   CREATE of a labelled Pod whose job-id a Job holds (input.claims.jobID,
#     when the webhook gathered it), unless the requester is a Job
#     controller (config.identity.jobControllers) and the Pod's controller
#     owner is a Job that holds the job-id and exists: a Pod created
#     directly or by another controller cannot borrow a job's id, and with
#     it the job's git credentials; field metadata.labels[job-id].
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.identity
import data.flowforge.lib.k8s

identity_applies if {
	applies
	k8s.is_job
	k8s.operation == "CREATE"
}

trusted_submitter if identity.member(config.identity.trustedSubmitters)

claimed_user_id := object.get(k8s.labels, config.identity.userIDLabel, "")

claimed_job_id := object.get(k8s.labels, config.identity.jobIDLabel, "")

identity_violation contains {
	"msg": sprintf("%s %q is not the requester: %q may only create Jobs with %s %q (or be a trusted submitter in policy data identity.trustedSubmitters)", [
		config.identity.userIDLabel, claimed_user_id,
		identity.username, config.identity.userIDLabel, identity.requester_user_id,
	]),
	"field": label_field(config.identity.userIDLabel),
} if {
	identity_applies
	claimed_user_id != ""
	claimed_user_id != identity.requester_user_id
	not trusted_submitter
}

job_id_claims := input.claims.jobID

# A holder is another Job with this job-id: live under another name, or in
# the history (a Job that is gone, whatever its name).
second_claim(holder) if holder.name != object.get(k8s.obj, ["metadata", "name"], "")

second_claim(holder) if holder.source == "history"

holder_text(holder) := sprintf("Job %q (uid %s) exists", [holder.name, holder.uid]) if holder.source != "history"

holder_text(holder) := sprintf("Job %q (uid %s) is in the history", [holder.name, holder.uid]) if holder.source == "history"

identity_violation contains {
	"msg": sprintf("%s %q belongs to another Job: %s; a job id names one Job, choose a new one", [config.identity.jobIDLabel, claimed_job_id, holder_text(holder)]),
	"field": label_field(config.identity.jobIDLabel),
} if {
	identity_applies
	claimed_job_id != ""
	some holder in job_id_claims
	second_claim(holder)
}

identity_violation contains {
	"msg": sprintf("FlowForge could not check whether another Job claims this %s, so the Job is denied", [config.identity.jobIDLabel]),
	"field": label_field(config.identity.jobIDLabel),
} if {
	identity_applies
	claimed_job_id != ""
	not is_array(object.get(input, ["claims", "jobID"], null))
}

identity_violation contains {
	"msg": sprintf("FlowForge could not check which Job holds this %s, so the Pod is denied", [config.identity.jobIDLabel]),
	"field": label_field(config.identity.jobIDLabel),
} if {
	input.request.kind.kind == "Pod" # k8s.is_pod, read directly: the rule index skips the body for a Job
	applies
	k8s.operation == "CREATE"
	claimed_job_id != ""
	not is_array(object.get(input, ["claims", "jobID"], null))
}

# A Pod of a Job that holds the job-id, created by the Job controller.
pod_of_holder if {
	identity.member(config.identity.jobControllers)
	some ref in object.get(k8s.obj, ["metadata", "ownerReferences"], [])
	object.get(ref, "controller", false) == true
	ref.kind == "Job"
	some holder in job_id_claims
	holder.source == "cluster"
	holder.uid == ref.uid
}

identity_violation contains {
	"msg": sprintf("%s %q belongs to Job %q: only the Job controller may create Pods with it, for that Job", [config.identity.jobIDLabel, claimed_job_id, holder.name]),
	"field": label_field(config.identity.jobIDLabel),
} if {
	input.request.kind.kind == "Pod"
	applies
	k8s.operation == "CREATE"
	claimed_job_id != ""
	some holder in job_id_claims
	not pod_of_holder
}
