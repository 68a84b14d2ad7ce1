package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Program is one image: the binary built from Package (a directory whose
// base name is Name, for example ./cmd/flowforge-webhook).
type Program struct {
	Name    string
	Package string
}

// Options configure Build.
type Options struct {
	// Root is the Go module's directory, where `go build` runs.
	Root string
	// OutDir receives the layouts, the archives and ResultsFile.
	OutDir string
	// Programs to build; Platforms to build them for (linux only).
	Programs  []Program
	Platforms []v1.Platform
	// Repository prefixes each image's name, e.g. ghcr.io/flowforge.
	Repository string
	// CABundle is the PEM file copied to CACertPath.
	CABundle string
	// Meta is recorded in every image.
	Meta Metadata
	// LDFlags are added to -s -w -buildid= (e.g. -X for a version).
	LDFlags string
	// Go is the go command. Default "go".
	Go string
	// Logf receives progress lines. Default: discard.
	Logf func(format string, args ...any)
}

// ResultsFile, in OutDir, lists what Build wrote (Results as JSON).
const ResultsFile = "images.json"

// Result is one program's image index.
type Result struct {
	Name string `json:"name"`
	// Image is the repository, Repository/Name.
	Image string `json:"image"`
	// Digest is the index's digest: deploy Image@Digest.
	Digest  string `json:"digest"`
	Version string `json:"version"`
	// Platforms maps os/arch to the platform image's digest.
	Platforms map[string]string `json:"platforms"`
	// Layout is the OCI layout directory, Archive the same as a tar
	// (oci-archive), Tarballs the docker tarball of each platform.
	Layout   string            `json:"layout"`
	Archive  string            `json:"archive"`
	Tarballs map[string]string `json:"tarballs"`
}

// Reference is Image@Digest.
func (r Result) Reference() string { return r.Image + "@" + r.Digest }

// Results is the content of ResultsFile.
type Results struct {
	Images []Result `json:"images"`
}

// Find returns the result of program.
func (r Results) Find(program string) (Result, bool) {
	for _, i := range r.Images {
		if i.Name == program {
			return i, true
		}
	}
	return Result{}, false
}

// ReadResults reads dir/ResultsFile.
func ReadResults(dir string) (Results, error) {
	var r Results
	data, err := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err != nil {
		return r, fmt.Errorf("images: %w (run `make images` first)", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("images: %s: %w", ResultsFile, err)
	}
	for _, i := range r.Images {
		if _, err := name.NewDigest(i.Reference()); err != nil {
			return r, fmt.Errorf("images: %s: %w", ResultsFile, err)
		}
	}
	return r, nil
}

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

func (o *Options) defaults() error {
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := o.Meta.validate(); err != nil {
		return err
	}
	if o.Root == "" || o.OutDir == "" || o.CABundle == "" || o.Repository == "" {
		return errors.New("images: Root, OutDir, CABundle and Repository are required")
	}
	if len(o.Programs) == 0 || len(o.Platforms) == 0 {
		return errors.New("images: no program or no platform to build")
	}
	for _, p := range o.Programs {
		if p.Name == "" || filepath.Base(p.Package) != p.Name {
			return fmt.Errorf("images: program %q must be built from a directory of the same name, not %q", p.Name, p.Package)
		}
	}
	for _, p := range o.Platforms {
		if p.OS != "linux" || p.Architecture == "" {
			return fmt.Errorf("images: platform %q: only linux/<arch> is built", p.String())
		}
	}
	if _, err := name.NewRepository(o.Repository + "/" + o.Programs[0].Name); err != nil {
		return fmt.Errorf("images: repository: %w", err)
	}
	return nil
}

// Build compiles every program for every platform, assembles the images
// and indexes and writes them under OutDir, then ResultsFile.
func Build(ctx context.Context, o Options) (Results, error) {
	if err := o.defaults(); err != nil {
		return Results{}, err
	}
	ca, err := os.ReadFile(o.CABundle)
	if err != nil {
		return Results{}, fmt.Errorf("images: CA bundle: %w", err)
	}
	base, err := BaseLayer(ca, o.Meta.Created)
	if err != nil {
		return Results{}, err
	}
	work, err := os.MkdirTemp("", "flowforge-images-")
	if err != nil {
		return Results{}, fmt.Errorf("images: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()

	perProgram := map[string][]v1.Image{}
	for _, p := range o.Platforms {
		dir := filepath.Join(work, p.OS+"_"+p.Architecture)
		if err := o.compile(ctx, p, dir); err != nil {
			return Results{}, err
		}
		for _, prog := range o.Programs {
			bin, err := os.ReadFile(filepath.Join(dir, prog.Name))
			if err != nil {
				return Results{}, fmt.Errorf("images: %w", err)
			}
			bl, err := BinaryLayer(prog.Name, bin, o.Meta.Created)
			if err != nil {
				return Results{}, err
			}
			img, err := Image(prog.Name, p, base, bl, o.Meta)
			if err != nil {
				return Results{}, err
			}
			perProgram[prog.Name] = append(perProgram[prog.Name], img)
		}
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return Results{}, fmt.Errorf("images: %w", err)
	}
	var res Results
	for _, prog := range o.Programs {
		r, err := o.write(prog.Name, perProgram[prog.Name])
		if err != nil {
			return Results{}, err
		}
		o.Logf("%s %s", r.Reference(), strings.Join(sortedKeys(r.Platforms), " "))
		res.Images = append(res.Images, r)
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return Results{}, fmt.Errorf("images: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.OutDir, ResultsFile), append(data, '\n'), 0o644); err != nil {
		return Results{}, fmt.Errorf("images: %w", err)
	}
	return res, nil
}

// compile builds every program for platform into dir: static (no cgo),
// without paths, build ids or VCS stamps, so that the binaries depend on
// the source alone.
func (o *Options) compile(ctx context.Context, p v1.Platform, dir string) error {
	args := []string{"build", "-trimpath", "-buildvcs=false",
		"-ldflags", strings.TrimSpace("-s -w -buildid= -extldflags=-static " + o.LDFlags),
		"-o", dir + string(filepath.Separator)}
	for _, prog := range o.Programs {
		args = append(args, prog.Package)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, o.Go, args...)
	cmd.Dir = o.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOFLAGS=-mod=readonly")
	if p.Variant != "" && p.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("images: go build for %s: %w\n%s", p.String(), err, out)
	}
	o.Logf("built %d programs for %s in %s", len(o.Programs), p.String(), time.Since(start).Round(time.Second))
	return nil
}

func (o *Options) write(program string, imgs []v1.Image) (Result, error) {
	idx, err := Index(program, imgs, o.Meta)
	if err != nil {
		return Result{}, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return Result{}, fmt.Errorf("images: %w", err)
	}
	version := tagUnsafe.ReplaceAllString(o.Meta.Version, "_")
	if len(version) > 128 {
		version = version[:128]
	}
	r := Result{
		Name:      program,
		Image:     o.Repository + "/" + program,
		Digest:    digest.String(),
		Version:   version,
		Platforms: map[string]string{},
		Layout:    filepath.Join(o.OutDir, program),
		Archive:   filepath.Join(o.OutDir, program+".oci.tar"),
		Tarballs:  map[string]string{},
	}
	if err := os.RemoveAll(r.Layout); err != nil {
		return Result{}, fmt.Errorf("images: %w", err)
	}
	lp, err := layout.Write(r.Layout, empty.Index)
	if err != nil {
		return Result{}, fmt.Errorf("images: layout %s: %w", r.Layout, err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": version,
	})); err != nil {
		return Result{}, fmt.Errorf("images: layout %s: %w", r.Layout, err)
	}
	if err := tarDir(r.Layout, r.Archive, o.Meta.Created); err != nil {
		return Result{}, err
	}
	tag, err := name.NewTag(r.Image + ":" + version)
	if err != nil {
		return Result{}, fmt.Errorf("images: %w", err)
	}
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return Result{}, fmt.Errorf("images: %w", err)
		}
		d, err := img.Digest()
		if err != nil {
			return Result{}, fmt.Errorf("images: %w", err)
		}
		p := cf.Platform().String()
		r.Platforms[p] = d.String()
		file := filepath.Join(o.OutDir, program+"-"+strings.ReplaceAll(p, "/", "-")+".tar")
		if err := tarball.WriteToFile(file, tag, img); err != nil {
			return Result{}, fmt.Errorf("images: tarball %s: %w", file, err)
		}
		r.Tarballs[p] = file
	}
	return r, nil
}

// tarDir writes the tree under dir into file as a tar whose bytes depend
// on the tree's content alone (sorted names, fixed times and owners).
func tarDir(dir, file string, created time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range names {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return fmt.Errorf("images: %w", err)
		}
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("images: %w", err)
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: created.UTC().Truncate(time.Second), Format: tar.FormatPAX}
		if st.IsDir() {
			h.Name += "/"
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(h); err != nil {
				return fmt.Errorf("images: %w", err)
			}
			continue
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, st.Size()
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("images: %w", err)
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("images: %w", err)
		}
		_, err = io.Copy(tw, f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("images: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ParsePlatforms parses a comma-separated list such as
// linux/amd64,linux/arm64.
func ParsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := v1.ParsePlatform(f)
		if err != nil {
			return nil, fmt.Errorf("images: platform %q: %w", f, err)
		}
		out = append(out, *p)
	}
	if len(out) == 0 {
		return nil, errors.New("images: no platform")
	}
	return out, nil
}
