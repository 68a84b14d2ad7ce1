# Other jobs' git credentials.
#
# Each job's git credentials live in the Secret
# <secrets.gitCredentials.secretPrefix><job-id> ("git-credentials-abc").
# Denies a reference to any Secret with that prefix but another job's id
# (or any such Secret when the object has no job-id label), wherever a pod
# can read a Secret from:
#   containers[i].env[j].valueFrom.secretKeyRef.name
#   containers[i].envFrom[j].secretRef.name
#   volumes[i].secret.secretName
#   volumes[i].projected.sources[j].secret.name
#   volumes[i].<source>.secretRef.name, .nodePublishSecretRef.name (csi) or
#     any other *SecretRef/secretName of a volume source (defence in depth:
#     volume-types/ denies most such sources anyway)
#   imagePullSecrets[i].name
# on any container kind. The field is the path to the name.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

git_credentials := config.secrets.gitCredentials

own_job_id := object.get(k8s.labels, git_credentials.jobLabel, "")

own_git_secret := concat("", [git_credentials.secretPrefix, own_job_id]) if own_job_id != ""

foreign_git_secret(name) if {
	startswith(name, git_credentials.secretPrefix)
	name != own_git_secret
}

foreign_git_secret(name) if {
	startswith(name, git_credentials.secretPrefix)
	own_job_id == ""
}

# secret_references: every Secret name the pod reads, with its field path.
secret_references contains {"name": name, "field": sprintf("%s.env[%d].valueFrom.secretKeyRef.name", [ctr.field, j])} if {
	some ctr in k8s.containers
	some j, env in object.get(ctr.container, "env", [])
	name := env.valueFrom.secretKeyRef.name
}

secret_references contains {"name": name, "field": sprintf("%s.envFrom[%d].secretRef.name", [ctr.field, j])} if {
	some ctr in k8s.containers
	some j, source in object.get(ctr.container, "envFrom", [])
	name := source.secretRef.name
}

secret_references contains {"name": name, "field": sprintf("%s.secret.secretName", [vol.field])} if {
	some vol in k8s.volumes
	name := vol.volume.secret.secretName
}

secret_references contains {"name": name, "field": sprintf("%s.projected.sources[%d].secret.name", [vol.field, j])} if {
	some vol in k8s.volumes
	some j, source in object.get(vol.volume, ["projected", "sources"], [])
	name := source.secret.name
}

# Any other Secret reference inside a volume source: csi.nodePublishSecretRef,
# cephfs/rbd/iscsi/flexVolume/... .secretRef, azureFile.secretName.
secret_references contains {"name": name, "field": sprintf("%s.%s", [vol.field, concat(".", path)])} if {
	some vol in k8s.volumes
	some source_type, source in vol.volume
	not source_type in {"name", "secret", "projected"}
	is_object(source)
	some key, ref in source
	endswith(lower(key), "secretref")
	name := ref.name
	path := [source_type, key, "name"]
}

secret_references contains {"name": name, "field": sprintf("%s.%s.secretName", [vol.field, source_type])} if {
	some vol in k8s.volumes
	some source_type, source in vol.volume
	not source_type in {"name", "secret", "projected"}
	is_object(source)
	name := source.secretName
}

secret_references contains {"name": name, "field": sprintf("%s.imagePullSecrets[%d].name", [k8s.pod_field, i])} if {
	some i, ref in object.get(k8s.pod_spec, "imagePullSecrets", [])
	name := ref.name
}

own_git_secret_text := sprintf("this job's are in %q", [own_git_secret]) if own_job_id != ""

own_git_secret_text := sprintf("this object has no %s label", [git_credentials.jobLabel]) if own_job_id == ""

identity_violation contains {
	"msg": sprintf("secret %q holds another job's git credentials (%s)", [ref.name, own_git_secret_text]),
	"field": ref.field,
} if {
	applies
	some ref in secret_references
	foreign_git_secret(ref.name)
}
