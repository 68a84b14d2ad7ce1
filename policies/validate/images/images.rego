# Images.
#
# Denies, on any container kind (field containers[i].image):
#   an image outside config.images.allowedRegistries (a prefix of the image
#   reference: "ghcr.io/flowforge/" does not match "ghcr.io/flowforge-x/"),
#   an image that is not pinned per config.images.pinning:
#     "tag"     a tag not in forbiddenTags, or a digest; an image without a
#               tag means "latest", so it is not pinned
#     "digest"  a digest (@sha256:<64 hex>)
# A registry port is not a tag: "registry.example.com:5000/img" has none.
#
# Warns when pinning is "tag" and an image is pinned by a tag only: a tag
# can be moved to other content, a digest cannot.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

images := config.images

container_image(ctr) := object.get(ctr.container, "image", "")

allowed_registry(image) if {
	some prefix in images.allowedRegistries
	startswith(image, prefix)
}

has_digest(image) if regex.match(`@sha256:[a-f0-9]{64}$`, image)

# image_tag: the tag of an image reference; undefined when it has none. The
# tag follows a ":" in the last path component, before any digest.
image_tag(image) := tag if {
	components := split(split(image, "@")[0], "/")
	last := components[count(components) - 1]
	contains(last, ":")
	tag := substring(last, indexof(last, ":") + 1, -1)
}

pinned_by_tag(image) if {
	images.pinning == "tag"
	tag := image_tag(image)
	tag != ""
	not tag in images.forbiddenTags
}

pinned(image) if has_digest(image)

pinned(image) if pinned_by_tag(image)

pinning_rule := sprintf("a tag other than %s (no tag means latest), or a digest (@sha256:...)", [joined(images.forbiddenTags)]) if images.pinning == "tag"

pinning_rule := "a digest (@sha256:...)" if images.pinning != "tag"

violation contains {
	"msg": sprintf("image %q is not from an allowed registry (%s)", [image, joined(images.allowedRegistries)]),
	"field": sprintf("%s.image", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	image := container_image(ctr)
	not allowed_registry(image)
}

violation contains {
	"msg": sprintf("image %q is not pinned: use %s", [image, pinning_rule]),
	"field": sprintf("%s.image", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	image := container_image(ctr)
	not pinned(image)
}

warning contains {
	"msg": sprintf("image %q is pinned by tag: a digest (@sha256:...) pins its content", [image]),
	"field": sprintf("%s.image", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	image := container_image(ctr)
	pinned_by_tag(image)
	not has_digest(image)
}
