# Pod lifecycle bounds.
#
# terminationGracePeriodSeconds: a cancel, a timeout or an eviction ends a
# pod within this many seconds. Unset gets config.job.
# terminationGracePeriodSeconds.default; the API server fills in its own
# default (apiServerDefault, 30) before admission, so that value counts as
# unset too. A value above the maximum is denied by validation
# (validate/job-lifecycle), not clamped.
package flowforge.mutate

import data.flowforge.config
import data.flowforge.lib.k8s

grace_config := config.job.terminationGracePeriodSeconds

grace_path := array.concat(k8s.pod_path, ["terminationGracePeriodSeconds"])

patch contains {"setting": "terminationGracePeriodSeconds", "op": "default", "path": grace_path, "value": grace_config.default} if applies

patch contains {"setting": "terminationGracePeriodSeconds", "op": "set", "path": grace_path, "value": grace_config.default} if {
	applies
	grace_config.default != grace_config.apiServerDefault
	object.get(k8s.obj, grace_path, null) == grace_config.apiServerDefault
}
