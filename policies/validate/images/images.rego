# Images.
#
# Every container image is parsed on the Go side with
# github.com/distribution/reference, the parser container runtimes use, and
# handed to the policy as input.images[<raw reference>]:
#   {"valid": true, "domain", "path", "tag"?, "digest"?}  normalised: "alpine"
#       is docker.io/library/alpine, "registry.example.com:5000/x" has the
#       domain registry.example.com:5000 and no tag
#   {"valid": false, "error"}  the parser refused it
# Rego compares components, never string prefixes.
#
# Denies, on any container kind (field containers[i].image):
#   an image the parser refused, or one missing from input.images (not a
#     string, or an input built without the view): fail closed;
#   an image outside config.images.allowedRepositories: the domain must equal
#     an entry's registry and the path must equal its path or lie below it
#     at a "/" boundary (ghcr.io + flowforge admits ghcr.io/flowforge/worker,
#     not ghcr.io/flowforge-evil/worker);
#   an image that is not pinned per config.images.pinning:
#     "tag"     a tag not in forbiddenTags, or a digest; an image without a
#               tag means "latest", so it is not pinned
#     "digest"  a digest
#
# Warns when pinning is "tag" and an image is pinned by a tag only: a tag
# can be moved to other content, a digest cannot.
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

images := config.images

container_image(ctr) := object.get(ctr.container, "image", "")

# image_view: the parsed view of a reference; undefined when it is missing.
image_view(image) := input.images[image] if is_string(image)

parsed(image) := view if {
	view := image_view(image)
	view.valid == true
}

allowed_repository(view) if {
	some entry in images.allowedRepositories
	view.domain == entry.registry
	under_path(view.path, entry.path)
}

under_path(_, "")

under_path(path, prefix) if path == prefix

under_path(path, prefix) if {
	prefix != ""
	startswith(path, concat("", [prefix, "/"]))
}

has_digest(view) if object.get(view, "digest", "") != ""

pinned_by_tag(view) if {
	images.pinning == "tag"
	tag := object.get(view, "tag", "")
	tag != ""
	not tag in images.forbiddenTags
}

pinned(view) if has_digest(view)

pinned(view) if pinned_by_tag(view)

pinning_rule := sprintf("a tag other than %s (no tag means latest), or a digest (@sha256:...)", [joined(images.forbiddenTags)]) if images.pinning == "tag"

pinning_rule := "a digest (@sha256:...)" if images.pinning != "tag"

allowed_repositories := joined([sprintf("%s/%s", [e.registry, e.path]) | some e in images.allowedRepositories])

violation contains {
	"msg": sprintf("image %s is not a valid image reference: %s", [json.marshal(image), reason]),
	"field": sprintf("%s.image", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	image := container_image(ctr)
	not parsed(image)
	reason := object.get(object.get(input, ["images", image], {}), "error", "it could not be parsed")
}

violation contains {
	"msg": sprintf("image %q is not from an allowed repository (%s)", [image, allowed_repositories]),
	"field": sprintf("%s.image", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	image := container_image(ctr)
	view := parsed(image)
	not allowed_repository(view)
}

violation contains {
	"msg": sprintf("image %q is not pinned: use %s", [image, pinning_rule]),
	"field": sprintf("%s.image", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	image := container_image(ctr)
	view := parsed(image)
	not pinned(view)
}

warning contains {
	"msg": sprintf("image %q is pinned by tag: a digest (@sha256:...) pins its content", [image]),
	"field": sprintf("%s.image", [ctr.field]),
} if {
	applies
	some ctr in k8s.containers
	image := container_image(ctr)
	view := parsed(image)
	pinned_by_tag(view)
	not has_digest(view)
}
