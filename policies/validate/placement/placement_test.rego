package flowforge.validate.placement_test

import data.flowforge.validate.testing as t

spec := "/spec/template/spec"

test_node_name_denied if {
	t.job_deny(t.job([t.set(concat("", [spec, "/nodeName"]), "worker-7")])) == {{
		"msg": "nodeName \"worker-7\" binds the pod to a node without the scheduler; the sandbox pool is chosen by the node selector",
		"field": "spec.template.spec.nodeName",
	}}
	t.fields(t.pod_deny(t.pod([t.set("/spec/nodeName", "control-plane")]))) == {"spec.nodeName"}
	count(t.job_deny(t.job([t.set(concat("", [spec, "/nodeName"]), "")]))) == 0
}

test_other_scheduler_denied if {
	t.job_deny(t.job([t.set(concat("", [spec, "/schedulerName"]), "my-scheduler")])) == {{
		"msg": "schedulerName \"my-scheduler\" is not allowed (allowed: default-scheduler)",
		"field": "spec.template.spec.schedulerName",
	}}
	count(t.job_deny(t.job([t.set(concat("", [spec, "/schedulerName"]), "default-scheduler")]))) == 0
}

test_wildcard_tolerations_denied if {
	everything := t.job([t.set(concat("", [spec, "/tolerations/-"]), {"operator": "Exists"})])
	t.job_deny(everything) == {{
		"msg": "toleration {\"operator\":\"Exists\"} tolerates every taint: name the taint's key and effect",
		"field": "spec.template.spec.tolerations[1]",
	}}
	no_execute := t.job([t.set(concat("", [spec, "/tolerations/-"]), {"operator": "Exists", "effect": "NoExecute"})])
	t.fields(t.job_deny(no_execute)) == {"spec.template.spec.tolerations[1]"}
}

test_tolerations_outside_the_list_denied if {
	# The sandbox key without an effect tolerates its NoExecute taint too.
	all_effects := t.job([t.set(concat("", [spec, "/tolerations/0"]), {"key": "flowforge.io/sandbox", "operator": "Exists"})])
	t.fields(t.job_deny(all_effects)) == {"spec.template.spec.tolerations[0]"}
	control_plane := t.job([t.set(concat("", [spec, "/tolerations/-"]), {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"})])
	t.fields(t.job_deny(control_plane)) == {"spec.template.spec.tolerations[1]"}
	other_value := t.job([t.set(concat("", [spec, "/tolerations/-"]), {"key": "flowforge.io/sandbox", "operator": "Equal", "value": "runc", "effect": "NoSchedule"})])
	t.fields(t.job_deny(other_value)) == {"spec.template.spec.tolerations[1]"}
}

test_allowed_tolerations_admitted if {
	obj := t.job([
		t.set(concat("", [spec, "/tolerations/-"]), {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
		t.set(concat("", [spec, "/tolerations/-"]), {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}),
		# The sandbox toleration, spelled with its defaults.
		t.set(concat("", [spec, "/tolerations/-"]), {"key": "flowforge.io/sandbox", "value": "gvisor", "effect": "NoSchedule"}),
	])
	count(t.job_deny(obj)) == 0
}

test_node_selector_must_keep_the_sandbox_entry if {
	t.pod_deny(t.pod([t.remove("/spec/nodeSelector")])) == {{
		"msg": "the node selector must keep flowforge.io/sandbox=gvisor (the sandbox pool)",
		"field": "spec.nodeSelector[flowforge.io/sandbox]",
	}}
	other := t.pod([t.set("/spec/nodeSelector/flowforge.io~1sandbox", "runc")])
	t.fields(t.pod_deny(other)) == {"spec.nodeSelector[flowforge.io/sandbox]"}
	narrower := t.job([t.set(concat("", [spec, "/nodeSelector/topology.kubernetes.io~1zone"]), "eu-west-1a")])
	count(t.job_deny(narrower)) == 0
}

affinity(terms) := t.job([t.set(concat("", [spec, "/affinity"]), {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}})])

terms_field := "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"

test_contradicting_node_affinity_denied if {
	not_in := affinity([{"matchExpressions": [{"key": "flowforge.io/sandbox", "operator": "NotIn", "values": ["gvisor"]}]}])
	t.job_deny(not_in) == {{
		"msg": "node affinity flowforge.io/sandbox NotIn contradicts the sandbox node selector flowforge.io/sandbox=gvisor",
		"field": concat("", [terms_field, "[0].matchExpressions[0]"]),
	}}
	in_other := affinity([
		{"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]},
		{"matchExpressions": [{"key": "flowforge.io/sandbox", "operator": "In", "values": ["runc"]}]},
	])
	t.fields(t.job_deny(in_other)) == {concat("", [terms_field, "[1].matchExpressions[0]"])}
	absent := affinity([{"matchExpressions": [{"key": "flowforge.io/sandbox", "operator": "DoesNotExist"}]}])
	t.fields(t.job_deny(absent)) == {concat("", [terms_field, "[0].matchExpressions[0]"])}
}

test_node_affinity_naming_nodes_denied if {
	named := affinity([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["victim-node"]}]}])
	t.job_deny(named) == {{
		"msg": "node affinity must not name nodes (matchFields): the scheduler picks a node in the sandbox pool",
		"field": concat("", [terms_field, "[0].matchFields[0]"]),
	}}
}

test_compatible_node_affinity_admitted if {
	obj := affinity([{"matchExpressions": [
		{"key": "flowforge.io/sandbox", "operator": "In", "values": ["gvisor"]},
		{"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["eu-west-1c"]},
		{"key": "flowforge.io/sandbox", "operator": "Exists"},
	]}])
	count(t.job_deny(obj)) == 0
}

test_toleration_within_an_allowed_entry if {
	# spot is allowed with any effect; the sandbox entry only as it is.
	spot := t.job([t.set(concat("", [spec, "/tolerations/-"]), {"key": "spot", "operator": "Exists"})])
	count(t.job_deny(spot)) == 0
	spot_value := t.job([t.set(concat("", [spec, "/tolerations/-"]), {"key": "spot", "value": "true", "effect": "NoExecute"})])
	count(t.job_deny(spot_value)) == 0
	sandbox_exists := t.job([t.set(concat("", [spec, "/tolerations/-"]), {"key": "flowforge.io/sandbox", "operator": "Exists", "effect": "NoSchedule"})])
	t.fields(t.job_deny(sandbox_exists)) == {"spec.template.spec.tolerations[1]"}
	not_ready_no_effect := t.job([t.set(concat("", [spec, "/tolerations/-"]), {"key": "node.kubernetes.io/not-ready", "operator": "Exists"})])
	t.fields(t.job_deny(not_ready_no_effect)) == {"spec.template.spec.tolerations[1]"}
}
