package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// PlatformImage returns the image for platform (os/arch) from the index
// of the OCI layout in dir, as Build wrote it.
func PlatformImage(dir, platform string) (v1.Image, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	outer, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	om, err := outer.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	if len(om.Manifests) != 1 {
		return nil, fmt.Errorf("images: %s holds %d entries, want one index", dir, len(om.Manifests))
	}
	idx, err := outer.ImageIndex(om.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.String() == platform {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("images: %w", err)
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("images: no %s image in %s", platform, dir)
}

// Unpack writes img's flattened filesystem into dir (which must exist), as
// a container runtime would, refusing entries that would land outside it.
// Regular files and directories keep their modes and owners (owners only
// when running as root); other entry types are refused: FlowForge's images
// hold nothing else.
func Unpack(img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	root, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("images: unpack: %w", err)
		}
		target := filepath.Join(root, filepath.FromSlash(h.Name))
		if target != root && !strings.HasPrefix(target, root+string(filepath.Separator)) {
			return fmt.Errorf("images: unpack: %q leaves the root", h.Name)
		}
		mode := os.FileMode(h.Mode & 0o777)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("images: unpack: %w", err)
			}
			if h.Mode&0o1000 != 0 {
				mode |= os.ModeSticky
			}
		case tar.TypeReg:
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return fmt.Errorf("images: unpack: %w", err)
			}
			_, err = io.Copy(f, io.LimitReader(tr, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("images: unpack %s: %w", h.Name, err)
			}
		default:
			return fmt.Errorf("images: unpack: %s has unsupported type %q", h.Name, h.Typeflag)
		}
		if err := os.Chmod(target, mode); err != nil {
			return fmt.Errorf("images: unpack: %w", err)
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
				return fmt.Errorf("images: unpack: %w", err)
			}
		}
	}
}
