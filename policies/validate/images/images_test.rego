package flowforge.validate.images_test

import data.flowforge.validate
import data.flowforge.validate.testing as t

digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

worker_image := "/spec/template/spec/containers/0/image"

test_image_from_other_registry_denied if {
	obj := t.job([t.set(worker_image, "docker.io/evil:1")])
	t.job_deny(obj) == {{
		"msg": "image \"docker.io/evil:1\" is not from an allowed registry (ghcr.io/flowforge/, registry.example.com/)",
		"field": "spec.template.spec.containers[0].image",
	}}
}

test_registry_is_a_prefix_of_the_whole_reference if {
	lookalike := t.job([t.set(worker_image, "ghcr.io/flowforge-evil/worker:1.0.0")])
	t.fields(t.job_deny(lookalike)) == {"spec.template.spec.containers[0].image"}
	no_registry := t.job([t.set(worker_image, "flowforge/worker:1.0.0")])
	count(t.job_deny(no_registry)) == 1
	missing := t.job([t.remove(worker_image)])
	count(t.job_deny(missing)) == 2
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
	latest := t.job([t.set(worker_image, "ghcr.io/flowforge/claude-worker:latest")])
	t.job_deny(latest) == {{
		"msg": "image \"ghcr.io/flowforge/claude-worker:latest\" is not pinned: use a tag other than latest (no tag means latest), or a digest (@sha256:...)",
		"field": "spec.template.spec.containers[0].image",
	}}
	untagged := t.job([t.set(worker_image, "ghcr.io/flowforge/claude-worker")])
	t.fields(t.job_deny(untagged)) == {"spec.template.spec.containers[0].image"}
	empty_tag := t.job([t.set(worker_image, "ghcr.io/flowforge/claude-worker:")])
	t.fields(t.job_deny(empty_tag)) == {"spec.template.spec.containers[0].image"}
	short_digest := t.job([t.set(worker_image, "ghcr.io/flowforge/claude-worker@sha256:0123")])
	t.fields(t.job_deny(short_digest)) == {"spec.template.spec.containers[0].image"}
}

test_registry_port_is_not_a_tag if {
	obj := t.job([t.set(worker_image, "registry.example.com:5000/claude-worker")])

	# Not from an allowed registry ("registry.example.com/" does not match),
	# and not pinned: two denials on the same field.
	count(t.job_deny(obj)) == 2
	not validate.image_tag("registry.example.com:5000/claude-worker")
	validate.image_tag("registry.example.com:5000/claude-worker:2.1") == "2.1"
	validate.image_tag("ghcr.io/flowforge/w:1.0@sha256:abc") == "1.0"
}

test_pinned_images_admitted if {
	tag := t.job([t.set(worker_image, "registry.example.com/team/worker:2024.11.1")])
	count(t.job_deny(tag)) == 0
	by_digest := t.job([t.set(worker_image, sprintf("ghcr.io/flowforge/claude-worker@%s", [digest]))])
	count(t.job_deny(by_digest)) == 0
	latest_with_digest := t.job([t.set(worker_image, sprintf("ghcr.io/flowforge/claude-worker:latest@%s", [digest]))])
	count(t.job_deny(latest_with_digest)) == 0
}

test_digest_pinning if {
	tag := t.job([t.set(worker_image, "ghcr.io/flowforge/claude-worker:1.0.0")])
	denials := t.job_deny(tag) with data.flowforge.config.images.pinning as "digest"
	denials == {{
		"msg": "image \"ghcr.io/flowforge/claude-worker:1.0.0\" is not pinned: use a digest (@sha256:...)",
		"field": "spec.template.spec.containers[0].image",
	}}
	by_digest := t.job([t.set(worker_image, sprintf("ghcr.io/flowforge/claude-worker@%s", [digest]))])
	none := t.job_deny(by_digest) with data.flowforge.config.images.pinning as "digest"
	count(none) == 0
}

test_tag_pinning_warns if {
	tag := t.job([t.set(worker_image, "ghcr.io/flowforge/claude-worker:1.0.0")])
	t.job_warn(tag) == {{
		"msg": "image \"ghcr.io/flowforge/claude-worker:1.0.0\" is pinned by tag: a digest (@sha256:...) pins its content",
		"field": "spec.template.spec.containers[0].image",
	}}
	by_digest := t.job([t.set(worker_image, sprintf("ghcr.io/flowforge/claude-worker:1.0.0@%s", [digest]))])
	count(t.job_warn(by_digest)) == 0
}
