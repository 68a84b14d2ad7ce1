package flowforge.validate_test

import data.flowforge.lib.fixtures
import data.flowforge.validate
import data.flowforge.validate.testing as t

test_hardened_job_and_pod_are_admitted if {
	count(t.job_deny(fixtures.hardened_job)) == 0
	count(t.pod_deny(fixtures.pod)) == 0
	count(t.job_deny_in(fixtures.hardened_job, {"flowforge.io/managed": "true"})) == 0
	count(t.pod_deny_in(fixtures.pod, {"flowforge.io/managed": "true"})) == 0
}

test_deny_and_warn_have_msg_and_field_only if {
	obj := t.job([t.set("/spec/template/spec/hostPID", true)])
	denials := t.job_deny(obj)
	count(denials) == 1
	every d in denials {
		object.keys(d) == {"msg", "field"}
		is_string(d.msg)
		is_string(d.field)
	}
	warnings := t.job_warn(obj)
	count(warnings) == 1
	every w in warnings {
		object.keys(w) == {"msg", "field"}
	}
}

test_unhardened_job_is_denied if {
	# The fixture Job as a client sends it: validated without the mutation.
	t.fields(t.job_deny(fixtures.job)) == {
		"spec.activeDeadlineSeconds",
		"spec.template.spec.automountServiceAccountToken",
		"spec.template.spec.priorityClassName",
		"spec.template.spec.runtimeClassName",
		"spec.template.spec.containers[0].resources.limits.cpu",
		"spec.template.spec.containers[0].resources.limits.memory",
		"spec.template.spec.containers[0].resources.limits.ephemeral-storage",
		"spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
		"spec.template.spec.containers[0].securityContext.capabilities.drop",
		"spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem",
		"spec.template.spec.containers[0].securityContext.runAsNonRoot",
		"spec.template.spec.containers[0].securityContext.seccompProfile",
		"spec.template.spec.nodeSelector[flowforge.io/sandbox]",
	}
}

test_other_kinds_yield_nothing if {
	cm_kind := {"group": "", "version": "v1", "kind": "ConfigMap"}
	cm := {"metadata": {"labels": {"app": "flowforge"}}, "data": {"privileged": "true"}}
	req := object.union(fixtures.job_input_in(cm, {"flowforge.io/managed": "true"}), {"request": {"kind": cm_kind}})
	count(validate.deny) == 0 with input as req
	count(validate.warn) == 0 with input as req
	count(validate.violation) == 0 with input as req
}

test_unlabelled_objects_outside_managed_namespaces_yield_nothing if {
	job := json.patch(fixtures.job, [t.remove("/metadata/labels/app")])
	count(t.job_deny(job)) == 0
	count(t.job_warn(job)) == 0
	pod := t.pod([t.remove("/metadata/labels/app"), t.set("/spec/hostNetwork", true)])
	count(t.pod_deny(pod)) == 0
}

test_update_denies_only_new_violations if {
	# Admitted under an older policy: a privileged container, a hostPath.
	old := t.job([
		t.set("/spec/template/spec/containers/0/securityContext/privileged", true),
		t.set("/spec/template/spec/volumes/-", {"name": "h", "hostPath": {"path": "/"}}),
	])
	count(t.job_deny(old)) == 2

	# The controller removes its finalizer: nothing new, admitted.
	count(t.job_update_deny(old, json.patch(old, [t.remove("/metadata/finalizers")]))) == 0

	# A new weakening is denied, and only it.
	new := json.patch(old, [t.set("/spec/template/spec/hostIPC", true)])
	t.fields(t.job_update_deny(old, new)) == {"spec.template.spec.hostIPC"}
}

test_update_warns_only_new_warnings if {
	old := fixtures.hardened_job
	count(t.job_update_warn(old, old)) == 0
	new := json.patch(old, [t.remove("/metadata/annotations/flowforge.io~1repository")])
	t.fields(t.job_update_warn(old, new)) == {"metadata.annotations[flowforge.io/repository]"}
}

test_update_without_old_object_checks_everything if {
	new := t.job([t.set("/spec/template/spec/hostIPC", true)])
	req := fixtures.job_update_input(null, new)
	t.fields(validate.deny) == {"spec.template.spec.hostIPC"} with input as req
	count(validate.update_violation) == 0 with input as req
	count(validate.warn) == 1 with input as req
}

test_other_operations_yield_nothing if {
	req := object.union(fixtures.job_input(t.job([t.set("/spec/template/spec/hostIPC", true)])), {"request": {"operation": "DELETE"}})
	count(validate.deny) == 0 with input as req
	count(validate.warn) == 0 with input as req
}
