package render

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/filters/imagetag"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/flowforge/flowforge/internal/images"
)

// ImagePrefix and a program's name name its image in deploy/ (for example
// ghcr.io/flowforge/flowforge-webhook:0.1.0); Render replaces it with the
// image `make images` built, by digest.
const ImagePrefix = "ghcr.io/flowforge/"

// BaseName is the name Overlays gives deploy/ itself.
const BaseName = "base"

// Overlay is a kustomization to render: deploy/ (BaseName) or
// overlays/<Name>. The overlays cannot live below deploy/: kustomize
// refuses a kustomization that refers to a directory containing it.
type Overlay struct {
	Name string
	Dir  string
}

// Overlays lists deployDir and every directory of overlaysDir holding a
// kustomization.yaml, base first and then by name.
func Overlays(deployDir, overlaysDir string) ([]Overlay, error) {
	out := []Overlay{{Name: BaseName, Dir: deployDir}}
	entries, err := os.ReadDir(overlaysDir)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(overlaysDir, e.Name(), "kustomization.yaml")); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, Overlay{Name: n, Dir: filepath.Join(overlaysDir, n)})
	}
	return out, nil
}

// Render builds the kustomization in dir (root-only load restrictions, as
// `kubectl apply -k` does) and, when imgs is not nil, points every
// FlowForge image at its digest. It fails if a FlowForge image is left
// without one.
func Render(dir string, imgs *images.Results) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", dir, err)
	}
	if imgs != nil {
		for _, r := range imgs.Images {
			if err := m.ApplyFilter(imagetag.LegacyFilter{ImageTag: types.Image{
				Name: ImagePrefix + r.Name, NewName: r.Image, Digest: r.Digest,
			}}); err != nil {
				return nil, fmt.Errorf("render %s: image %s: %w", dir, r.Name, err)
			}
		}
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", dir, err)
	}
	if imgs != nil {
		if bad := undigested(out); len(bad) > 0 {
			return nil, fmt.Errorf("render %s: no digest for %s (is it in images.json?)", dir, strings.Join(bad, ", "))
		}
	}
	return out, nil
}

// undigested lists FlowForge images of the manifests that are not by digest.
func undigested(manifests []byte) []string {
	seen := map[string]bool{}
	var bad []string
	for _, line := range bytes.Split(manifests, []byte("\n")) {
		l := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(line)), "- "))
		img, ok := strings.CutPrefix(l, "image: ")
		if !ok || !strings.Contains(img, "flowforge/flowforge-") || strings.Contains(img, "@sha256:") || seen[img] {
			continue
		}
		seen[img] = true
		bad = append(bad, img)
	}
	return bad
}

// Options configure All.
type Options struct {
	// DeployDir is the base; OverlaysDir holds the overlays.
	DeployDir, OverlaysDir string
	// OutDir receives <overlay>/install.yaml.
	OutDir string
	// ImagesDir holds images.json from `make images`.
	ImagesDir string
}

// All renders every overlay into OutDir/<name>/install.yaml and returns the
// files written.
func All(o Options) ([]string, error) {
	imgs, err := images.ReadResults(o.ImagesDir)
	if err != nil {
		return nil, err
	}
	overlays, err := Overlays(o.DeployDir, o.OverlaysDir)
	if err != nil {
		return nil, err
	}
	var written []string
	var errs []error
	for _, ov := range overlays {
		out, err := Render(ov.Dir, &imgs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		file := filepath.Join(o.OutDir, ov.Name, "install.yaml")
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return written, fmt.Errorf("render: %w", err)
		}
		header := fmt.Sprintf("# FlowForge %s install (%s), rendered by `make manifests` from deploy/.\n# Apply: kubectl apply --server-side -f install.yaml\n", ov.Name, versionOf(imgs))
		if err := os.WriteFile(file, append([]byte(header), out...), 0o644); err != nil {
			return written, fmt.Errorf("render: %w", err)
		}
		written = append(written, file)
	}
	return written, errors.Join(errs...)
}

func versionOf(r images.Results) string {
	if len(r.Images) == 0 {
		return "no images"
	}
	return r.Images[0].Version
}
