package flowforge.mutate_test

import data.flowforge.lib.fixtures
import data.flowforge.mutate

test_scratch_volumes_added if {
	ops(fixtures.job, "volume.flowforge-tmp") == {mutate.add_op(
		"volume.flowforge-tmp",
		["spec", "template", "spec", "volumes"], "name",
		{"name": "flowforge-tmp", "emptyDir": {"sizeLimit": "1Gi"}},
	)}
	ops(fixtures.job, "volumeMount.flowforge-workspace") == {mutate.add_op(
		"volumeMount.flowforge-workspace",
		["spec", "template", "spec", "containers", 0, "volumeMounts"], "mountPath",
		{"name": "flowforge-workspace", "mountPath": "/workspace"},
	)}
}

user_tmp := fixtures.job_with({"spec": {"template": {"spec": {
	"containers": [{
		"name": "worker",
		"image": "ghcr.io/flowforge/claude-worker:1.0.0",
		"volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
	}],
	"volumes": [{"name": "scratch", "emptyDir": {}}],
}}}})

test_existing_tmp_mount_is_kept_and_size_limited if {
	count(ops(user_tmp, "volume.flowforge-tmp")) == 0
	count(ops(user_tmp, "volumeMount.flowforge-tmp")) == 0
	ops(user_tmp, "volume.flowforge-tmp.sizeLimit") == {mutate.default_op(
		"volume.flowforge-tmp.sizeLimit",
		["spec", "template", "spec", "volumes", 0, "emptyDir", "sizeLimit"],
		"1Gi",
	)}
	count(ops(user_tmp, "volume.flowforge-workspace")) == 1
}
