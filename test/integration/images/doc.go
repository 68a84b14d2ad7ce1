// Package images holds the integration tests of FlowForge's container
// images (internal/images, `make images`): built twice from the same
// source they have the same digests, and each program's image, unpacked,
// runs from its own filesystem only (chroot, as user 65532, with the
// image's environment) against the local cluster and answers its health
// endpoint.
package images
