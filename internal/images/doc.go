// Package images builds FlowForge's container images without Docker, with
// github.com/google/go-containerregistry: for each program a static Go
// binary (CGO_ENABLED=0, cross-compiled per platform) on an empty base, with
// the CA certificates, an /etc/passwd naming the non-root user 65532, OCI
// labels (source, revision, version, created) and fixed timestamps, so the
// same source gives the same digests. The platforms' images are gathered in
// an OCI image index, written as an OCI layout directory, an OCI archive of
// that layout, and one docker-loadable tarball per platform, ready for
// `crane push`. `make images` runs it (hack/release); docs/operations.md
// describes the output.
package images
