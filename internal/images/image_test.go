package images

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

func testMeta() Metadata {
	return Metadata{
		Source:   "https://github.com/flowforge/flowforge",
		Revision: "0123456789abcdef",
		Version:  "v1.2.3",
		Created:  time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
	}
}

// buildIndex assembles an index from fake binaries, as Build does.
func buildIndex(t *testing.T, binary string, meta Metadata) v1.ImageIndex {
	t.Helper()
	base, err := BaseLayer([]byte(testCA), meta.Created)
	require.NoError(t, err)
	var imgs []v1.Image
	for _, p := range []v1.Platform{amd64, arm64} {
		bl, err := BinaryLayer("flowforge-webhook", []byte("\x7fELF"+binary+p.Architecture), meta.Created)
		require.NoError(t, err)
		img, err := Image("flowforge-webhook", p, base, bl, meta)
		require.NoError(t, err)
		imgs = append(imgs, img)
	}
	idx, err := Index("flowforge-webhook", imgs, meta)
	require.NoError(t, err)
	return idx
}

func digest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := d.Digest()
	require.NoError(t, err)
	return h.String()
}

func TestSameInputsGiveTheSameDigest(t *testing.T) {
	a := digest(t, buildIndex(t, "program", testMeta()))
	require.Equal(t, a, digest(t, buildIndex(t, "program", testMeta())))

	other := testMeta()
	other.Revision = "fedcba"
	for name, d := range map[string]string{
		"another binary":   digest(t, buildIndex(t, "changed", testMeta())),
		"another revision": digest(t, buildIndex(t, "program", other)),
	} {
		require.NotEqual(t, a, d, name)
	}
}

func TestImageIsNonRootStaticWithLabelsAndCAs(t *testing.T) {
	idx := buildIndex(t, "program", testMeta())
	mt, err := idx.MediaType()
	require.NoError(t, err)
	require.Equal(t, types.OCIImageIndex, mt)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 2)
	require.Equal(t, "v1.2.3", im.Annotations[LabelVersion])
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.String())
		require.Equal(t, types.OCIManifestSchema1, d.MediaType)
		img, err := idx.Image(d.Digest)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		require.Equal(t, "65532:65532", cf.Config.User)
		require.Equal(t, []string{"/usr/local/bin/flowforge-webhook"}, cf.Config.Entrypoint)
		require.Equal(t, d.Platform.Architecture, cf.Architecture)
		require.Equal(t, map[string]string{
			LabelSource:   "https://github.com/flowforge/flowforge",
			LabelRevision: "0123456789abcdef",
			LabelVersion:  "v1.2.3",
			LabelCreated:  "2026-11-27T12:00:00Z",
			LabelTitle:    "flowforge-webhook",
		}, cf.Config.Labels)
		require.Equal(t, testMeta().Created, cf.Created.Time)
		files := extract(t, img)
		require.Equal(t, testCA, files["etc/ssl/certs/ca-certificates.crt"].data)
		require.Contains(t, files["etc/passwd"].data, "nonroot:x:65532:65532")
		bin := files["usr/local/bin/flowforge-webhook"]
		require.Equal(t, "\x7fELFprogram"+d.Platform.Architecture, bin.data)
		require.Equal(t, int64(0o755), bin.mode)
		for name, f := range files {
			require.Equal(t, testMeta().Created, f.mtime, name)
		}
	}
	require.ElementsMatch(t, []string{"linux/amd64", "linux/arm64"}, platforms)
}

type entry struct {
	data  string
	mode  int64
	mtime time.Time
}

func extract(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		out[h.Name] = entry{data: string(data), mode: h.Mode, mtime: h.ModTime.UTC()}
	}
}

func TestBadInputIsRefused(t *testing.T) {
	meta := testMeta()
	_, err := BaseLayer([]byte("not a certificate"), meta.Created)
	require.ErrorContains(t, err, "no PEM certificate")
	_, err = BinaryLayer("flowforge-webhook", []byte("#!/bin/sh"), meta.Created)
	require.ErrorContains(t, err, "not an ELF binary")
	_, err = BinaryLayer("../evil", []byte("\x7fELF"), meta.Created)
	require.ErrorContains(t, err, "invalid program name")
	base, err := BaseLayer([]byte(testCA), meta.Created)
	require.NoError(t, err)
	bl, err := BinaryLayer("x", []byte("\x7fELF"), meta.Created)
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		meta     Metadata
		platform v1.Platform
		want     string
	}{
		"no revision":  {Metadata{Source: "s", Version: "v", Created: meta.Created}, amd64, "lacks revision"},
		"no time":      {Metadata{Source: "s", Version: "v", Revision: "r"}, amd64, "creation time"},
		"no platform":  {meta, v1.Platform{OS: "linux"}, "lacks an OS or an architecture"},
		"all but time": {Metadata{Created: meta.Created}, amd64, "lacks revision, source, version"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Image("x", tc.platform, base, bl, tc.meta)
			require.ErrorContains(t, err, tc.want)
		})
	}
	img, err := Image("x", amd64, base, bl, meta)
	require.NoError(t, err)
	_, err = Index("x", []v1.Image{img, img}, meta)
	require.ErrorContains(t, err, "same one twice")
	_, err = Index("x", nil, meta)
	require.ErrorContains(t, err, "no image")
}

func TestParsePlatforms(t *testing.T) {
	ps, err := ParsePlatforms("linux/amd64, linux/arm64,")
	require.NoError(t, err)
	require.Equal(t, []v1.Platform{amd64, arm64}, ps)
	_, err = ParsePlatforms(" , ")
	require.ErrorContains(t, err, "no platform")
}

func TestOptionsAreChecked(t *testing.T) {
	good := Options{Root: ".", OutDir: "out", CABundle: "ca", Repository: "ghcr.io/flowforge", Meta: testMeta(),
		Programs: []Program{{Name: "flowforge-webhook", Package: "./cmd/flowforge-webhook"}}, Platforms: []v1.Platform{amd64}}
	require.NoError(t, good.defaults())
	for name, mutate := range map[string]func(*Options){
		"no root":          func(o *Options) { o.Root = "" },
		"no program":       func(o *Options) { o.Programs = nil },
		"name != package":  func(o *Options) { o.Programs = []Program{{Name: "a", Package: "./cmd/b"}} },
		"darwin":           func(o *Options) { o.Platforms = []v1.Platform{{OS: "darwin", Architecture: "arm64"}} },
		"bad repository":   func(o *Options) { o.Repository = "UPPER CASE" },
		"no metadata time": func(o *Options) { o.Meta.Created = time.Time{} },
	} {
		t.Run(name, func(t *testing.T) {
			o := good
			mutate(&o)
			require.Error(t, o.defaults())
		})
	}
}

// TestBuildWritesLayoutsArchivesAndResults builds a tiny real program
// (this package's testdata) for two platforms, twice, and checks the
// outputs and that the second build has the same digests.
func TestBuildWritesLayoutsArchivesAndResults(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(ca, []byte(testCA), 0o644))
	build := func(out string) Results {
		r, err := Build(t.Context(), Options{
			Root: "testdata", OutDir: out, CABundle: ca, Repository: "ghcr.io/flowforge", Meta: testMeta(),
			Programs:  []Program{{Name: "hello", Package: "./hello"}},
			Platforms: []v1.Platform{amd64, arm64},
		})
		require.NoError(t, err)
		return r
	}
	out := t.TempDir()
	first := build(out)
	require.Len(t, first.Images, 1)
	r := first.Images[0]
	require.Equal(t, "ghcr.io/flowforge/hello", r.Image)
	require.Len(t, r.Platforms, 2)
	for _, f := range append([]string{r.Archive}, r.Tarballs["linux/amd64"], r.Tarballs["linux/arm64"]) {
		require.FileExists(t, f)
	}
	lp, err := layout.FromPath(r.Layout)
	require.NoError(t, err)
	ii, err := lp.ImageIndex()
	require.NoError(t, err)
	im, err := ii.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	require.Equal(t, r.Digest, im.Manifests[0].Digest.String())
	read, err := ReadResults(out)
	require.NoError(t, err)
	got, ok := read.Find("hello")
	require.True(t, ok)
	require.Equal(t, r, got)

	out2 := t.TempDir()
	second := build(out2)
	require.Equal(t, r.Digest, second.Images[0].Digest)
	a, err := os.ReadFile(r.Archive)
	require.NoError(t, err)
	b, err := os.ReadFile(second.Images[0].Archive)
	require.NoError(t, err)
	require.Equal(t, a, b, "the OCI archives are byte for byte the same")

	_, err = ReadResults(t.TempDir())
	require.ErrorContains(t, err, "make images")
}

func TestUnpackWritesTheFilesystem(t *testing.T) {
	idx := buildIndex(t, "program", testMeta())
	dir := t.TempDir()
	lp, err := layout.Write(dir, idx)
	require.NoError(t, err)
	_ = lp
	// layout.Write writes the index's manifests at the top; Build wraps the
	// index in one more level, as PlatformImage expects.
	_, err = PlatformImage(dir, "linux/amd64")
	require.ErrorContains(t, err, "want one index")

	out := t.TempDir()
	r, err := Build(t.Context(), Options{
		Root: "testdata", OutDir: out, CABundle: writeCA(t), Repository: "ghcr.io/flowforge", Meta: testMeta(),
		Programs: []Program{{Name: "hello", Package: "./hello"}}, Platforms: []v1.Platform{amd64},
	})
	require.NoError(t, err)
	img, err := PlatformImage(r.Images[0].Layout, "linux/amd64")
	require.NoError(t, err)
	_, err = PlatformImage(r.Images[0].Layout, "linux/s390x")
	require.ErrorContains(t, err, "no linux/s390x image")

	root := t.TempDir()
	require.NoError(t, Unpack(img, root))
	st, err := os.Stat(filepath.Join(root, "usr/local/bin/hello"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	ca, err := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
	require.NoError(t, err)
	require.Equal(t, testCA, string(ca))
	tmp, err := os.Stat(filepath.Join(root, "tmp"))
	require.NoError(t, err)
	require.NotZero(t, tmp.Mode()&os.ModeSticky)
}

func writeCA(t *testing.T) string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(ca, []byte(testCA), 0o644))
	return ca
}
