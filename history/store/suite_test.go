package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/test/postgres"
)

// The Postgres server is shared by the package's tests (each gets its own
// database), started by the first test that needs it and stopped by
// TestMain.
var (
	pgOnce   sync.Once
	pgServer *postgres.Server
	pgErr    error
	pgDBs    atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgServer != nil {
		if err := pgServer.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop postgres: %v\n", err)
		}
	}
	os.Exit(code)
}

// postgresURL returns the URL of a new, empty database on the shared
// server.
func postgresURL(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pgServer, pgErr = postgres.Start(context.Background(), postgres.Options{}) })
	require.NoError(t, pgErr, "start postgres")
	url, err := pgServer.CreateDatabase(context.Background(), fmt.Sprintf("history_%d", pgDBs.Add(1)))
	require.NoError(t, err)
	return url
}

// storeKinds are the implementations every suite test runs against.
var storeKinds = []struct {
	name string
	open func(t testing.TB) history.Store
}{
	{"sqlite", func(t testing.TB) history.Store {
		s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "history.db"))
		require.NoError(t, err)
		return s
	}},
	{"postgres", func(t testing.TB) history.Store {
		s, err := Open(context.Background(), postgresURL(t))
		require.NoError(t, err)
		require.IsType(t, &Postgres{}, s)
		return s
	}},
}

// forEachStore runs fn against a new, empty store of each kind.
func forEachStore(t *testing.T, fn func(t *testing.T, s history.Store)) {
	t.Helper()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := kind.open(t)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			fn(t, s)
		})
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/var/lib/flowforge/history.db", "/var/lib/flowforge/history.db"},
		{"postgres://flowforge:s3cret@db:5432/history?sslmode=require", "postgres://flowforge:xxxxx@db:5432/history?sslmode=require"},
		{"postgresql://db/history?password=s3cret&sslmode=disable", "postgresql://db/history?password=xxxxx&sslmode=disable"},
		{"postgres://flowforge@db/history", "postgres://flowforge@db/history"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := Redact(tc.in)
			require.Equal(t, tc.want, got)
			require.NotContains(t, got, "s3cret")
		})
	}
	require.True(t, IsPostgresURL("postgresql://x/y"))
	require.False(t, IsPostgresURL("/data/postgres.db"))
}

func TestOpenPostgresFailsClearly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := OpenPostgres(ctx, "postgres://flowforge:s3cret@127.0.0.1:1/history?sslmode=disable")
	require.ErrorContains(t, err, "connect to postgres://flowforge:xxxxx@127.0.0.1:1/history")
	require.NotContains(t, err.Error(), "s3cret", "errors do not leak the password")
	_, err = OpenPostgres(ctx, "postgres://flowforge:s3cret@127.0.0.1:1/history?sslmode=bogus")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
	_, err = OpenPostgres(context.Background(), "/var/lib/history.db")
	require.ErrorContains(t, err, "not a postgres:// URL")
}

func TestStats(t *testing.T) {
	forEachStore(t, func(t *testing.T, s history.Store) {
		ctx := context.Background()
		empty, err := s.Stats(ctx)
		require.NoError(t, err)
		require.Zero(t, empty.Records)
		require.Zero(t, empty.ArchiveBytes)
		require.Positive(t, empty.StoreBytes)
		require.NoError(t, s.UpsertJob(ctx, job("uid-1", "a1", "alice", history.StatusSucceeded, t0)))
		require.NoError(t, s.PutLogArchive(ctx, history.LogArchive{PodUID: "p1", JobUID: "uid-1", Attempt: 1, Pod: "pod", Container: "c", Gzip: []byte(strings.Repeat("z", 1000)), Size: 1000}))
		require.NoError(t, s.PutLogArchive(ctx, history.LogArchive{PodUID: "p1", JobUID: "uid-1", Attempt: 1, Pod: "pod", Container: "d", Gzip: []byte("abc"), Size: 3}))
		st, err := s.Stats(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, st.Records)
		require.EqualValues(t, 1003, st.ArchiveBytes)
		// Replacing an archive counts its new size only.
		require.NoError(t, s.PutLogArchive(ctx, history.LogArchive{PodUID: "p1", JobUID: "uid-1", Attempt: 1, Pod: "pod", Container: "c", Gzip: []byte("x"), Size: 1}))
		st, err = s.Stats(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 4, st.ArchiveBytes)
	})
}

// dialectOf lets tests write with a store's dialect.
func (s *sqlStore) dialectOf() dialect { return s.d }

// Controller replicas start together against one empty database: each
// opens the store and migrates it, and every one must succeed (two
// unguarded CREATE TABLE IF NOT EXISTS of schema_migrations collided in
// Postgres's catalog).
func TestReplicasOpeningAnEmptyPostgresTogether(t *testing.T) {
	url := postgresURL(t)
	const replicas = 6
	errs := make(chan error, replicas)
	var wg sync.WaitGroup
	for range replicas {
		wg.Go(func() {
			s, err := OpenPostgres(context.Background(), url)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	s, err := OpenPostgres(context.Background(), url)
	require.NoError(t, err)
	defer s.Close() //nolint:errcheck // read-only
	v, err := schemaVersion(context.Background(), s.db)
	require.NoError(t, err)
	require.Equal(t, SchemaVersion(), v)
}
