package policytest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Copy writes the files of fsys, plus extra files (path to content), into a
// new temporary directory and returns it.
func Copy(t testing.TB, fsys fs.FS, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		return os.WriteFile(filepath.Join(dir, p), data, 0o644)
	}))
	for k, v := range extra {
		require.NoError(t, os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644))
	}
	return dir
}

// ConfigMapMount lays out the files of fsys as the kubelet mounts a
// ConfigMap whose keys are the flattened paths (overlays/policy-configmap):
// the files in a hidden ..<timestamp> directory, ..data linking to it, and
// a link per key at the top. Extra files are added as keys.
func ConfigMapMount(t testing.TB, fsys fs.FS, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_12_01_10_00_00.123")
	require.NoError(t, os.Mkdir(ts, 0o755))
	files := map[string]string{}
	require.NoError(t, fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
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

// GKEPlatform is a platform file (policies.PlatformFile) as a GKE Sandbox
// cluster would mount it: gVisor is the runtime class and nodes are
// selected by the sandbox label.
const GKEPlatform = `flowforge:
  config:
    runtimeClass: {default: gvisor, allowed: [gvisor]}
    scheduling:
      nodeSelector: {sandbox.gke.io/runtime: gvisor}
`
