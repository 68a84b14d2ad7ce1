package localcluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startFake starts a shell script as the component name, in place of the
// real binary.
func startFake(t *testing.T, name, script string) *process {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-"+name)
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"+script+"\n"), 0o755))
	p, err := startProcess(name, bin, nil, dir, nil)
	require.NoError(t, err)
	return p
}

// TestAComponentThatDiesIsReportedWithItsLogTail uses a stand-in binary
// that prints and exits, as a component that fails to start would.
func TestAComponentThatDiesIsReportedWithItsLogTail(t *testing.T) {
	p := startFake(t, "kube-apiserver", "echo starting\necho 'error: cannot use public IP 127.0.0.1' >&2\nexit 3")
	err := p.waitFor(context.Background(), "ready", func(context.Context) error { return assert.AnError })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kube-apiserver: exited before ready")
	assert.Contains(t, err.Error(), "exit status 3")
	assert.Contains(t, err.Error(), "cannot use public IP 127.0.0.1", "the log tail is shown")
}

func TestAComponentThatHangsTimesOutWithItsLogTail(t *testing.T) {
	p := startFake(t, "etcd", "echo waiting for quorum\nexec sleep 60")
	defer p.stop(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := p.waitFor(ctx, "healthy", func(context.Context) error { return assert.AnError })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "etcd: not healthy")
	assert.Contains(t, err.Error(), "waiting for quorum")
	p.stop(time.Second)
	assert.False(t, p.running(), "stop leaves no process")
}

func TestStartWithoutBinariesSaysWhatToDo(t *testing.T) {
	_, err := Start(context.Background(), Options{BinDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "run `make tools` first")
	_, err = startProcess("x", filepath.Join(t.TempDir(), "missing"), nil, t.TempDir(), nil)
	assert.ErrorContains(t, err, "not found")
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	require.NoError(t, os.WriteFile(path, []byte("1\n2\n3\n4\n"), 0o644))
	assert.Equal(t, "3\n4", tail(path, 2))
	assert.Contains(t, tail(filepath.Join(t.TempDir(), "nope"), 2), "cannot read log")
}

func TestFreePortsAreDistinct(t *testing.T) {
	ports, err := FreePorts(5)
	require.NoError(t, err)
	seen := map[int]bool{}
	for _, p := range ports {
		assert.False(t, seen[p])
		seen[p] = true
	}
}
