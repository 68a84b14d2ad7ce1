package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user, its binary's directory and the CA bundle's path.
const (
	UserID     = 65532
	BinDir     = "/usr/local/bin"
	CACertPath = "/etc/ssl/certs/ca-certificates.crt"
)

// OCI label and annotation keys (github.com/opencontainers/image-spec, annotations.md).
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
	LabelCreated  = "org.opencontainers.image.created"
	LabelTitle    = "org.opencontainers.image.title"
	LabelLicenses = "org.opencontainers.image.licenses"
)

// Metadata describes what every image of a build records.
type Metadata struct {
	// Source is the repository URL, Revision its commit, Version the
	// release (a tag or `git describe`).
	Source, Revision, Version string
	// Created is every timestamp of the image: the files' modification
	// times, the config's and the history's. Take it from the source (the
	// commit time, or SOURCE_DATE_EPOCH), never from the clock, so that
	// the same source gives the same digest.
	Created time.Time
}

func (m Metadata) validate() error {
	var missing []string
	for k, v := range map[string]string{"source": m.Source, "revision": m.Revision, "version": m.Version} {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("images: metadata lacks %s", strings.Join(missing, ", "))
	}
	if m.Created.IsZero() {
		return fmt.Errorf("images: metadata lacks a creation time (use the commit time or SOURCE_DATE_EPOCH)")
	}
	return nil
}

// Labels returns the OCI labels of the image of program.
func (m Metadata) Labels(program string) map[string]string {
	return map[string]string{
		LabelSource:   m.Source,
		LabelRevision: m.Revision,
		LabelVersion:  m.Version,
		LabelCreated:  m.Created.UTC().Format(time.RFC3339),
		LabelTitle:    program,
	}
}

// file is one entry of a layer.
type file struct {
	name string // without a leading slash; a trailing one makes a directory
	mode int64
	uid  int
	data []byte
}

// BaseLayer is the layer every image shares: /etc/passwd and /etc/group
// naming root and nonroot (65532), the CA bundle, and an empty home and
// /tmp for the non-root user. caBundle must hold at least one PEM
// certificate.
func BaseLayer(caBundle []byte, created time.Time) (v1.Layer, error) {
	if !bytes.Contains(caBundle, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("images: the CA bundle holds no PEM certificate")
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UserID, UserID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UserID)
	return layer([]file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: strings.TrimPrefix(CACertPath, "/"), mode: 0o644, data: caBundle},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: UserID},
		{name: "tmp/", mode: 0o1777},
	}, created)
}

// BinaryLayer is the layer holding program's binary at BinDir/program.
func BinaryLayer(program string, binary []byte, created time.Time) (v1.Layer, error) {
	if program == "" || strings.ContainsAny(program, "/\\") {
		return nil, fmt.Errorf("images: invalid program name %q", program)
	}
	if !bytes.HasPrefix(binary, []byte("\x7fELF")) {
		return nil, fmt.Errorf("images: %s is not an ELF binary", program)
	}
	dir := strings.TrimPrefix(BinDir, "/")
	var files []file
	for p := dir; p != "."; p = path.Dir(p) {
		files = append([]file{{name: p + "/", mode: 0o755}}, files...)
	}
	files = append(files, file{name: dir + "/" + program, mode: 0o755, data: binary})
	return layer(files, created)
}

// layer writes files (in order, root-owned unless uid says otherwise, every
// time set to created) into an uncompressed tar and wraps it as an OCI
// layer. The tar depends on nothing but its arguments.
func layer(files []file, created time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.uid,
			ModTime: created.UTC().Truncate(time.Second),
			Format:  tar.FormatPAX,
		}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("images: tar %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("images: tar %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("images: tar: %w", err)
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// Image assembles program's image for platform from the base layer and its
// binary: OCI media types, user 65532, the binary as entrypoint, the OCI
// labels (also as manifest annotations), every timestamp meta.Created.
func Image(program string, platform v1.Platform, base, binary v1.Layer, meta Metadata) (v1.Image, error) {
	if err := meta.validate(); err != nil {
		return nil, err
	}
	if platform.OS == "" || platform.Architecture == "" {
		return nil, fmt.Errorf("images: platform %q lacks an OS or an architecture", platform.String())
	}
	created := v1.Time{Time: meta.Created.UTC().Truncate(time.Second)}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	labels := meta.Labels(program)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: platform.Architecture,
		OS:           platform.OS,
		Variant:      platform.Variant,
		Created:      created,
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", UserID, UserID),
			Entrypoint: []string{BinDir + "/" + program},
			Env: []string{
				"PATH=" + BinDir,
				"SSL_CERT_FILE=" + CACertPath,
				"HOME=/home/nonroot",
			},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("images: config of %s: %w", program, err)
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "flowforge images: CA certificates, passwd, group", Comment: "base"}},
		mutate.Addendum{Layer: binary, History: v1.History{Created: created, CreatedBy: "flowforge images: go build ./cmd/" + program, Comment: program}},
	)
	if err != nil {
		return nil, fmt.Errorf("images: layers of %s: %w", program, err)
	}
	out, ok := mutate.Annotations(img, labels).(v1.Image)
	if !ok {
		return nil, fmt.Errorf("images: annotating %s", program)
	}
	return out, nil
}

// Index gathers the images of one program, one per platform, into an OCI
// image index annotated with the labels. The order of images is kept.
func Index(program string, imgs []v1.Image, meta Metadata) (v1.ImageIndex, error) {
	if len(imgs) == 0 {
		return nil, fmt.Errorf("images: no image for %s", program)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	seen := map[string]bool{}
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("images: config of %s: %w", program, err)
		}
		p := cf.Platform()
		if p == nil || seen[p.String()] {
			return nil, fmt.Errorf("images: %s has no platform or the same one twice", program)
		}
		seen[p.String()] = true
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: p},
		})
	}
	out, ok := mutate.Annotations(idx, meta.Labels(program)).(v1.ImageIndex)
	if !ok {
		return nil, fmt.Errorf("images: annotating the index of %s", program)
	}
	return out, nil
}
