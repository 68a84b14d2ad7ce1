package flowforge.lib.k8s_test

import data.flowforge.lib.k8s

job_input := {"request": {
	"kind": {"group": "batch", "version": "v1", "kind": "Job"},
	"operation": "CREATE",
	"object": {
		"metadata": {"labels": {"app": "flowforge"}},
		"spec": {"template": {"spec": {
			"initContainers": [{"name": "init"}],
			"containers": [{"name": "a"}, {"name": "b"}],
			"volumes": [{"name": "v"}],
		}}},
	},
}}

pod_input := {
	"request": {
		"kind": {"group": "", "version": "v1", "kind": "Pod"},
		"operation": "CREATE",
		"object": {"metadata": {}, "spec": {"containers": [{"name": "a"}]}},
	},
	"namespace": {"labels": {"flowforge.io/managed": "true"}},
}

test_job_containers_have_paths if {
	cs := k8s.containers with input as job_input
	count(cs) == 3
	some c in cs
	c.name == "b"
	c.path == ["spec", "template", "spec", "containers", 1]
	c.field == "spec.template.spec.containers[1]"
}

test_pod_containers_have_paths if {
	cs := k8s.containers with input as pod_input
	some c in cs
	c.field == "spec.containers[0]"
	c.path == ["spec", "containers", 0]
}

test_selected_and_managed if {
	k8s.selected with input as job_input
	not k8s.selected with input as pod_input
	k8s.managed_namespace with input as pod_input
	not k8s.managed_namespace with input as job_input
}

test_volumes if {
	vs := k8s.volumes with input as job_input
	vs == {{"index": 0, "volume": {"name": "v"}, "field": "spec.template.spec.volumes[0]"}}
}

test_label_field if {
	k8s.label_field("labels", "job-id") == "metadata.labels[job-id]"
}

test_old_obj_defaults_to_null if {
	k8s.old_obj == null with input as job_input
}
