# Host namespaces.
#
# Denies hostNetwork, hostPID and hostIPC set to true: each puts the pod in
# one of the node's namespaces (its network, its processes, its shared
# memory), outside the sandbox and next to every other workload on the node.
package flowforge.validate

import data.flowforge.lib.k8s

host_namespaces := {"hostNetwork": "network", "hostPID": "process", "hostIPC": "IPC"}

violation contains {
	"msg": sprintf("the pod must not use the node's %s namespace (%s: true)", [what, setting]),
	"field": sprintf("%s.%s", [k8s.pod_field, setting]),
} if {
	applies
	some setting, what in host_namespaces
	k8s.pod_spec[setting] == true
}
