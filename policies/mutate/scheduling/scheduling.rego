# Scheduling onto sandboxed worker nodes.
#
# The worker pool's node selector and tolerations are merged into the
# Job's own: a user's entries are never dropped, and on a conflicting
# node-selector key the policy's value wins.
package flowforge.mutate

import data.flowforge.config
import data.flowforge.lib.k8s

patch contains merge_op("nodeSelector", array.concat(k8s.pod_path, ["nodeSelector"]), config.scheduling.nodeSelector) if applies

patch contains union_op("tolerations", array.concat(k8s.pod_path, ["tolerations"]), config.scheduling.tolerations) if applies
