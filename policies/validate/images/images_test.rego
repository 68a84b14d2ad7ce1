package flowforge.validate.images_test

import data.flowforge.lib.fixtures
import data.flowforge.validate
import data.flowforge.validate.testing as t

digest := fixtures.digest

worker_image := "/spec/template/spec/containers/0/image"

worker_field := "spec.template.spec.containers[0].image"

image_job(image) := t.job([t.set(worker_image, image)])

test_image_from_other_registry_denied if {
	t.job_deny(image_job("docker.io/evil:1")) == {{
		"msg": "image \"docker.io/evil:1\" is not from an allowed repository (ghcr.io/flowforge, registry.example.com/)",
		"field": worker_field,
	}}
}

test_repository_path_compared_at_component_boundaries if {
	# A look-alike organisation, and one that merely shares a prefix.
	t.fields(t.job_deny(image_job("ghcr.io/flowforge-evil/worker:1.0.0"))) == {worker_field}
	t.fields(t.job_deny(image_job("ghcr.io/flowforgex/w:1"))) == {worker_field}

	# Normalised: a bare name is docker.io, whatever its first component.
	count(t.job_deny(image_job("flowforge/worker:1.0.0"))) == 1

	# The registry host is compared as the parser returns it.
	count(t.job_deny(image_job("GHCR.io/flowforge/w:1"))) == 1

	# Below the path, at any depth, and the path itself.
	count(t.job_deny(image_job("ghcr.io/flowforge/team/w:1"))) == 0
	count(t.job_deny(image_job("ghcr.io/flowforge:1.0"))) == 0
}

test_unparsable_images_denied if {
	t.job_deny(image_job("ghcr.io/flowforge/../x:1")) == {{
		"msg": "image \"ghcr.io/flowforge/../x:1\" is not a valid image reference: invalid reference format",
		"field": worker_field,
	}}
	t.fields(t.job_deny(image_job("ghcr.io/flowforge/claude-worker:"))) == {worker_field}
	t.fields(t.job_deny(image_job("ghcr.io/flowforge/claude-worker@sha256:0123"))) == {worker_field}
	t.fields(t.job_deny(image_job(""))) == {worker_field}
	missing := t.job([t.remove(worker_image)])
	t.fields(t.job_deny(missing)) == {worker_field}
	t.fields(t.job_deny(image_job(7))) == {worker_field}
}

test_images_missing_from_the_view_fail_closed if {
	denials := validate.deny with input as object.remove(fixtures.job_input(fixtures.hardened_job), ["images"])
	denials == {{
		"msg": "image \"ghcr.io/flowforge/claude-worker:1.0.0\" is not a valid image reference: it could not be parsed",
		"field": worker_field,
	}}
}

test_image_in_init_container_and_ephemeral_container_denied if {
	obj := t.pod([
		t.set("/spec/initContainers", [t.container({"name": "clone", "image": "alpine/git:2.45.0"})]),
		t.set("/spec/ephemeralContainers", [{"name": "debug", "image": "busybox:1.36"}]),
	])
	fields := t.fields(t.pod_deny(obj))
	"spec.initContainers[0].image" in fields
	"spec.ephemeralContainers[0].image" in fields
}

test_unpinned_images_denied if {
	t.job_deny(image_job("ghcr.io/flowforge/claude-worker:latest")) == {{
		"msg": "image \"ghcr.io/flowforge/claude-worker:latest\" is not pinned: use a tag other than latest (no tag means latest), or a digest (@sha256:...)",
		"field": worker_field,
	}}
	t.fields(t.job_deny(image_job("ghcr.io/flowforge/claude-worker"))) == {worker_field}
}

test_registry_port_is_not_a_tag if {
	# Not from an allowed repository (the host with its port is
	# registry.example.com:5000), and not pinned: two denials on one field.
	count(t.job_deny(image_job("registry.example.com:5000/claude-worker"))) == 2
	count(t.job_deny(image_job("registry.example.com:5000/claude-worker:2.1"))) == 1
}

test_pinned_images_admitted if {
	count(t.job_deny(image_job("registry.example.com/team/worker:2024.11.1"))) == 0
	count(t.job_deny(image_job(sprintf("ghcr.io/flowforge/claude-worker@%s", [digest])))) == 0
	count(t.job_deny(image_job(sprintf("ghcr.io/flowforge/claude-worker:latest@%s", [digest])))) == 0
}

test_digest_pinning if {
	denials := t.job_deny(image_job("ghcr.io/flowforge/claude-worker:1.0.0")) with data.flowforge.config.images.pinning as "digest"
	denials == {{
		"msg": "image \"ghcr.io/flowforge/claude-worker:1.0.0\" is not pinned: use a digest (@sha256:...)",
		"field": worker_field,
	}}
	none := t.job_deny(image_job(sprintf("ghcr.io/flowforge/claude-worker@%s", [digest]))) with data.flowforge.config.images.pinning as "digest"
	count(none) == 0
}

test_tag_pinning_warns if {
	t.job_warn(image_job("ghcr.io/flowforge/claude-worker:1.0.0")) == {{
		"msg": "image \"ghcr.io/flowforge/claude-worker:1.0.0\" is pinned by tag: a digest (@sha256:...) pins its content",
		"field": worker_field,
	}}
	count(t.job_warn(image_job(sprintf("ghcr.io/flowforge/claude-worker:1.0.0@%s", [digest])))) == 0
}

test_under_path if {
	validate.under_path("flowforge/w", "flowforge")
	validate.under_path("anything/at/all", "")
	validate.under_path("flowforge", "flowforge")
	not validate.under_path("flowforge-evil/w", "flowforge")
	not validate.under_path("flowforgex", "flowforge")
}
