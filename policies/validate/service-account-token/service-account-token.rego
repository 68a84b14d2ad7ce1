# Service-account tokens.
#
# An agent gets no Kubernetes API credentials. Denies:
#   volumes[i].projected.sources[j].serviceAccountToken, a token mounted by
#   hand, or the kube-api-access-* volume the API server's ServiceAccount
#   admission plugin injects into a Pod that does not opt out;
#   automountServiceAccountToken not false on the pod (explicitly true, a
#   deliberate choice, or unset, which defers to the ServiceAccount and
#   usually means true). The mutation sets it to false on every Job, so only
#   a Pod created directly, or an update, can fail this.
package flowforge.validate

import data.flowforge.lib.k8s

violation contains {
	"msg": sprintf("volume %q must not project a service-account token", [object.get(vol.volume, "name", "")]),
	"field": sprintf("%s.projected.sources[%d].serviceAccountToken", [vol.field, j]),
} if {
	applies
	some vol in k8s.volumes
	some j, source in object.get(vol.volume, ["projected", "sources"], [])
	object.get(source, "serviceAccountToken", null) != null
}

violation contains {
	"msg": "automountServiceAccountToken must be false: FlowForge workloads get no Kubernetes API token",
	"field": sprintf("%s.automountServiceAccountToken", [k8s.pod_field]),
} if {
	applies
	object.get(k8s.pod_spec, "automountServiceAccountToken", null) != false
}
