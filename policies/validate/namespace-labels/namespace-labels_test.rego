package flowforge.validate.namespace_labels_test

import data.flowforge.validate

owner := {"username": "alice", "groups": ["team-a:owners", "system:authenticated"]}

admin := {"username": "bob", "groups": ["flowforge:platform-admins", "system:authenticated"]}

masters := {"username": "flowforge-admin", "groups": ["system:masters", "system:authenticated"]}

namespace(labels, annotations) := {
	"apiVersion": "v1",
	"kind": "Namespace",
	"metadata": {
		"name": "team-a",
		"labels": object.union({"kubernetes.io/metadata.name": "team-a"}, labels),
		"annotations": annotations,
	},
}

managed := namespace({"flowforge.io/managed": "true", "team": "a"}, {})

request(operation, old, new, user) := {"request": {
	"kind": {"group": "", "version": "v1", "kind": "Namespace"},
	"resource": "namespaces",
	"name": "team-a",
	"operation": operation,
	"object": new,
	"oldObject": old,
	"userInfo": user,
}}

update_deny(old, new, user) := r if {
	r := validate.deny with input as request("UPDATE", old, new, user)
}

create_deny(new, user) := r if {
	r := validate.deny with input as request("CREATE", null, new, user)
}

who := "members of any of the groups flowforge:platform-admins, system:masters"

test_owner_cannot_remove_managed if {
	update_deny(managed, namespace({"team": "a"}, {}), owner) == {{
		"msg": sprintf("the label flowforge.io/managed decides what FlowForge enforces in namespace \"team-a\": only %s may add, change or remove it (namespaceGuard in FlowForge's policy data); user \"alice\" may not", [who]),
		"field": "metadata.labels[flowforge.io/managed]",
	}}
}

test_owner_cannot_change_or_blank_managed if {
	every value in ["false", ""] {
		fields(update_deny(managed, namespace({"flowforge.io/managed": value, "team": "a"}, {}), owner)) == {"metadata.labels[flowforge.io/managed]"}
	}
}

test_owner_cannot_add_seccomp if {
	new := namespace({"flowforge.io/managed": "true", "team": "a", "flowforge.io/seccomp": "runtime-default"}, {})
	deny := update_deny(managed, new, owner)
	fields(deny) == {"metadata.labels[flowforge.io/seccomp]"}
	some v in deny
	startswith(v.msg, "the label flowforge.io/seccomp decides what FlowForge enforces")
}

test_owner_cannot_touch_any_flowforge_key if {
	new := namespace({"flowforge.io/managed": "true", "team": "a", "flowforge.io/future": "x"}, {"flowforge.io/note": ""})
	deny := update_deny(managed, new, owner)
	fields(deny) == {"metadata.labels[flowforge.io/future]", "metadata.annotations[flowforge.io/note]"}
	some v in deny
	v.field == "metadata.annotations[flowforge.io/note]"
	startswith(v.msg, "the annotation flowforge.io/note ")
}

test_owner_cannot_remove_a_flowforge_annotation if {
	old := namespace({}, {"flowforge.io/owner-note": "x", "other": "y"})
	fields(update_deny(old, namespace({}, {"other": "y"}), owner)) == {"metadata.annotations[flowforge.io/owner-note]"}
}

test_null_maps_count_as_empty if {
	new := json.patch(managed, [{"op": "replace", "path": "/metadata/labels", "value": null}])
	fields(update_deny(managed, new, owner)) == {"metadata.labels[flowforge.io/managed]"}
	old := json.patch(managed, [{"op": "replace", "path": "/metadata/annotations", "value": null}])
	count(update_deny(old, managed, owner)) == 0
	fields(create_deny(managed, owner)) == fields(update_deny(namespace({}, {}), managed, owner))
}

test_owner_may_change_everything_else if {
	new := namespace({"flowforge.io/managed": "true", "team": "b", "cost-center": "42", "flowforge.iox/not-ours": "1", "sub.flowforge.io/neither": "1"}, {"note": "hi"})
	count(update_deny(managed, new, owner)) == 0
	count(update_deny(managed, managed, owner)) == 0
	warn := validate.warn with input as request("UPDATE", managed, new, owner)
	count(warn) == 0
}

test_admins_may_change_guarded_keys if {
	new := namespace({"team": "a", "flowforge.io/seccomp": "runtime-default"}, {"flowforge.io/note": "x"})
	every user in [admin, masters] {
		count(update_deny(managed, new, user)) == 0
		count(create_deny(new, user)) == 0
	}
}

test_named_users_may_change_guarded_keys if {
	deny := validate.deny with input as request("UPDATE", managed, namespace({}, {}), {"username": "installer", "groups": []})
		with data.flowforge.config.namespaceGuard.users as ["installer"]
	count(deny) == 0
}

test_owner_cannot_create_a_namespace_with_guarded_keys if {
	fields(create_deny(managed, owner)) == {"metadata.labels[flowforge.io/managed]"}
	count(create_deny(namespace({"team": "a"}, {"note": "x"}), owner)) == 0
}

test_missing_user_info_is_refused if {
	deny := validate.deny with input as request("UPDATE", managed, namespace({}, {}), {})
	fields(deny) == {"metadata.labels[flowforge.io/managed]"}
}

test_no_guard_in_the_data_lets_nobody if {
	deny := update_deny(managed, namespace({}, {}), admin) with data.flowforge.config.namespaceGuard as null
	some v in deny
	contains(v.msg, "only nobody (namespaceGuard names no users or groups) may")
	deny2 := update_deny(managed, namespace({}, {}), masters) with data.flowforge.config.namespaceGuard.groups as []
	count(deny2) == 1
}

test_keys_the_policy_reads_are_guarded_without_a_prefix if {
	old := namespace({"example.com/managed": "yes", "example.com/seccomp": "relaxed", "flowforge.io/managed": "true"}, {})
	new := namespace({}, {})
	deny := update_deny(old, new, owner) with data.flowforge.config.namespaceGuard.prefixes as []
		with data.flowforge.config.managedNamespaceLabel.key as "example.com/managed"
		with data.flowforge.config.seccomp.namespaceOverrides as [{"namespaceSelector": {"example.com/seccomp": "relaxed"}, "profile": {"type": "RuntimeDefault"}}]
	fields(deny) == {"metadata.labels[example.com/managed]", "metadata.labels[example.com/seccomp]"}
}

test_read_keys_come_from_the_data if {
	validate.namespace_read_keys == {"flowforge.io/managed", "flowforge.io/seccomp"}
}

test_who_names_single_group_and_users if {
	w := validate.namespace_guard_who with data.flowforge.config.namespaceGuard as {"groups": ["ops"], "users": ["u2", "u1"]}
	w == "members of the group ops or any of the users u1, u2"
	w2 := validate.namespace_guard_who with data.flowforge.config.namespaceGuard as {"users": ["root"], "groups": []}
	w2 == "the user root"
}

test_only_namespaces_are_guarded if {
	job := object.union(managed, {"apiVersion": "batch/v1", "kind": "Job"})
	req := request("UPDATE", job, namespace({}, {}), owner)
	jobs := validate.namespace_changes with input as object.union(req, {"request": {"kind": {"group": "batch", "kind": "Job"}}})
	count(jobs) == 0
	others := validate.namespace_changes with input as object.union(req, {"request": {"kind": {"group": "example.com", "kind": "Namespace"}}})
	count(others) == 0
}

test_delete_is_not_judged if {
	deny := validate.deny with input as request("DELETE", managed, null, owner)
	count(deny) == 0
}

fields(results) := {r.field | some r in results}
