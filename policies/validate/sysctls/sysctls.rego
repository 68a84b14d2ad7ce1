# Sysctls.
#
# Denies a pod sysctl (securityContext.sysctls[i].name) that is not in
# config.safeSysctls, the namespaced sysctls that cannot affect other pods
# on the node. Names may be written with "/" separators, as the kubelet
# accepts ("net/ipv4/tcp_syncookies"); they are compared in "." form.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

# sysctl_name: the dotted form of a sysctl name. A name with a "/" uses "/"
# as separator, and any "." in it is part of a component (a VLAN interface
# like eth0.100): the two are swapped.
sysctl_name(name) := strings.replace_n({"/": ".", ".": "/"}, name) if contains(name, "/")

sysctl_name(name) := name if not contains(name, "/")

violation contains {
	"msg": sprintf("sysctl %s is not allowed (allowed: %s)", [sysctl.name, joined(config.safeSysctls)]),
	"field": sprintf("%s.securityContext.sysctls[%d].name", [k8s.pod_field, i]),
} if {
	applies
	some i, sysctl in object.get(pod_security_context, "sysctls", [])
	not sysctl_name(sysctl.name) in config.safeSysctls
}
