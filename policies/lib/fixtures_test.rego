# Test fixtures shared by the policy tests. Files ending in _test.rego are
# loaded only when the tests run.
package flowforge.lib.fixtures

job := {
	"apiVersion": "batch/v1",
	"kind": "Job",
	"metadata": {
		"name": "claude-job-abc",
		"namespace": "agents",
		"labels": {"app": "flowforge", "component": "worker", "job-id": "abc", "user-id": "u1"},
		"annotations": {"flowforge.io/repository": "acme/app", "flowforge.io/branch": "main"},
	},
	"spec": {"template": {"spec": {"containers": [{
		"name": "worker",
		"image": "ghcr.io/flowforge/claude-worker:1.0.0",
		"env": [
			{"name": "JOB_ID", "value": "abc"},
			{"name": "ANTHROPIC_API_KEY", "valueFrom": {"secretKeyRef": {"name": "claude-secret", "key": "api-key"}}},
			{"name": "GIT_CREDENTIALS", "valueFrom": {"secretKeyRef": {"name": "git-credentials-abc", "key": "credentials"}}},
		],
	}]}}},
}

# job_with deep-merges overrides into the fixture Job.
job_with(overrides) := object.union(job, overrides)

request(kind, obj) := {
	"kind": kind,
	"operation": "CREATE",
	"namespace": "agents",
	"object": obj,
	"userInfo": {"username": "alice"},
}

job_kind := {"group": "batch", "version": "v1", "kind": "Job"}

pod_kind := {"group": "", "version": "v1", "kind": "Pod"}

# input for a Job CREATE in a namespace with the given labels.
job_input_in(obj, namespace_labels) := {
	"request": request(job_kind, obj),
	"namespace": {"name": "agents", "labels": namespace_labels},
	"policy": {"revision": "test-rev"},
}

job_input(obj) := job_input_in(obj, {})

pod_input(obj) := {
	"request": request(pod_kind, obj),
	"namespace": {"name": "agents", "labels": {}},
}

update_input(kind, old, new) := {
	"request": object.union(request(kind, new), {"operation": "UPDATE", "oldObject": old}),
	"namespace": {"name": "agents", "labels": {}},
}
