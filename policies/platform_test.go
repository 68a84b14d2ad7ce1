package policies

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// configMapMount lays out the embedded policies as the kubelet mounts a
// ConfigMap whose keys are the flattened paths (overlays/policy-configmap):
// the files in a hidden ..<timestamp> directory, ..data linking to it, and
// a link per key at the top.
func configMapMount(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_12_01_10_00_00.123")
	require.NoError(t, os.Mkdir(ts, 0o755))
	files := map[string]string{}
	require.NoError(t, fs.WalkDir(Embedded(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(Embedded(), p)
		files[strings.ReplaceAll(p, "/", ".")] = string(data)
		return err
	}))
	for k, v := range extra {
		files[k] = v
	}
	for k, v := range files {
		require.NoError(t, os.WriteFile(filepath.Join(ts, k), []byte(v), 0o644))
		require.NoError(t, os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)))
	}
	require.NoError(t, os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")))
	return dir
}

func TestAConfigMapMountLoadsOnceWithThePlatformData(t *testing.T) {
	embedded, err := Load(t.Context(), Embedded())
	require.NoError(t, err)

	plain, err := Load(t.Context(), os.DirFS(configMapMount(t, nil)))
	require.NoError(t, err)
	require.Equal(t, embedded.Tests, plain.Tests, "every test once, none from ..data or the timestamped directory")
	require.Equal(t, embedded.Config(), plain.Config())

	gke := `flowforge:
  config:
    runtimeClass: {default: gvisor, allowed: [gvisor]}
    scheduling:
      nodeSelector: {sandbox.gke.io/runtime: gvisor}
      tolerations:
      - {key: sandbox.gke.io/runtime, operator: Equal, value: gvisor, effect: NoSchedule}
    seccomp:
      default: {type: RuntimeDefault}
`
	p, err := Load(t.Context(), os.DirFS(configMapMount(t, map[string]string{PlatformFile: gke})))
	require.NoError(t, err)
	require.Equal(t, embedded.Tests, p.Tests)
	require.Equal(t, map[string]any{"sandbox.gke.io/runtime": "gvisor"}, p.Config("scheduling", "nodeSelector"))
	require.Equal(t, "RuntimeDefault", p.Config("seccomp", "default", "type"))
	require.Nil(t, p.Config("seccomp", "default", "localhostProfile"), "a map key the platform leaves out is kept, but type replaced it")
	require.Equal(t, embedded.Config("seccomp", "namespaceOverrides"), p.Config("seccomp", "namespaceOverrides"), "keys the platform does not set stay")
	require.Equal(t, embedded.Config("scheduling", "allowedSchedulers"), p.Config("scheduling", "allowedSchedulers"))
	require.Equal(t, embedded.Config("images"), p.Config("images"))
	require.NotEqual(t, embedded.Revision, p.Revision, "the platform's data is part of the revision")
	require.True(t, strings.HasPrefix(p.Revision, embedded.Config("release").(string)+"-"))
}

func TestABadPlatformFileRefusesThePolicy(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"a key FlowForge decides": {"flowforge:\n  config:\n    images: {}\n    capabilities: {}\n", "sets capabilities, images; a platform may set only"},
		"another document":        {"other: {}\n", "flowforge.config and nothing else"},
		"beside config":           {"flowforge:\n  config: {}\n  mutate: {}\n", "flowforge.config and nothing else"},
		"not YAML":                {"flowforge: [\n", "platform.yaml"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(t.Context(), os.DirFS(configMapMount(t, map[string]string{PlatformFile: tc.doc})))
			require.ErrorContains(t, err, tc.want)
		})
	}
	empty, err := Load(t.Context(), os.DirFS(configMapMount(t, map[string]string{PlatformFile: "# nothing to adapt\n"})))
	require.NoError(t, err)
	plain, err := Load(t.Context(), os.DirFS(configMapMount(t, nil)))
	require.NoError(t, err)
	require.Equal(t, plain.Revision, empty.Revision)
}

func TestMerge(t *testing.T) {
	base := map[string]any{"a": map[string]any{"x": 1, "y": 2}, "c": []any{1}}
	got := merge(base, map[string]any{"a": map[string]any{"z": 3}, "c": []any{2}})
	require.Equal(t, map[string]any{"a": map[string]any{"z": 3}, "c": []any{2}}, got, "one level: a's keys are replaced whole")
	require.Equal(t, "x", merge(base, "x"))
	require.Equal(t, map[string]any{"a": map[string]any{"x": 1, "y": 2}, "c": []any{1}}, base, "base is not modified")
}
