# Read-only scratch space (warning only).
#
# The root filesystem is read-only, so /tmp and the workspace
# (config.volumes) are where a container writes. Warns when a workload
# container mounts one of them read-only (field volumeMounts[j].readOnly):
# allowed, but the agent will likely fail to write anything.
package flowforge.validate

import data.flowforge.config

scratch_paths := {v.mountPath | some v in config.volumes}

warning contains {
	"msg": sprintf("container %q mounts %s read-only: with a read-only root filesystem it has nowhere to write there", [ctr.name, mount.mountPath]),
	"field": sprintf("%s.volumeMounts[%d].readOnly", [ctr.field, j]),
} if {
	applies
	some ctr in workload_containers
	some j, mount in object.get(ctr.container, "volumeMounts", [])
	mount.mountPath in scratch_paths
	mount.readOnly == true
}
