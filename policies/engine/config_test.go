package engine

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/policytest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadedPolicyHasItsConfiguration(t *testing.T) {
	p, err := load(context.Background(), policies.Embedded(), testedPolicies)
	require.NoError(t, err)
	embedded, err := policies.EmbeddedConfig()
	require.NoError(t, err)
	assert.Equal(t, embedded, p.Configuration())
}

func TestPolicyWithABadConfigIsRefusedAtLoad(t *testing.T) {
	dir := fixtureDir(t)
	writePolicy(t, dir, map[string]string{"data.yaml": strings.Replace(fixtureData, "defaultProfile: medium", "defaultProfile: xl", 1)})
	_, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `resources.defaultProfile: "xl"`)

	_, err = policies.ConfigFrom(fstest.MapFS{"data.yaml": {Data: []byte("flowforge:\n  other: {}\n")}})
	require.ErrorContains(t, err, "flowforge.config is missing")
}

// LoadConfig reads the same Config as a full Load, with and without a
// platform file, and from a mounted ConfigMap's links.
func TestLoadConfigEqualsTheLoadedPolicysConfig(t *testing.T) {
	for name, fsys := range map[string]fs.FS{
		"embedded":           policies.Embedded(),
		"platform":           os.DirFS(policytest.Copy(t, policies.Embedded(), map[string]string{policies.PlatformFile: policytest.GKEPlatform})),
		"configmap platform": os.DirFS(policytest.ConfigMapMount(t, policies.Embedded(), map[string]string{policies.PlatformFile: policytest.GKEPlatform})),
	} {
		t.Run(name, func(t *testing.T) {
			full, err := Load(t.Context(), fsys)
			require.NoError(t, err)
			cfg, err := policies.LoadConfig(fsys)
			require.NoError(t, err)
			require.Equal(t, full.Configuration(), cfg)
		})
	}
	cfg, err := policies.LoadConfig(os.DirFS(policytest.Copy(t, policies.Embedded(), map[string]string{policies.PlatformFile: policytest.GKEPlatform})))
	require.NoError(t, err)
	assert.Equal(t, "gvisor", cfg.RuntimeClass.Default, "the platform's data applies")
}

// TestLimitAboveTheCeilingIsRefusedAtLoad: a data.yaml that raises a limit
// above its ceiling is refused, and the engine keeps serving the last
// good policy.
func TestLimitAboveTheCeilingIsRefusedAtLoad(t *testing.T) {
	dir := fixtureDir(t)
	writePolicy(t, dir, map[string]string{"data.yaml": fixtureData + "    limits: {containers: 16}\n"})
	rec := &countingRecorder{}
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir, Recorder: rec})
	require.NoError(t, err)
	assert.EqualValues(t, 16, e.Current().Limits().Containers)

	over := policies.Ceilings().Containers + 1
	writePolicy(t, dir, map[string]string{"data.yaml": fixtureData + fmt.Sprintf("    limits: {containers: %d}\n", over)})
	err = e.Reload(context.Background())
	require.ErrorContains(t, err, fmt.Sprintf("limits.containers is %d, above its hard ceiling of %d", over, over-1))
	assert.EqualValues(t, 16, e.Current().Limits().Containers, "the last good policy keeps serving")

	_, err = Load(context.Background(), os.DirFS(dir))
	require.ErrorContains(t, err, "above its hard ceiling")
}

func TestAConfigMapMountLoadsOnceWithThePlatformData(t *testing.T) {
	embedded, err := Load(t.Context(), policies.Embedded())
	require.NoError(t, err)

	plain, err := Load(t.Context(), os.DirFS(policytest.ConfigMapMount(t, policies.Embedded(), nil)))
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
	p, err := Load(t.Context(), os.DirFS(policytest.ConfigMapMount(t, policies.Embedded(), map[string]string{policies.PlatformFile: gke})))
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
			_, err := Load(t.Context(), os.DirFS(policytest.ConfigMapMount(t, policies.Embedded(), map[string]string{policies.PlatformFile: tc.doc})))
			require.ErrorContains(t, err, tc.want)
		})
	}
	empty, err := Load(t.Context(), os.DirFS(policytest.ConfigMapMount(t, policies.Embedded(), map[string]string{policies.PlatformFile: "# nothing to adapt\n"})))
	require.NoError(t, err)
	plain, err := Load(t.Context(), os.DirFS(policytest.ConfigMapMount(t, policies.Embedded(), nil)))
	require.NoError(t, err)
	require.Equal(t, plain.Revision, empty.Revision)
}
