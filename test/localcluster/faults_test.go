package localcluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKillAndRelaunchAComponent runs a stand-in program through Run, kills
// it, and starts it again from its recorded command line: its log keeps
// the first run's output, and Pids follows the new process.
func TestKillAndRelaunchAComponent(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-program")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho \"started with $1\"\nexec sleep 60\n"), 0o755))
	c := &Cluster{Dir: dir, procs: map[string]*process{}, specs: map[string]componentSpec{}}
	t.Cleanup(func() { _ = c.Stop() })
	ctx := context.Background()
	logged := func(want int) func(context.Context) error {
		return func(context.Context) error {
			data, _ := os.ReadFile(c.LogPath("program"))
			if strings.Count(string(data), "started with arg") != want {
				return assert.AnError
			}
			return nil
		}
	}
	require.NoError(t, c.Run(ctx, "program", bin, []string{"arg"}, logged(1)))
	first := c.Pids()["program"]
	require.NotZero(t, first)

	assert.ErrorContains(t, c.Relaunch(ctx, "program", nil), "still running")
	require.NoError(t, c.Kill("program", syscall.SIGKILL, 5*time.Second))
	assert.NotContains(t, c.Pids(), "program")
	assert.ErrorContains(t, c.Kill("program", syscall.SIGTERM, time.Second), "not running")

	require.NoError(t, c.Relaunch(ctx, "program", logged(2)), "the same command line, the log appended to")
	second := c.Pids()["program"]
	assert.NotZero(t, second)
	assert.NotEqual(t, first, second)

	assert.ErrorContains(t, c.Kill("nothing", syscall.SIGTERM, time.Second), "no component")
	assert.ErrorContains(t, c.Relaunch(ctx, "nothing", nil), "no component")
}
