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

# foreign_secret_references: every Secret name the pod reads that holds
# another job's git credentials, with its field path. The names are
# checked before the path is formatted (and the pod spec is read directly,
# not through k8s.containers and k8s.volumes, which format every path):
# this is an identity rule, evaluated on every request, and almost every
# reference is not foreign.
foreign_secret_references contains {"name": name, "field": sprintf("%s.%s[%d].env[%d].valueFrom.secretKeyRef.name", [k8s.pod_field, ckind, i, j])} if {
	some ckind in k8s.container_kinds
	some i, ctr in object.get(k8s.pod_spec, ckind, [])
	some j, env in object.get(ctr, "env", [])
	name := env.valueFrom.secretKeyRef.name
	foreign_git_secret(name)
}

foreign_secret_references contains {"name": name, "field": sprintf("%s.%s[%d].envFrom[%d].secretRef.name", [k8s.pod_field, ckind, i, j])} if {
	some ckind in k8s.container_kinds
	some i, ctr in object.get(k8s.pod_spec, ckind, [])
	some j, source in object.get(ctr, "envFrom", [])
	name := source.secretRef.name
	foreign_git_secret(name)
}

foreign_secret_references contains {"name": name, "field": sprintf("%s.volumes[%d].secret.secretName", [k8s.pod_field, i])} if {
	some i, vol in object.get(k8s.pod_spec, "volumes", [])
	name := vol.secret.secretName
	foreign_git_secret(name)
}

foreign_secret_references contains {"name": name, "field": sprintf("%s.volumes[%d].projected.sources[%d].secret.name", [k8s.pod_field, i, j])} if {
	some i, vol in object.get(k8s.pod_spec, "volumes", [])
	some j, source in object.get(vol, ["projected", "sources"], [])
	name := source.secret.name
	foreign_git_secret(name)
}

# Any other Secret reference inside a volume source: csi.nodePublishSecretRef,
# cephfs/rbd/iscsi/flexVolume/... .secretRef, azureFile.secretName.
foreign_secret_references contains {"name": name, "field": sprintf("%s.volumes[%d].%s.%s.name", [k8s.pod_field, i, source_type, key])} if {
	some i, vol in object.get(k8s.pod_spec, "volumes", [])
	some source_type, source in vol
	not source_type in {"name", "secret", "projected"}
	is_object(source)
	some key, ref in source
	endswith(lower(key), "secretref")
	name := ref.name
	foreign_git_secret(name)
}

foreign_secret_references contains {"name": name, "field": sprintf("%s.volumes[%d].%s.secretName", [k8s.pod_field, i, source_type])} if {
	some i, vol in object.get(k8s.pod_spec, "volumes", [])
	some source_type, source in vol
	not source_type in {"name", "secret", "projected"}
	is_object(source)
	name := source.secretName
	foreign_git_secret(name)
}

foreign_secret_references contains {"name": name, "field": sprintf("%s.imagePullSecrets[%d].name", [k8s.pod_field, i])} if {
	some i, ref in object.get(k8s.pod_spec, "imagePullSecrets", [])
	name := ref.name
	foreign_git_secret(name)
}

own_git_secret_text := sprintf("this job's are in %q", [own_git_secret]) if own_job_id != ""

own_git_secret_text := sprintf("this object has no %s label", [git_credentials.jobLabel]) if own_job_id == ""

identity_violation contains {
	"msg": sprintf("secret %q holds another job's git credentials (%s)", [ref.name, own_git_secret_text]),
	"field": ref.field,
} if {
	applies
	some ref in foreign_secret_references
}
