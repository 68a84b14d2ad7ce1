package flowforge.validate.git_credentials_test

import data.flowforge.validate.testing as t

test_other_jobs_credentials_in_env_denied if {
	obj := t.job([t.set("/spec/template/spec/containers/0/env/2/valueFrom/secretKeyRef/name", "git-credentials-xyz")])
	t.job_deny(obj) == {{
		"msg": "secret \"git-credentials-xyz\" holds another job's git credentials (this job's are in \"git-credentials-abc\")",
		"field": "spec.template.spec.containers[0].env[2].valueFrom.secretKeyRef.name",
	}}
}

test_other_jobs_credentials_in_env_from_denied if {
	obj := t.job([t.set("/spec/template/spec/initContainers", [t.container({
		"name": "clone",
		"envFrom": [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "git-credentials-xyz"}}],
	})])])
	t.fields(t.job_deny(obj)) == {"spec.template.spec.initContainers[0].envFrom[1].secretRef.name"}
}

test_other_jobs_credentials_in_volumes_denied if {
	obj := t.job([
		t.set("/spec/template/spec/volumes/-", {"name": "creds", "secret": {"secretName": "git-credentials-xyz"}}),
		t.set("/spec/template/spec/volumes/-", {"name": "all", "projected": {"sources": [
			{"configMap": {"name": "settings"}},
			{"secret": {"name": "git-credentials-other"}},
		]}}),
	])
	t.fields(t.job_deny(obj)) == {
		"spec.template.spec.volumes[2].secret.secretName",
		"spec.template.spec.volumes[3].projected.sources[1].secret.name",
	}
}

test_prefixed_secret_without_job_id_denied if {
	obj := t.pod([t.remove("/metadata/labels/job-id")])
	denials := t.pod_deny(obj)
	t.fields(denials) == {"metadata.labels[job-id]", "spec.containers[0].env[2].valueFrom.secretKeyRef.name"}
	{
		"msg": "secret \"git-credentials-abc\" holds another job's git credentials (this object has no job-id label)",
		"field": "spec.containers[0].env[2].valueFrom.secretKeyRef.name",
	} in denials
}

test_own_credentials_and_other_secrets_admitted if {
	obj := t.job([
		t.set("/spec/template/spec/volumes/-", {"name": "creds", "secret": {"secretName": "git-credentials-abc"}}),
		t.set("/spec/template/spec/volumes/-", {"name": "key", "projected": {"sources": [{"secret": {"name": "claude-secret"}}]}}),
		t.set("/spec/template/spec/containers/0/envFrom", [{"secretRef": {"name": "team-settings"}}]),
	])
	count(t.job_deny(obj)) == 0
}

test_other_jobs_credentials_in_other_volume_sources_and_pull_secrets_denied if {
	obj := t.job([
		t.set("/spec/template/spec/volumes/-", {"name": "csi", "csi": {"driver": "secrets-store.csi.k8s.io", "nodePublishSecretRef": {"name": "git-credentials-xyz"}}}),
		t.set("/spec/template/spec/volumes/-", {"name": "ceph", "cephfs": {"monitors": ["m"], "secretRef": {"name": "git-credentials-xyz"}}}),
		t.set("/spec/template/spec/volumes/-", {"name": "az", "azureFile": {"shareName": "s", "secretName": "git-credentials-xyz"}}),
		t.set("/spec/template/spec/imagePullSecrets", [{"name": "registry"}, {"name": "git-credentials-xyz"}]),
	])
	fields := t.fields(t.job_deny(obj))
	{
		"spec.template.spec.volumes[2].csi.nodePublishSecretRef.name",
		"spec.template.spec.volumes[3].cephfs.secretRef.name",
		"spec.template.spec.volumes[4].azureFile.secretName",
		"spec.template.spec.imagePullSecrets[1].name",
	} - fields == set()
}

test_own_credentials_in_a_csi_volume_admitted if {
	obj := t.job([t.set("/spec/template/spec/volumes/-", {"name": "csi", "csi": {"driver": "secrets-store.csi.k8s.io", "nodePublishSecretRef": {"name": "git-credentials-abc"}}})])
	count(t.job_deny(obj)) == 0
}
