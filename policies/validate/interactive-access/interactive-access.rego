# Interactive access (connect_violation).
#
# pods/exec, pods/attach, pods/portforward and pods/proxy (CONNECT) reach
# into a running pod: a shell or the agent's terminal sees its environment,
# its files and its credentials, and a port-forward or proxy reaches its
# ports from outside any NetworkPolicy. Like ephemeral containers, they are
# denied on a labelled pod unless config.interactiveAccess says "allow" for
# that subresource, or the requester is in one of
# config.interactiveAccess.allowedGroups (a break-glass group). A connect
# subresource the knob does not name is denied too.
#
# The API server sends the connect options (PodExecOptions, ...) as the
# request's object, without the pod's labels; the webhook looks the pod up
# and gives the policy its metadata as request.object (kind Pod). Labels
# are read from there.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

interactive_access := object.get(config, "interactiveAccess", {})

interactive_allowed(sub) if interactive_access[sub] == "allow"

interactive_allowed(_) if {
	some group in object.get(input.request, ["userInfo", "groups"], [])
	group in object.get(interactive_access, "allowedGroups", [])
}

connect_verbs := {"exec": "exec into", "attach": "attach to", "portforward": "port-forward to", "proxy": "proxy to"}

connect_violation contains {
	"msg": sprintf("%s FlowForge pod %q is not allowed: it holds the agent's credentials (policy interactiveAccess.%s is %q)", [object.get(connect_verbs, sub, sprintf("%s on", [sub])), input.request.name, sub, object.get(interactive_access, sub, "unset")]),
	"field": sprintf("pods/%s", [sub]),
} if {
	k8s.operation == "CONNECT"
	input.request.resource == "pods"
	k8s.selected
	sub := input.request.subResource
	not interactive_allowed(sub)
}
