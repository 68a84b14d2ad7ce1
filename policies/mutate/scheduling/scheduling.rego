# Scheduling onto sandboxed worker nodes.
#
# The worker pool's node selector and tolerations are merged into the
# Job's own: a user's entries are never dropped, and on a conflicting
# node-selector key the policy's value wins.
package flowforge.mutate

import data.flowforge.config
import data.flowforge.lib.k8s

patch contains {"setting": "nodeSelector", "op": "merge", "path": array.concat(k8s.pod_path, ["nodeSelector"]), "value": config.scheduling.nodeSelector} if applies

patch contains {"setting": "tolerations", "op": "union", "path": array.concat(k8s.pod_path, ["tolerations"]), "value": config.scheduling.tolerations} if applies
