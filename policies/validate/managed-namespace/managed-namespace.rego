# Managed namespaces: no bypass by omission.
#
# Every other rule looks only at objects with the selector label
# (app=flowforge), so leaving the label off would skip them all. In a
# namespace labelled config.managedNamespaceLabel (flowforge.io/managed:
# "true"), denies a Job or Pod without the selector label (field
# metadata.labels[app]). Outside managed namespaces an unlabelled object is
# not FlowForge's, and nothing applies.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

namespace_name := object.get(input, ["namespace", "name"], object.get(input.request, "namespace", ""))

identity_violation contains {
	"msg": sprintf("namespace %q is managed by FlowForge: every Job and Pod in it requires the label %s=%s", [namespace_name, config.selector.label, config.selector.value]),
	"field": label_field(config.selector.label),
} if {
	not k8s.selected
	workload
	k8s.managed_namespace
}
