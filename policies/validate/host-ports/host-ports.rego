# Host ports.
#
# Denies containers[i].ports[j].hostPort (any container kind): a host port
# binds the port on the node's own network interfaces, reachable from
# outside the pod network policy, and pins the pod to nodes where it is free.
package flowforge.validate

import data.flowforge.lib.k8s

violation contains {
	"msg": sprintf("container %q must not bind port %v on the node (hostPort)", [ctr.name, port.hostPort]),
	"field": sprintf("%s.ports[%d].hostPort", [ctr.field, j]),
} if {
	applies
	some ctr in k8s.containers
	some j, port in object.get(ctr.container, "ports", [])
	object.get(port, "hostPort", 0) != 0
}
