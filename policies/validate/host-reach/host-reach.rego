# Host reach: what the kubelet or the node does on a container's behalf.
#
# Denies, on every container kind:
#   a probe (liveness, readiness, startup) or lifecycle handler (postStart,
#     preStop) whose httpGet.host or tcpSocket.host is set: the kubelet
#     dials it from the node's network, outside gVisor and any
#     NetworkPolicy, so a pod could reach the node's or the cloud's
#     metadata endpoints. The Pod Security Standards' baseline check "probe
#     or lifecycle host" (1.34 and later) allows only unset or empty, and
#     so does FlowForge; the host is then the pod's own IP.
# and on the pod's and every container's securityContext.seLinuxOptions:
#   a type outside config.seLinux.allowedTypes (the baseline list:
#     container_t, container_init_t, container_kvm_t, container_engine_t,
#     or unset);
#   a user or a role (baseline allows neither).
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

probes := ["livenessProbe", "readinessProbe", "startupProbe"]

lifecycle_handlers := ["postStart", "preStop"]

# handlers: every probe and lifecycle handler of every container, with the
# field path of the handler.
handlers contains [ctr, handler, field] if {
	some ctr in k8s.containers
	some probe in probes
	handler := ctr.container[probe]
	field := sprintf("%s.%s", [ctr.field, probe])
}

handlers contains [ctr, handler, field] if {
	some ctr in k8s.containers
	some name in lifecycle_handlers
	handler := ctr.container.lifecycle[name]
	field := sprintf("%s.lifecycle.%s", [ctr.field, name])
}

violation contains {
	"msg": sprintf("container %q: %s.host %q is dialled from the node's network; leave it unset (the pod's own IP)", [ctr.name, action, host]),
	"field": sprintf("%s.%s.host", [field, action]),
} if {
	applies
	some [ctr, handler, field] in handlers
	some action in ["httpGet", "tcpSocket"]
	host := handler[action].host
	host != ""
	host != null
}

# se_linux_options: the pod's and every container's, with their field paths.
se_linux_options contains [opts, field] if {
	opts := pod_security_context.seLinuxOptions
	field := sprintf("%s.securityContext.seLinuxOptions", [k8s.pod_field])
}

se_linux_options contains [opts, field] if {
	some ctr in k8s.containers
	opts := security_context(ctr).seLinuxOptions
	field := sprintf("%s.securityContext.seLinuxOptions", [ctr.field])
}

violation contains {
	"msg": sprintf("SELinux type %q is not allowed (allowed: %s)", [type, joined([t | some t in config.seLinux.allowedTypes; t != ""])]),
	"field": sprintf("%s.type", [field]),
} if {
	applies
	some [opts, field] in se_linux_options
	type := object.get(opts, "type", "")
	not type in config.seLinux.allowedTypes
}

violation contains {
	"msg": sprintf("SELinux %s %q is not allowed: leave it unset", [setting, value]),
	"field": sprintf("%s.%s", [field, setting]),
} if {
	applies
	some [opts, field] in se_linux_options
	some setting in ["user", "role"]
	value := object.get(opts, setting, "")
	value != ""
}
