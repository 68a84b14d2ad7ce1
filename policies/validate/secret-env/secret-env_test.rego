package flowforge.validate.secret_env_test

import data.flowforge.validate.testing as t

test_literal_api_key_denied if {
	obj := t.job([t.set("/spec/template/spec/containers/0/env/1", {"name": "ANTHROPIC_API_KEY", "value": "sk-ant-SECRET"})])
	denials := t.job_deny(obj)
	denials == {{
		"msg": "container \"worker\" must take ANTHROPIC_API_KEY from a Secret (valueFrom.secretKeyRef), not a literal value",
		"field": "spec.template.spec.containers[0].env[1].value",
	}}

	# The value is never echoed.
	every d in denials {
		not contains(d.msg, "sk-ant-SECRET")
	}
}

test_literal_git_credentials_in_init_container_denied if {
	obj := t.job([t.set("/spec/template/spec/initContainers", [t.container({
		"name": "clone",
		"env": [{"name": "GIT_CREDENTIALS", "value": "https://x:token@github.com"}],
	})])])
	t.fields(t.job_deny(obj)) == {"spec.template.spec.initContainers[0].env[0].value"}
}

test_secret_from_configmap_denied if {
	obj := t.job([t.set("/spec/template/spec/containers/0/env/1", {
		"name": "ANTHROPIC_API_KEY",
		"valueFrom": {"configMapKeyRef": {"name": "settings", "key": "api-key"}},
	})])
	t.job_deny(obj) == {{
		"msg": "container \"worker\" must take ANTHROPIC_API_KEY from a Secret (valueFrom.secretKeyRef)",
		"field": "spec.template.spec.containers[0].env[1].valueFrom",
	}}
}

test_secrets_from_secret_refs_admitted if {
	# The fixture's env: both from secretKeyRef, plus a literal JOB_ID.
	count(t.job_deny(t.job([]))) == 0

	# An empty value next to valueFrom (the API server allows it) leaks nothing.
	empty := t.job([t.set("/spec/template/spec/containers/0/env/1/value", "")])
	count(t.job_deny(empty)) == 0

	# Other variables may have literal values.
	other := t.job([t.set("/spec/template/spec/containers/0/env/-", {"name": "ANTHROPIC_MODEL", "value": "claude"})])
	count(t.job_deny(other)) == 0
}
