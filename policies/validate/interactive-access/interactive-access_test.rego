package flowforge.validate.interactive_access_test

import data.flowforge.lib.fixtures
import data.flowforge.validate

connect_input(sub, pod, groups) := {
	"request": {
		"kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
		"resource": "pods",
		"subResource": sub,
		"name": pod.metadata.name,
		"namespace": "agents",
		"operation": "CONNECT",
		"userInfo": {"username": "mallory", "groups": groups},
		"object": {"apiVersion": "v1", "kind": "Pod", "metadata": pod.metadata},
	},
	"namespace": {"name": "agents", "labels": {}},
}

# The tests pin the knob, so that they hold whatever data.yaml says.
deny_all := {"exec": "deny", "attach": "deny", "portforward": "deny", "proxy": "deny", "allowedGroups": []}

connect_deny(sub, pod, groups) := d if {
	d := validate.deny with input as connect_input(sub, pod, groups)
		with data.flowforge.config.interactiveAccess as deny_all
}

unlabelled := json.patch(fixtures.pod, [{"op": "remove", "path": "/metadata/labels/app"}])

test_every_connect_subresource_is_denied_on_a_labelled_pod if {
	every sub in ["exec", "attach", "portforward", "proxy"] {
		d := connect_deny(sub, fixtures.pod, ["system:authenticated"])
		{v.field | some v in d} == {sprintf("pods/%s", [sub])}
		some v in d
		contains(v.msg, "claude-job-abc-x7k2p")
		contains(v.msg, "interactiveAccess")
	}
}

test_unknown_connect_subresource_is_denied if {
	d := connect_deny("debug", fixtures.pod, [])
	{v.field | some v in d} == {"pods/debug"}
}

test_unlabelled_pod_is_not_ours if {
	count(connect_deny("exec", unlabelled, [])) == 0
}

test_default_data_denies_every_subresource if {
	every sub in ["exec", "attach", "portforward", "proxy"] {
		d := validate.deny with input as connect_input(sub, fixtures.pod, [])
		count(d) == 1
	}
}

test_knob_allows_a_subresource if {
	knob := object.union(deny_all, {"portforward": "allow"})
	d := validate.deny with input as connect_input("portforward", fixtures.pod, [])
		with data.flowforge.config.interactiveAccess as knob
	count(d) == 0
	e := validate.deny with input as connect_input("exec", fixtures.pod, [])
		with data.flowforge.config.interactiveAccess as knob
	count(e) == 1
}

test_break_glass_group_is_allowed if {
	d := validate.deny with input as connect_input("exec", fixtures.pod, ["sre"])
		with data.flowforge.config.interactiveAccess as object.union(deny_all, {"allowedGroups": ["sre"]})
	count(d) == 0
	e := validate.deny with input as connect_input("exec", fixtures.pod, ["developers"])
		with data.flowforge.config.interactiveAccess as object.union(deny_all, {"allowedGroups": ["sre"]})
	count(e) == 1
}

test_connect_does_not_run_the_object_rules if {
	# The object is the looked-up pod's metadata: no spec, yet no other rule fires.
	every sub in ["exec", "attach"] {
		count(connect_deny(sub, fixtures.pod, [])) == 1
	}
}
