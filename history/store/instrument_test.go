package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowforge/flowforge/history"
)

// TestInstrumentedReportsFailedWrites closes the store under the wrapper,
// so that every write fails, and checks each is reported once, by name.
func TestInstrumentedReportsFailedWrites(t *testing.T) {
	inner, err := OpenSQLite(context.Background(), ":memory:")
	require.NoError(t, err)
	got := map[string]int{}
	s := Instrumented{Store: inner, OnError: func(op string, err error) {
		require.Error(t, err)
		got[op]++
	}}
	ctx := context.Background()
	require.NoError(t, s.UpsertJob(ctx, job("u", "a", "alice", history.StatusRunning, t0)), "a working store reports nothing")
	require.Empty(t, got)
	require.NoError(t, inner.Close())

	require.Error(t, s.UpsertJob(ctx, job("u", "a", "alice", history.StatusRunning, t0)))
	require.Error(t, s.SetEvents(ctx, "u", nil))
	_, err = s.UpsertAttempt(ctx, history.Attempt{PodUID: "p", JobUID: "u"})
	require.Error(t, err)
	require.Error(t, s.PutLogArchive(ctx, history.LogArchive{PodUID: "p", Container: "c"}))
	_, err = s.MarkExported(ctx, "u", t0)
	require.Error(t, err)
	_, err = s.Mark(ctx, "u", "f")
	require.Error(t, err)
	require.Error(t, s.Checkpoint(ctx, "p", "c", t0, 1))
	_, err = s.Prune(ctx, history.PruneRequest{Before: t0.Add(time.Hour)})
	require.Error(t, err)
	_, err = s.Job(ctx, "a")
	require.Error(t, err, "reads fail too, unreported")
	require.Equal(t, map[string]int{"UpsertJob": 1, "SetEvents": 1, "UpsertAttempt": 1, "PutLogArchive": 1, "MarkExported": 1, "Mark": 1, "Checkpoint": 1, "Prune": 1}, got)

	require.NoError(t, s.report("Mark", nil))
	require.ErrorIs(t, s.report("Mark", fmt.Errorf("history: mark: %w", context.Canceled)), context.Canceled)
	require.Equal(t, 1, got["Mark"], "a cancelled write is not a store failure")
}
