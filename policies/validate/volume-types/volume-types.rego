# Volume types.
#
# Denies hostPath volumes (field volumes[i].hostPath): a path of the node
# mounted in the pod reads or writes the node itself. Also denies every
# other volume type outside config.allowedVolumeTypes (the Pod Security
# Standards' restricted list: configMap, csi, downwardAPI, emptyDir,
# ephemeral, persistentVolumeClaim, projected, secret), since the others
# (nfs, iscsi, gitRepo, flexVolume...) reach outside the pod in ways the
# sandbox does not contain.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

# volume_types: the source fields a volume sets (normally exactly one).
volume_types(volume) := {t | some t, source in volume; t != "name"; source != null}

violation contains {
	"msg": sprintf("volume %q must not mount a path of the node (hostPath)", [object.get(vol.volume, "name", "")]),
	"field": sprintf("%s.hostPath", [vol.field]),
} if {
	applies
	some vol in k8s.volumes
	"hostPath" in volume_types(vol.volume)
}

violation contains {
	"msg": sprintf("volume %q has type %s, which is not allowed (allowed: %s)", [object.get(vol.volume, "name", ""), t, joined(config.allowedVolumeTypes)]),
	"field": sprintf("%s.%s", [vol.field, t]),
} if {
	applies
	some vol in k8s.volumes
	some t in volume_types(vol.volume)
	t != "hostPath"
	not t in config.allowedVolumeTypes
}
