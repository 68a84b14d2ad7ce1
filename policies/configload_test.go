package policies

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flowforge/flowforge/policies/policytest"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestLoadConfigRefusesBadData(t *testing.T) {
	data, err := fs.ReadFile(Embedded(), "data.yaml")
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		files fstest.MapFS
		want  string
	}{
		"no data.yaml":   {fstest.MapFS{}, "policy data"},
		"not YAML":       {fstest.MapFS{"data.yaml": {Data: []byte("flowforge: [")}}, "data.yaml"},
		"no config":      {fstest.MapFS{"data.yaml": {Data: []byte("flowforge: {}\n")}}, "flowforge.config is missing"},
		"invalid config": {fstest.MapFS{"data.yaml": {Data: []byte(strings.Replace(string(data), "label: app", `label: ""`, 1))}}, "selector.label: required"},
		"platform sets another key": {fstest.MapFS{"data.yaml": {Data: data}, PlatformFile: {Data: []byte("flowforge: {config: {selector: {label: x, value: y}}}\n")}},
			"a platform may set only"},
		"platform not YAML": {fstest.MapFS{"data.yaml": {Data: data}, PlatformFile: {Data: []byte("flowforge: [")}}, PlatformFile},
		"platform without data to adapt": {fstest.MapFS{"data.yaml": {Data: []byte("other: 1\n")}, PlatformFile: {Data: []byte(policytest.GKEPlatform)}},
			"no flowforge.config to adapt"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig(tc.files)
			require.ErrorContains(t, err, tc.want)
			_, err = NewConfigSource(ConfigSourceOptions{Dir: mapDir(t, tc.files)})
			require.ErrorContains(t, err, tc.want, "a source does not start on refused data")
		})
	}
}

// mapDir writes files into a new directory.
func mapDir(t *testing.T, files fstest.MapFS) string {
	t.Helper()
	dir := t.TempDir()
	for k, f := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, k), f.Data, 0o644))
	}
	return dir
}

func TestConfigSourceReloadKeepsTheLastGoodConfig(t *testing.T) {
	dir := policytest.Copy(t, Embedded(), nil)
	rec := &reloadCounter{}
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	s, err := NewConfigSource(ConfigSourceOptions{Dir: dir, Recorder: rec, Clock: clk, Log: logr.Discard()})
	require.NoError(t, err)
	first := s.Current()
	assert.InDelta(t, 300, first.Export.PendingTimeoutSeconds, 0)
	assert.Equal(t, first.Release, s.Status().Revision)
	assert.Equal(t, dir, s.Status().Source)

	require.NoError(t, s.Reload(), "reloading unchanged files is a no-op")
	assert.Same(t, first, s.Current())
	assert.Zero(t, s.Status().Reloads)

	data, err := os.ReadFile(filepath.Join(dir, "data.yaml"))
	require.NoError(t, err)
	broken := strings.Replace(string(data), "pinning: ", "pinning: sometimes #", 1)
	require.NotEqual(t, string(data), broken)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.yaml"), []byte(broken), 0o644))
	clk.Step(time.Minute)
	require.ErrorContains(t, s.Reload(), "images.pinning")
	assert.Same(t, first, s.Current(), "the previous settings stay")
	st := s.Status()
	assert.Contains(t, st.LastError, "images.pinning")
	assert.Equal(t, clk.Now(), st.LastErrorAt)
	assert.EqualValues(t, 1, rec.errors.Load())

	edited := strings.Replace(string(data), "pendingTimeoutSeconds: 300", "pendingTimeoutSeconds: 60", 1)
	require.NotEqual(t, string(data), edited)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.yaml"), []byte(edited), 0o644))
	require.NoError(t, s.Reload())
	assert.InDelta(t, 60, s.Current().Export.PendingTimeoutSeconds, 0)
	st = s.Status()
	assert.Empty(t, st.LastError, "a good reload clears the error")
	assert.Equal(t, 1, st.Reloads)
	assert.EqualValues(t, 1, rec.reloads.Load())

	// A platform file added later applies too.
	require.NoError(t, os.WriteFile(filepath.Join(dir, PlatformFile), []byte(policytest.GKEPlatform), 0o644))
	require.NoError(t, s.Reload())
	assert.Equal(t, "gvisor", s.Current().RuntimeClass.Default)
	assert.Equal(t, 2, s.Status().Reloads)
}

func TestConfigSourceWatchHotReloads(t *testing.T) {
	dir := policytest.Copy(t, Embedded(), nil)
	s, err := NewConfigSource(ConfigSourceOptions{Dir: dir})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	<-s.watched
	data, err := os.ReadFile(filepath.Join(dir, "data.yaml"))
	require.NoError(t, err)
	edited := strings.Replace(string(data), "pendingTimeoutSeconds: 300", "pendingTimeoutSeconds: 42", 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.yaml"), []byte(edited), 0o644))
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return s.Current().Export.PendingTimeoutSeconds == 42, nil
	}), "the watcher reloads after a change")
}

func TestConfigSourceWithEmbeddedPoliciesWaits(t *testing.T) {
	s, err := NewConfigSource(ConfigSourceOptions{})
	require.NoError(t, err)
	assert.Equal(t, "embedded", s.Status().Source)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, s.Watch(ctx))
}

// reloadCounter counts a source's reloads and refusals.
type reloadCounter struct {
	NopRecorder
	reloads, errors atomic.Int64
}

func (r *reloadCounter) PolicyReload(ok bool) {
	if ok {
		r.reloads.Add(1)
	} else {
		r.errors.Add(1)
	}
}
