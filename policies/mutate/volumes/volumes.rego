# Writable scratch volumes.
#
# The root filesystem is read-only, so every container gets size-limited
# emptyDir volumes at /tmp and at the workspace, unless it already mounts
# something there. A user's own emptyDir at those paths gets a size limit
# if it has none.
package flowforge.mutate

import data.flowforge.config
import data.flowforge.lib.k8s

# missing_mounts: the scratch volumes each container lacks, computed once.
missing_mounts contains {"ctr": ctr, "spec": spec} if {
	some ctr in workload_containers
	some spec in config.volumes
	not has_mount_at(ctr.container, spec.mountPath)
}

has_mount_at(container, mount_path) if {
	some m in object.get(container, "volumeMounts", [])
	m.mountPath == mount_path
}

patch contains {"setting": sprintf("volumeMount.%s", [miss.spec.name]), "op": "add", "path": array.concat(miss.ctr.path, ["volumeMounts"]), "key": "mountPath", "value": {"name": miss.spec.name, "mountPath": miss.spec.mountPath}} if {
	applies
	some miss in missing_mounts
}

patch contains {"setting": sprintf("volume.%s", [miss.spec.name]), "op": "add", "path": array.concat(k8s.pod_path, ["volumes"]), "key": "name", "value": {"name": miss.spec.name, "emptyDir": {"sizeLimit": miss.spec.sizeLimit}}} if {
	applies
	some miss in missing_mounts
}

# A user's emptyDir mounted at a scratch path gets the size limit it lacks.
patch contains {"setting": sprintf("volume.%s.sizeLimit", [spec.name]), "op": "default", "path": array.concat(k8s.pod_path, ["volumes", vol.index, "emptyDir", "sizeLimit"]), "value": spec.sizeLimit} if {
	applies
	some ctr in workload_containers
	some m in object.get(ctr.container, "volumeMounts", [])
	some spec in config.volumes
	m.mountPath == spec.mountPath
	some vol in k8s.volumes
	vol.volume.name == m.name
	is_object(vol.volume.emptyDir)
}
