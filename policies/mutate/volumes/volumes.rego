# Writable scratch volumes.
#
# The root filesystem is read-only, so every container gets size-limited
# emptyDir volumes at /tmp and at the workspace, unless it already mounts
# something there. A user's own emptyDir at those paths gets a size limit
# if it has none.
package flowforge.mutate

import data.flowforge.config
import data.flowforge.lib.k8s

mounts_at(ctr, mount_path) := [m |
	some m in object.get(ctr.container, "volumeMounts", [])
	m.mountPath == mount_path
]

needs_mount(ctr, spec) if count(mounts_at(ctr, spec.mountPath)) == 0

patch contains add_op(sprintf("volumeMount.%s", [spec.name]), array.concat(ctr.path, ["volumeMounts"]), "mountPath", {"name": spec.name, "mountPath": spec.mountPath}) if {
	applies
	some ctr in workload_containers
	some spec in config.volumes
	needs_mount(ctr, spec)
}

patch contains add_op(sprintf("volume.%s", [spec.name]), array.concat(k8s.pod_path, ["volumes"]), "name", {"name": spec.name, "emptyDir": {"sizeLimit": spec.sizeLimit}}) if {
	applies
	some spec in config.volumes
	some ctr in workload_containers
	needs_mount(ctr, spec)
}

# A user's emptyDir mounted at a scratch path gets the size limit it lacks.
patch contains default_op(sprintf("volume.%s.sizeLimit", [spec.name]), array.concat(k8s.pod_path, ["volumes", vol.index, "emptyDir", "sizeLimit"]), spec.sizeLimit) if {
	applies
	some spec in config.volumes
	some ctr in workload_containers
	some m in mounts_at(ctr, spec.mountPath)
	some vol in k8s.volumes
	vol.volume.name == m.name
	is_object(vol.volume.emptyDir)
}
