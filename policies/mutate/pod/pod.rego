# Pod hardening.
#
# gVisor runtime class, a non-root pod security context with seccomp and
# AppArmor profiles, no service-account token, no service links, the
# FlowForge priority class, and restartPolicy Never (one pod per attempt,
# which podFailurePolicy requires).
package flowforge.mutate

import data.flowforge.config
import data.flowforge.lib.k8s

pod_security_context := object.get(k8s.pod_spec, "securityContext", {})

# seccomp_profile: the first namespace override that matches the
# namespace's labels, else the default.
seccomp_overrides := [o.profile |
	some o in config.seccomp.namespaceOverrides
	every key, value in o.namespaceSelector {
		k8s.namespace_labels[key] == value
	}
]

seccomp_profile := seccomp_overrides[0] if count(seccomp_overrides) > 0

seccomp_profile := config.seccomp.default if count(seccomp_overrides) == 0

unconfined(profile) if profile.type == "Unconfined"

# legacy_apparmor: the pod uses the deprecated AppArmor annotations. The API
# server refuses a field that disagrees with them, so the fields are left
# alone and validation denies the annotations instead.
legacy_apparmor if {
	some key, _ in object.get(k8s.obj, array.concat(k8s.pod_meta_path, ["annotations"]), {})
	startswith(key, "container.apparmor.security.beta.kubernetes.io/")
}

patch contains {"setting": "runtimeClassName", "op": "default", "path": array.concat(k8s.pod_path, ["runtimeClassName"]), "value": config.runtimeClass.default} if applies

patch contains {"setting": "automountServiceAccountToken", "op": "set", "path": array.concat(k8s.pod_path, ["automountServiceAccountToken"]), "value": false} if applies

patch contains {"setting": "enableServiceLinks", "op": "set", "path": array.concat(k8s.pod_path, ["enableServiceLinks"]), "value": false} if applies

patch contains {"setting": "priorityClassName", "op": "set", "path": array.concat(k8s.pod_path, ["priorityClassName"]), "value": config.priorityClassName} if applies

patch contains {"setting": "restartPolicy", "op": "set", "path": array.concat(k8s.pod_path, ["restartPolicy"]), "value": "Never"} if applies

patch contains {"setting": "podSecurityContext.runAsNonRoot", "op": "default", "path": array.concat(k8s.pod_path, ["securityContext", "runAsNonRoot"]), "value": true} if applies

patch contains {"setting": sprintf("podSecurityContext.%s", [field]), "op": "default", "path": array.concat(k8s.pod_path, ["securityContext", field]), "value": value} if {
	applies
	some field, value in config.podSecurityContext
}

patch contains {"setting": "podSecurityContext.seccompProfile", "op": "set", "path": array.concat(k8s.pod_path, ["securityContext", "seccompProfile"]), "value": seccomp_profile} if {
	applies
	not unconfined(object.get(pod_security_context, "seccompProfile", {}))
}

patch contains {"setting": "podSecurityContext.appArmorProfile", "op": "set", "path": array.concat(k8s.pod_path, ["securityContext", "appArmorProfile"]), "value": config.appArmor} if {
	applies
	not unconfined(object.get(pod_security_context, "appArmorProfile", {}))
	not legacy_apparmor
}
