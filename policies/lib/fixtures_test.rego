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
	# The fixtures' owner (user-id u1) sends its own requests.
	"userInfo": {"username": "u1", "groups": ["system:authenticated"]},
}

job_kind := {"group": "batch", "version": "v1", "kind": "Job"}

pod_kind := {"group": "", "version": "v1", "kind": "Pod"}

# input for a Job CREATE in a namespace with the given labels.
job_input_in(obj, namespace_labels) := {
	"request": request(job_kind, obj),
	"namespace": {"name": "agents", "labels": namespace_labels},
	"policy": {"revision": "test-rev"},
	# Every image parsed, as the Go side does (see images_test.rego).
	"images": images,
	# No other Job claims the job-id (see validate/identity).
	"claims": {"jobID": []},
}

job_input(obj) := job_input_in(obj, {})

pod_input(obj) := {
	"request": request(pod_kind, obj),
	"namespace": {"name": "agents", "labels": {}},
	"images": images,
	# No Job holds the pod's job-id (see validate/identity).
	"claims": {"jobID": []},
}

update_input(kind, old, new) := {
	"request": object.union(request(kind, new), {"operation": "UPDATE", "oldObject": old}),
	"namespace": {"name": "agents", "labels": {}},
	"images": images,
}

# hardened_job: the fixture Job as the mutation leaves it (policy revision
# test-rev), which is what the validating policy sees for a Job.
hardened_job := {
	"apiVersion": "batch/v1",
	"kind": "Job",
	"metadata": {
		"name": "claude-job-abc",
		"namespace": "agents",
		"labels": {"app": "flowforge", "component": "worker", "job-id": "abc", "user-id": "u1"},
		"annotations": {
			"flowforge.io/repository": "acme/app",
			"flowforge.io/branch": "main",
			"flowforge.io/policy-revision": "test-rev",
			"flowforge.io/ttl-seconds-after-finished": "3600",
		},
		"finalizers": ["flowforge.io/export"],
	},
	"spec": {
		"activeDeadlineSeconds": 3600,
		"backoffLimit": 2,
		"podReplacementPolicy": "Failed",
		"podFailurePolicy": {"rules": [
			{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2, 126, 127]}},
			{"action": "Ignore", "onPodConditions": [{"status": "True", "type": "DisruptionTarget"}]},
		]},
		"template": {
			"metadata": {
				"labels": {"app": "flowforge", "component": "worker", "job-id": "abc", "user-id": "u1"},
				"annotations": {"flowforge.io/policy-revision": "test-rev", "flowforge.io/profile": "medium"},
				"finalizers": ["flowforge.io/log-export"],
			},
			"spec": {
				"containers": [{
					"name": "worker",
					"image": "ghcr.io/flowforge/claude-worker:1.0.0",
					"env": [
						{"name": "JOB_ID", "value": "abc"},
						{"name": "ANTHROPIC_API_KEY", "valueFrom": {"secretKeyRef": {"name": "claude-secret", "key": "api-key"}}},
						{"name": "GIT_CREDENTIALS", "valueFrom": {"secretKeyRef": {"name": "git-credentials-abc", "key": "credentials"}}},
					],
					"securityContext": {
						"privileged": false,
						"allowPrivilegeEscalation": false,
						"runAsNonRoot": true,
						"readOnlyRootFilesystem": true,
						"capabilities": {"drop": ["ALL"]},
					},
					"resources": {
						"limits": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"},
						"requests": {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "2Gi"},
					},
					"volumeMounts": [
						{"name": "flowforge-tmp", "mountPath": "/tmp"},
						{"name": "flowforge-workspace", "mountPath": "/workspace"},
					],
				}],
				"automountServiceAccountToken": false,
				"enableServiceLinks": false,
				"priorityClassName": "flowforge-worker",
				"restartPolicy": "Never",
				"runtimeClassName": "gvisor",
				"securityContext": {
					"runAsNonRoot": true,
					"runAsUser": 1000,
					"runAsGroup": 1000,
					"fsGroup": 1000,
					"seccompProfile": {"type": "Localhost", "localhostProfile": "claude-worker.json"},
					"appArmorProfile": {"type": "RuntimeDefault"},
				},
				"nodeSelector": {"flowforge.io/sandbox": "gvisor"},
				"tolerations": [{"key": "flowforge.io/sandbox", "operator": "Equal", "value": "gvisor", "effect": "NoSchedule"}],
				"volumes": [
					{"name": "flowforge-tmp", "emptyDir": {"sizeLimit": "1Gi"}},
					{"name": "flowforge-workspace", "emptyDir": {"sizeLimit": "8Gi"}},
				],
			},
		},
	},
}

# pod: a compliant Pod, as the Job controller creates it from hardened_job
# and the pod mutation leaves it.
pod := {
	"apiVersion": "v1",
	"kind": "Pod",
	"metadata": {
		"name": "claude-job-abc-x7k2p",
		"namespace": "agents",
		"labels": object.union(hardened_job.spec.template.metadata.labels, {"batch.kubernetes.io/job-name": "claude-job-abc"}),
		"annotations": hardened_job.spec.template.metadata.annotations,
		"finalizers": hardened_job.spec.template.metadata.finalizers,
		"ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "claude-job-abc", "uid": "0b7c2a1e-job", "controller": true, "blockOwnerDeletion": true}],
	},
	# The pod mutation gives a Job-controlled Pod the maximum deadline
	# (mutate/pod-lifecycle).
	"spec": object.union(hardened_job.spec.template.spec, {"activeDeadlineSeconds": 14400}),
}

# pod_input_in: a Pod CREATE in a namespace with the given labels.
pod_input_in(obj, namespace_labels) := object.union(pod_input(obj), {"namespace": {"labels": namespace_labels}})

# job_update_input/pod_update_input: an UPDATE from old to new, optionally of
# a subresource.
job_update_input(old, new) := update_input(job_kind, old, new)

pod_update_input(old, new, subresource) := object.union(update_input(pod_kind, old, new), {"request": {"subResource": subresource}})
