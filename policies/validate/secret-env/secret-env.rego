# Secrets given as literal values.
#
# Denies the secret environment variables (config.secrets.*.env:
# ANTHROPIC_API_KEY, GIT_CREDENTIALS) set with a literal value (field
# env[j].value) or from anything but a Secret (field env[j].valueFrom, e.g.
# a ConfigMap), on any container kind. A literal value is stored in the Job,
# readable by anyone who can read Jobs, and copied into every pod. The
# messages name the variable, never its value.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

secret_env_names := {s.env | some s in config.secrets}

secret_env(ctr) := [[j, env] |
	some j, env in object.get(ctr.container, "env", [])
	env.name in secret_env_names
]

violation contains {
	"msg": sprintf("container %q must take %s from a Secret (valueFrom.secretKeyRef), not a literal value", [ctr.name, env.name]),
	"field": sprintf("%s.env[%d].value", [ctr.field, j]),
} if {
	applies
	some ctr in k8s.containers
	some [j, env] in secret_env(ctr)
	object.get(env, "value", "") != ""
}

violation contains {
	"msg": sprintf("container %q must take %s from a Secret (valueFrom.secretKeyRef)", [ctr.name, env.name]),
	"field": sprintf("%s.env[%d].valueFrom", [ctr.field, j]),
} if {
	applies
	some ctr in k8s.containers
	some [j, env] in secret_env(ctr)
	from := env.valueFrom
	object.get(from, "secretKeyRef", null) == null
}
