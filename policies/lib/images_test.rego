# The parsed view of every image the policy tests use, as the Go side
# (policies.ParseImage, github.com/distribution/reference) builds
# input.images. policies/images_test.go checks each entry against the Go
# parser, so these views cannot drift from what the webhook sends.
package flowforge.lib.fixtures

digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

images := {
	"ghcr.io/flowforge/claude-worker:1.0.0": {"valid": true, "domain": "ghcr.io", "path": "flowforge/claude-worker", "tag": "1.0.0"},
	"ghcr.io/flowforge/debug:1.0.0": {"valid": true, "domain": "ghcr.io", "path": "flowforge/debug", "tag": "1.0.0"},
	"ghcr.io/flowforge/proxy:1.0.0": {"valid": true, "domain": "ghcr.io", "path": "flowforge/proxy", "tag": "1.0.0"},
	"ghcr.io/flowforge/git:1.0.0": {"valid": true, "domain": "ghcr.io", "path": "flowforge/git", "tag": "1.0.0"},
	"ghcr.io/flowforge/x:1": {"valid": true, "domain": "ghcr.io", "path": "flowforge/x", "tag": "1"},
	"ghcr.io/flowforge/team/w:1": {"valid": true, "domain": "ghcr.io", "path": "flowforge/team/w", "tag": "1"},
	"ghcr.io/flowforge:1.0": {"valid": true, "domain": "ghcr.io", "path": "flowforge", "tag": "1.0"},
	sprintf("ghcr.io/flowforge/claude-worker@%s", [digest]): {"valid": true, "domain": "ghcr.io", "path": "flowforge/claude-worker", "digest": digest},
	sprintf("ghcr.io/flowforge/claude-worker:1.0.0@%s", [digest]): {"valid": true, "domain": "ghcr.io", "path": "flowforge/claude-worker", "tag": "1.0.0", "digest": digest},
	sprintf("ghcr.io/flowforge/claude-worker:latest@%s", [digest]): {"valid": true, "domain": "ghcr.io", "path": "flowforge/claude-worker", "tag": "latest", "digest": digest},
	"ghcr.io/flowforge/claude-worker:latest": {"valid": true, "domain": "ghcr.io", "path": "flowforge/claude-worker", "tag": "latest"},
	"ghcr.io/flowforge/claude-worker": {"valid": true, "domain": "ghcr.io", "path": "flowforge/claude-worker"},
	"ghcr.io/flowforge/claude-worker:": {"valid": false, "error": "invalid reference format"},
	"ghcr.io/flowforge/claude-worker@sha256:0123": {"valid": false, "error": "invalid reference format"},
	"ghcr.io/flowforge/../x:1": {"valid": false, "error": "invalid reference format"},
	"": {"valid": false, "error": "invalid reference format"},
	"ghcr.io/flowforge-evil/worker:1.0.0": {"valid": true, "domain": "ghcr.io", "path": "flowforge-evil/worker", "tag": "1.0.0"},
	"ghcr.io/flowforgex/w:1": {"valid": true, "domain": "ghcr.io", "path": "flowforgex/w", "tag": "1"},
	"GHCR.io/flowforge/w:1": {"valid": true, "domain": "GHCR.io", "path": "flowforge/w", "tag": "1"},
	"registry.example.com/team/worker:2024.11.1": {"valid": true, "domain": "registry.example.com", "path": "team/worker", "tag": "2024.11.1"},
	"registry.example.com:5000/claude-worker": {"valid": true, "domain": "registry.example.com:5000", "path": "claude-worker"},
	"registry.example.com:5000/claude-worker:2.1": {"valid": true, "domain": "registry.example.com:5000", "path": "claude-worker", "tag": "2.1"},
	"flowforge/worker:1.0.0": {"valid": true, "domain": "docker.io", "path": "flowforge/worker", "tag": "1.0.0"},
	"docker.io/evil:1": {"valid": true, "domain": "docker.io", "path": "library/evil", "tag": "1"},
	"busybox:1.36": {"valid": true, "domain": "docker.io", "path": "library/busybox", "tag": "1.36"},
	"alpine/git:2.45.0": {"valid": true, "domain": "docker.io", "path": "alpine/git", "tag": "2.45.0"},
}
