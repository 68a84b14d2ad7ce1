# AppArmor.
#
# Denies AppArmor type Unconfined, set either way Kubernetes accepts it:
#   the appArmorProfile field on the pod or any container, and
#   the legacy pod annotation
#   container.apparmor.security.beta.kubernetes.io/<container>: unconfined
#   (on a Job, in spec.template.metadata.annotations), which still takes
#   effect and overrides the pod's profile for that container.
# The mutation sets the pod's profile and aligns each container's, but
# keeps an explicit Unconfined so that it is denied here.
#
# Warns whenever the legacy annotation is used at all: it is deprecated
# since Kubernetes 1.30 in favour of securityContext.appArmorProfile.
package flowforge.validate

import data.flowforge.lib.k8s

apparmor_annotation_prefix := "container.apparmor.security.beta.kubernetes.io/"

violation contains {
	"msg": "the pod's AppArmor profile must not be Unconfined",
	"field": sprintf("%s.securityContext.appArmorProfile.type", [k8s.pod_field]),
} if {
	applies
	pod_security_context.appArmorProfile.type == "Unconfined"
}

violation contains {
	"msg": sprintf("container %q's AppArmor profile must not be Unconfined", [ctr.name]),
	"field": sprintf("%s.securityContext.appArmorProfile.type", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	security_context(ctr).appArmorProfile.type == "Unconfined"
}

violation contains {
	"msg": sprintf("container %q must not run unconfined by AppArmor (annotation %s)", [trim_prefix(key, apparmor_annotation_prefix), key]),
	"field": sprintf("%s.annotations[%s]", [pod_meta_field, key]),
} if {
	applies
	some key, value in pod_annotations
	startswith(key, apparmor_annotation_prefix)
	value == "unconfined"
}

warning contains {
	"msg": sprintf("annotation %s is deprecated: use securityContext.appArmorProfile", [key]),
	"field": sprintf("%s.annotations[%s]", [pod_meta_field, key]),
} if {
	applies
	some key, _ in pod_annotations
	startswith(key, apparmor_annotation_prefix)
}
