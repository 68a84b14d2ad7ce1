package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowforge/flowforge/history"
)

// TestAttemptPeaks checks that an attempt's peak CPU and memory are
// stored, read back, and only ever raised: a later write with lower (or
// unmeasured, zero) peaks keeps the highest seen.
func TestAttemptPeaks(t *testing.T) {
	forEachStore(t, func(t *testing.T, s history.Store) {
		ctx := context.Background()
		require.NoError(t, s.UpsertJob(ctx, job("uid-1", "a1", "u1", history.StatusRunning, t0)))
		base := history.Attempt{PodUID: "p1", JobUID: "uid-1", Number: 1, Pod: "pod-1", Phase: "Running"}
		peaks := func() (int64, int64) {
			t.Helper()
			got, err := s.Job(ctx, "a1")
			require.NoError(t, err)
			require.Len(t, got.Attempts, 1)
			return got.Attempts[0].PeakCPUMillicores, got.Attempts[0].PeakMemoryBytes
		}

		_, err := s.UpsertAttempt(ctx, base)
		require.NoError(t, err)
		cpu, mem := peaks()
		require.Zero(t, cpu, "not measured")
		require.Zero(t, mem, "not measured")

		for _, tc := range []struct {
			name             string
			cpu, mem         int64
			wantCPU, wantMem int64
		}{
			{"first sample", 250, 64 << 20, 250, 64 << 20},
			{"higher CPU, lower memory", 1500, 32 << 20, 1500, 64 << 20},
			{"unmeasured write keeps the peaks", 0, 0, 1500, 64 << 20},
			{"both higher", 2000, 3 << 30, 2000, 3 << 30},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := base
				a.Phase = "Succeeded"
				a.PeakCPUMillicores, a.PeakMemoryBytes = tc.cpu, tc.mem
				_, err := s.UpsertAttempt(ctx, a)
				require.NoError(t, err)
				cpu, mem := peaks()
				require.Equal(t, tc.wantCPU, cpu)
				require.Equal(t, tc.wantMem, mem)
			})
		}
	})
}

// TestMigrateToPeaks opens a store written at schema version 2 (before
// the peak columns) with this build: its attempts read as unmeasured and
// new peaks are stored.
func TestMigrateToPeaks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	old, err := openSQLite(ctx, path, 2, t0)
	require.NoError(t, err)
	_, err = old.db.ExecContext(ctx, `INSERT INTO jobs (uid, job_id, namespace, name, user_id, status, created_at) VALUES ('uid-1', 'a1', 'agents', 'n', 'alice', 'Succeeded', 1)`)
	require.NoError(t, err)
	_, err = old.db.ExecContext(ctx, `INSERT INTO attempts (pod_uid, job_uid, number, pod, phase) VALUES ('p1', 'uid-1', 1, 'pod-1', 'Succeeded')`)
	require.NoError(t, err)
	version, err := schemaVersion(ctx, old.db)
	require.NoError(t, err)
	require.Equal(t, 2, version)
	require.NoError(t, old.Close())

	s, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	defer s.Close() //nolint:errcheck // test
	version, err = schemaVersion(ctx, s.db)
	require.NoError(t, err)
	require.Equal(t, SchemaVersion(), version)
	j, err := s.Job(ctx, "a1")
	require.NoError(t, err)
	require.Len(t, j.Attempts, 1)
	require.Zero(t, j.Attempts[0].PeakCPUMillicores)
	require.Zero(t, j.Attempts[0].PeakMemoryBytes)
	_, err = s.UpsertAttempt(ctx, history.Attempt{PodUID: "p1", JobUID: "uid-1", Number: 1, Pod: "pod-1", Phase: "Succeeded", PeakCPUMillicores: 700, PeakMemoryBytes: 1 << 20})
	require.NoError(t, err)
	j, err = s.Job(ctx, "a1")
	require.NoError(t, err)
	require.EqualValues(t, 700, j.Attempts[0].PeakCPUMillicores)
	require.EqualValues(t, 1<<20, j.Attempts[0].PeakMemoryBytes)
}
