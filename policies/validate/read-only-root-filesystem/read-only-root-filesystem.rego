# Read-only root filesystem.
#
# Denies a workload container whose securityContext.readOnlyRootFilesystem
# is not true. The mutation sets it on every Job container (and mounts
# writable, size-limited scratch space at /tmp and the workspace), so this
# fails only for a Pod created directly: an agent must not be able to
# rewrite its own image (binaries, CA certificates, git hooks).
package flowforge.validate

violation contains {
	"msg": sprintf("container %q must set readOnlyRootFilesystem: true", [ctr.name]),
	"field": sprintf("%s.securityContext.readOnlyRootFilesystem", [ctr.field]),
} if {
	applies
	some ctr in workload_containers
	object.get(security_context(ctr), "readOnlyRootFilesystem", false) != true
}
