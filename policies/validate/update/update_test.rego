package flowforge.validate.update_test

import data.flowforge.lib.fixtures
import data.flowforge.validate
import data.flowforge.validate.testing as t

old := fixtures.hardened_job

updated(ops) := json.patch(old, ops)

update_deny(ops) := t.job_update_deny(old, updated(ops))

# legacy: a Job admitted before FlowForge owned deletion, with its TTL in
# spec.ttlSecondsAfterFinished for the built-in TTL controller.
legacy := json.patch(old, [
	t.remove("/metadata/annotations/flowforge.io~1ttl-seconds-after-finished"),
	t.set("/spec/ttlSecondsAfterFinished", 3600),
])

legacy_update_deny(ops) := t.job_update_deny(legacy, json.patch(legacy, ops))

ttl_field := "metadata.annotations[flowforge.io/ttl-seconds-after-finished]"

test_ttl_set_in_spec_later_denied if {
	update_deny([t.set("/spec/ttlSecondsAfterFinished", 1)]) == {{
		"msg": "spec.ttlSecondsAfterFinished cannot be set: FlowForge deletes a finished Job itself once its logs are exported; lower the annotation flowforge.io/ttl-seconds-after-finished instead",
		"field": "spec.ttlSecondsAfterFinished",
	}}

	# With the export off, the built-in TTL controller is the one to use.
	count(update_deny([t.set("/spec/ttlSecondsAfterFinished", 1)])) == 0 with data.flowforge.config.export.enabled as false
}

test_ttl_annotation_raised_or_removed_denied if {
	update_deny([t.set("/metadata/annotations/flowforge.io~1ttl-seconds-after-finished", "7200")]) == {{
		"msg": "the annotation flowforge.io/ttl-seconds-after-finished cannot be raised from 3600 to 7200, only lowered",
		"field": ttl_field,
	}}
	update_deny([t.remove("/metadata/annotations/flowforge.io~1ttl-seconds-after-finished")]) == {{
		"msg": "the annotation flowforge.io/ttl-seconds-after-finished cannot be removed (it was \"3600\")",
		"field": ttl_field,
	}}
	count(update_deny([t.set("/metadata/annotations/flowforge.io~1ttl-seconds-after-finished", "0")])) == 0
}

test_ttl_annotation_made_malformed_denied if {
	t.fields(update_deny([t.set("/metadata/annotations/flowforge.io~1ttl-seconds-after-finished", "soon")])) == {ttl_field}
}

test_legacy_ttl_may_be_lowered if {
	count(legacy_update_deny([t.set("/spec/ttlSecondsAfterFinished", 2)])) == 0
	count(legacy_update_deny([t.set("/metadata/labels/team", "x")])) == 0
}

test_controller_updates_admitted if {
	count(update_deny([])) == 0
	count(update_deny([t.set("/metadata/finalizers", [])])) == 0
	count(update_deny([t.remove("/metadata/finalizers")])) == 0
	count(update_deny([t.set("/metadata/annotations/flowforge.io~1cancel", "true")])) == 0
	count(update_deny([t.set("/spec/activeDeadlineSeconds", 60)])) == 0
	count(update_deny([t.set("/metadata/annotations/flowforge.io~1ttl-seconds-after-finished", "60")])) == 0
	count(legacy_update_deny([t.set("/spec/ttlSecondsAfterFinished", 60)])) == 0
	count(update_deny([t.set("/spec/backoffLimit", 0)])) == 0
	count(update_deny([t.set("/spec/suspend", true)])) == 0
	count(update_deny([t.set("/metadata/labels/team", "x")])) == 0
	count(update_deny([t.set("/spec/template/spec/nodeSelector/zone", "a")])) == 0
	count(update_deny([t.set("/spec/template/spec/tolerations/-", {"key": "spot", "operator": "Exists"})])) == 0
}

test_selector_label_removed_or_changed_denied if {
	update_deny([t.remove("/metadata/labels/app")]) == {{
		"msg": "the label app=flowforge cannot be removed or changed",
		"field": "metadata.labels[app]",
	}}
	t.fields(update_deny([t.set("/metadata/labels/app", "other")])) == {"metadata.labels[app]"}
}

test_selector_label_removed_from_pod_denied if {
	new := t.pod([t.remove("/metadata/labels/app")])
	t.fields(t.pod_update_deny(fixtures.pod, new, "")) == {"metadata.labels[app]"}
	count(t.pod_update_deny(fixtures.pod, t.pod([t.remove("/metadata/finalizers")]), "")) == 0
}

test_required_labels_changed_denied if {
	update_deny([t.set("/metadata/labels/user-id", "u2")]) == {{
		"msg": "the label user-id cannot be removed or changed (it was \"u1\")",
		"field": "metadata.labels[user-id]",
	}}

	# With another job-id, the job's own credentials become another job's.
	t.fields(update_deny([t.set("/metadata/labels/job-id", "xyz")])) == {
		"metadata.labels[job-id]",
		"spec.template.spec.containers[0].env[2].valueFrom.secretKeyRef.name",
	}
}

test_policy_revision_removed_or_changed_denied if {
	update_deny([t.remove("/metadata/annotations/flowforge.io~1policy-revision")]) == {{
		"msg": "the annotation flowforge.io/policy-revision records the policy that hardened this object and cannot be removed or changed",
		"field": "metadata.annotations[flowforge.io/policy-revision]",
	}}
	t.fields(update_deny([t.set("/metadata/annotations/flowforge.io~1policy-revision", "forged")])) == {"metadata.annotations[flowforge.io/policy-revision]"}
}

test_limits_raised_denied if {
	update_deny([t.set("/spec/activeDeadlineSeconds", 7200)]) == {{
		"msg": "spec.activeDeadlineSeconds cannot be raised from 3600 to 7200, only lowered",
		"field": "spec.activeDeadlineSeconds",
	}}
	t.fields(legacy_update_deny([t.set("/spec/ttlSecondsAfterFinished", 86400)])) == {"spec.ttlSecondsAfterFinished"}
	t.fields(update_deny([t.set("/spec/backoffLimit", 4)])) == {"spec.backoffLimit"}
}

test_limits_removed_denied if {
	legacy_update_deny([t.remove("/spec/ttlSecondsAfterFinished")]) == {{
		"msg": "spec.ttlSecondsAfterFinished cannot be removed (it was 3600)",
		"field": "spec.ttlSecondsAfterFinished",
	}}

	# Both rules: the update removes it, and a Job needs one.
	update_deny([t.remove("/spec/activeDeadlineSeconds")]) == {
		{"msg": "spec.activeDeadlineSeconds cannot be removed (it was 3600)", "field": "spec.activeDeadlineSeconds"},
		{"msg": "spec.activeDeadlineSeconds is required (at most 14400)", "field": "spec.activeDeadlineSeconds"},
	}
}

test_hardened_pod_fields_changed_denied if {
	update_deny([t.set("/spec/template/spec/priorityClassName", "system-cluster-critical")]) == {
		{
			"msg": "priorityClassName was hardened and cannot be changed",
			"field": "spec.template.spec.priorityClassName",
		},
		# And priority-class/ denies the class itself.
		{
			"msg": "priorityClassName \"system-cluster-critical\" is not allowed: FlowForge pods run with \"flowforge-worker\"",
			"field": "spec.template.spec.priorityClassName",
		},
	}
	t.fields(update_deny([t.set("/spec/template/spec/securityContext/runAsUser", 2000)])) == {"spec.template.spec.securityContext"}
	t.fields(update_deny([t.set("/spec/template/spec/runtimeClassName", "runc")])) == {"spec.template.spec.runtimeClassName"}
	t.fields(update_deny([t.remove("/spec/template/spec/automountServiceAccountToken")])) == {"spec.template.spec.automountServiceAccountToken"}
}

test_scheduling_weakened_denied if {
	update_deny([t.remove("/spec/template/spec/nodeSelector/flowforge.io~1sandbox")]) == {
		{
			"msg": "the node selector flowforge.io/sandbox=gvisor cannot be removed or changed",
			"field": "spec.template.spec.nodeSelector[flowforge.io/sandbox]",
		},
		# validate/placement denies the missing entry on CREATE too.
		{
			"msg": "the node selector must keep flowforge.io/sandbox=gvisor (the sandbox pool)",
			"field": "spec.template.spec.nodeSelector[flowforge.io/sandbox]",
		},
	}
	t.fields(update_deny([t.set("/spec/template/spec/nodeSelector/flowforge.io~1sandbox", "none")])) == {"spec.template.spec.nodeSelector[flowforge.io/sandbox]"}
	update_deny([t.set("/spec/template/spec/tolerations", [])]) == {{
		"msg": "the toleration for \"flowforge.io/sandbox\" cannot be removed",
		"field": "spec.template.spec.tolerations",
	}}
}

test_container_hardening_changed_denied if {
	update_deny([t.set("/spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem", true), t.set("/spec/template/spec/containers/0/securityContext/runAsUser", 3000)]) == {{
		"msg": "container \"worker\": securityContext was hardened and cannot be changed",
		"field": "spec.template.spec.containers[0].securityContext",
	}}
	t.fields(update_deny([t.set("/spec/template/spec/containers/0/resources/limits/cpu", "1")])) == {"spec.template.spec.containers[0].resources"}
	t.fields(update_deny([t.remove("/spec/template/spec/containers/0/resources")])) == {
		"spec.template.spec.containers[0].resources",
		"spec.template.spec.containers[0].resources.limits.cpu",
		"spec.template.spec.containers[0].resources.limits.memory",
		"spec.template.spec.containers[0].resources.limits.ephemeral-storage",
	}
}

test_new_container_is_checked_as_on_create if {
	# No old container to compare with: the ordinary rules apply.
	count(update_deny([t.set("/spec/template/spec/containers/-", t.container({"name": "second"}))])) == 0
	fields := t.fields(update_deny([t.set("/spec/template/spec/containers/-", {"name": "second", "image": "ghcr.io/flowforge/x:1"})]))
	"spec.template.spec.containers[1].securityContext.allowPrivilegeEscalation" in fields
}

test_objects_that_were_not_flowforge_are_checked_as_on_create if {
	unlabelled := json.patch(old, [t.remove("/metadata/labels/app")])
	count(validate.update_violation) == 0 with input as fixtures.job_update_input(unlabelled, old)
	count(t.job_update_deny(unlabelled, old)) == 0
	weak := json.patch(old, [t.set("/spec/template/spec/hostPID", true)])
	t.fields(t.job_update_deny(unlabelled, weak)) == {"spec.template.spec.hostPID"}
}

test_update_violations_only_on_update if {
	req := fixtures.job_update_input(old, updated([t.remove("/metadata/labels/app")]))
	count(validate.update_violation) == 1 with input as req
	count(validate.update_violation) == 0 with input as object.union(req, {"request": {"operation": "CREATE"}})
}
